"""Bad input: every case ends in a one-line error naming the file, the row or column and the fix,
or in documented handling with every row and count accounted for in the QC table.

Decisions recorded here (and in the docstrings of ``tcrtrack.ingest`` / ``tcrtrack.samplesheet``):

* empty file, header without rows, corrupt/truncated gzip, other compression, UTF-16, no tab in the
  header, a blank first line, a column tcrtrack reads appearing twice, a missing required column: error;
* CRLF, CR-only (old Mac) line endings and a UTF-8 BOM: read exactly like LF files;
* blank lines: skipped, they are not rows (row numbers in errors are still lines of the file);
* a row with more or fewer fields than the header: error naming the row;
* bytes that are not UTF-8 in a column tcrtrack reads: error naming row and column (other columns are
  not decoded, so a Latin-1 comment column does not stop the run);
* counts: whole numbers (also written ``12.0``) up to 2**63 - 1, kept exactly; fractions, negatives,
  text: error; an empty count is the ``missing_count`` drop reason;
* ``productive``: T/F, TRUE/FALSE, True/False, true/false, 1/0 accepted; anything else (yes/no): error.
"""

from __future__ import annotations

import bz2
import gzip
import os
import random
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcrtrack.errors import InputFileError, SampleSheetError, TcrtrackError
from tcrtrack.ingest import DROP_REASONS, ingest_airr, read_airr_header
from tcrtrack.samplesheet import read_sample_sheet

HEADER = ["sequence_id", "productive", "locus", "v_call", "j_call", "junction_aa", "duplicate_count"]
GOOD = [
    ["r1", "T", "TRB", "TRBV5-1*01", "TRBJ2-7*01", "CASSLGQGYEQYF", "12"],
    ["r2", "T", "TRB", "TRBV6-2*01,TRBV6-3*01", "TRBJ2-1*01", "CASSPDRGYTF", "7"],
    ["r3", "F", "TRB", "TRBV5-1*01", "TRBJ2-7*01", "CASSLGQGYEQYF", "4"],
    ["r4", "T", "TRA", "TRAV1-2*01", "TRAJ33*01", "CAVRDSNYQLIW", "5"],
]


def airr_text(rows: list[list[str]] = GOOD, header: list[str] = HEADER, newline: str = "\n") -> str:
    return newline.join("\t".join(fields) for fields in [header, *rows]) + newline


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def refused(path: Path, pattern: str, **options: object) -> str:
    """Ingest ``path`` expecting a one-line InputFileError that names the file, matches ``pattern`` and has a fix."""
    with pytest.raises(InputFileError) as info:
        ingest_airr(path, **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    assert ". Fix: " in message, message
    assert re.search(pattern, message), message
    return message


def qc_of(path: Path, **options: object) -> dict[str, object]:
    """The QC row, after checking the accounting identity for rows and counts."""
    result = ingest_airr(path, **options)  # type: ignore[arg-type]
    qc = result.qc.row(0, named=True)
    for unit in ("rows", "count"):
        assert qc[f"input_{unit}"] == qc[f"kept_{unit}"] + sum(qc[f"{r}_{unit}"] for r in DROP_REASONS), unit
    assert result.clonotypes["count"].sum() == qc["kept_count"]
    return qc


def same_result(path: Path, reference: Path) -> None:
    a, b = ingest_airr(path), ingest_airr(reference)
    assert a.clonotypes.equals(b.clonotypes)
    assert a.qc.equals(b.qc)


@pytest.fixture
def lf_file(tmp_path: Path) -> Path:
    return write(tmp_path / "lf.tsv", airr_text())


def random_rows(n: int, seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [
            f"r{i}",
            "T",
            "TRB",
            f"TRBV{rng.randint(1, 30)}*01",
            "TRBJ2-7*01",
            "CASS" + "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=9)) + "F",
            str(rng.randint(1, 10**6)),
        ]
        for i in range(n)
    ]


# ---- whole-file conditions: errors ------------------------------------------------------------------


def test_empty_file_zero_bytes(tmp_path):
    refused(write(tmp_path / "empty.tsv", b""), r"empty\.tsv: is empty \(0 bytes\)\. Fix: re-export")


@pytest.mark.parametrize("newline", ["\n", ""])
def test_header_only_is_no_rows(tmp_path, newline):
    path = write(tmp_path / "header.tsv", "\t".join(HEADER) + newline)
    refused(path, r"has a header but no rows .*Fix: re-export the file .* or remove the sample from the sheet")


def test_gzip_of_nothing(tmp_path):
    refused(write(tmp_path / "nothing.tsv.gz", gzip.compress(b"")), r"is empty \(no text after decompression\)")


def test_corrupt_gzip(tmp_path):
    path = write(tmp_path / "corrupt.tsv.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + os.urandom(64))
    refused(path, r"the gzip data is corrupt or truncated .*Fix: re-download or re-export .*gzip -t")


@pytest.mark.parametrize("keep", [0.5, -8, -1], ids=["half", "no-trailer", "last-byte-missing"])
def test_truncated_gzip(tmp_path, keep):
    data = gzip.compress(airr_text(random_rows(3000)).encode())
    assert len(data) > 40_000  # big enough that half of it is cut inside the deflate stream
    cut = int(len(data) * keep) if isinstance(keep, float) else len(data) + keep
    refused(write(tmp_path / "cut.tsv.gz", data[:cut]), r"cut\.tsv\.gz: the gzip data is corrupt or truncated")


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (bz2.compress(airr_text().encode()), "bzip2-compressed"),
        (b"PK\x03\x04" + b"\x00" * 40, "a zip archive"),
        (airr_text().encode("utf-16"), "UTF-16 text"),
    ],
)
def test_other_compression_or_encoding(tmp_path, content, kind):
    refused(write(tmp_path / "other.tsv", content), rf"other\.tsv: is {kind}\. Fix: ")


def test_csv_given_as_tsv(tmp_path):
    text = "\n".join(",".join(fields) for fields in [HEADER, *GOOD]) + "\n"
    refused(write(tmp_path / "s.csv", text), r"the header has no tab \(it looks comma-separated\)\. Fix: give a tab")


def test_blank_first_line(tmp_path):
    refused(write(tmp_path / "s.tsv", "\n" + airr_text()), r"row 1 is empty\. Fix: remove the blank line")


@pytest.mark.parametrize("drop", ["v_call", "j_call"])
def test_missing_required_column(tmp_path, drop):
    keep = [i for i, name in enumerate(HEADER) if name != drop]
    text = airr_text([[row[i] for i in keep] for row in GOOD], [HEADER[i] for i in keep])
    refused(write(tmp_path / "s.tsv", text), rf"required AIRR column\(s\) {drop} missing\. Fix: export")


@pytest.mark.parametrize(("wrong", "right"), [("junctionaa", "junction_aa"), ("V_CALL", "v_call"), ("jcall", "j_call")])
def test_misspelled_column_gets_a_hint(tmp_path, wrong, right):
    header = [wrong if name == right else name for name in HEADER]
    refused(
        write(tmp_path / "s.tsv", airr_text(header=header)),
        rf"column\(s\) {right} missing \(did you mean '{wrong}' for '{right}'\?\)\. Fix: ",
    )


def test_duplicated_column_that_is_read(tmp_path):
    header = [*HEADER, "junction_aa"]
    rows = [[*fields, "CASSQDF"] for fields in GOOD]
    refused(
        write(tmp_path / "s.tsv", airr_text(rows, header)),
        r"column 'junction_aa' appears 2 times in the header \(columns 6, 8\)\. Fix: keep one column",
    )


def test_duplicated_column_that_is_not_read_is_ignored(tmp_path, lf_file):
    header = [*HEADER, "comment", "comment"]
    rows = [[*fields, "a", "b"] for fields in GOOD]
    qc = qc_of(write(tmp_path / "s.tsv", airr_text(rows, header)))
    assert qc == qc_of(lf_file)


def test_directory_and_missing_path(tmp_path):
    refused(tmp_path, r"is a directory, not a file\. Fix: give the path of the repertoire file")
    refused(tmp_path / "nowhere.tsv", r"nowhere\.tsv: does not exist\. Fix: correct 'path' in the sample sheet")


def test_another_locus_only_lists_the_fates(tmp_path):
    rows = [
        ["a", "T", "TRA", "TRAV1-2*01", "TRAJ33*01", "CAVRDSNYQLIW", "5"],
        ["b", "T", "TRA", "TRAV12-1*01", "TRAJ20*01", "CVVNGDYKLSF", "3"],
        ["c", "F", "TRB", "TRBV5-1*01", "TRBJ2-7*01", "CASSLGQGYEQYF", "4"],
    ]
    refused(
        write(tmp_path / "tra.tsv", airr_text(rows)),
        r"no row is kept: 2 of 3 rows wrong_locus, 1 of 3 rows non_productive\. Fix: .*ingest\.locus",
    )


# ---- row-level errors: name the row (= line of the file, header = row 1) and the column -------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", "text"),
        ("-3", "negative"),
        ("2.5", "fractional"),
        ("1e3", "exponent"),
        (" 12", "padded"),
        (str(2**63), "beyond Int64"),
    ],
)
def test_bad_count(tmp_path, value, why):
    rows = [GOOD[0], [*GOOD[1][:-1], value]]
    refused(
        write(tmp_path / "s.tsv", airr_text(rows)),
        rf"s\.tsv: row 3, column 'duplicate_count': '{re.escape(value)}' is not a whole number >= 0 .*"
        r"Fix: duplicate_count must hold non-negative integer counts",
    )


def test_row_numbers_are_lines_of_the_file_even_after_blank_lines(tmp_path):
    text = airr_text([GOOD[0]]) + "\n\n" + "\t".join([*GOOD[1][:-1], "lots"]) + "\n"
    refused(write(tmp_path / "s.tsv", text), r"row 5, column 'duplicate_count': 'lots'")


def test_counts_that_overflow_when_added_up(tmp_path):
    rows = [[*GOOD[0][:-1], str(2**62)], [*GOOD[1][:-1], str(2**62)]]
    refused(
        write(tmp_path / "s.tsv", airr_text(rows)),
        r"column 'duplicate_count': the counts add up to "
        rf"{2**63}, more than 2\*\*63 - 1\. Fix:",
    )


@pytest.mark.parametrize("value", ["yes", "no", "Y", "productive"])
def test_productive_words_are_refused(tmp_path, value):
    rows = [GOOD[0], [GOOD[1][0], value, *GOOD[1][2:]]]
    refused(
        write(tmp_path / "s.tsv", airr_text(rows)),
        rf"row 3, column 'productive': '{value}' is not an AIRR boolean\. Fix: write productive as T or F",
    )


@pytest.mark.parametrize(("true", "false"), [("1", "0"), ("TRUE", "FALSE"), ("true", "false"), ("True", "False")])
def test_productive_spellings_that_are_accepted(tmp_path, lf_file, true, false):
    rows = [[fields[0], {"T": true, "F": false}[fields[1]], *fields[2:]] for fields in GOOD]
    qc = qc_of(write(tmp_path / "s.tsv", airr_text(rows)))
    assert qc == qc_of(lf_file)
    assert (qc["kept_rows"], qc["non_productive_rows"], qc["wrong_locus_rows"]) == (2, 1, 1)


@pytest.mark.parametrize(("fields", "got"), [(GOOD[1][:-1], 6), ([*GOOD[1], "extra"], 8), (GOOD[1][:3], 3)])
def test_ragged_rows(tmp_path, fields, got):
    text = airr_text([GOOD[0], fields, GOOD[2]])
    refused(
        write(tmp_path / "s.tsv", text),
        rf"s\.tsv: row 3 has {got} field\(s\) but the header has 7\. Fix: every row needs one tab-separated value",
    )


def test_ragged_row_in_a_gzipped_crlf_file_after_blank_lines(tmp_path):
    text = airr_text(GOOD[:2], newline="\r\n") + "\r\n" + "\t".join(GOOD[2][:4]) + "\r\n"
    refused(write(tmp_path / "s.tsv.gz", gzip.compress(text.encode())), r"row 5 has 4 field\(s\) but the header has 7")


def test_latin1_in_a_column_that_is_read(tmp_path):
    rows = [GOOD[0], [*GOOD[1][:3], "TRBV6-2*01 (ré-annoté)", *GOOD[1][4:]]]
    path = write(tmp_path / "latin1.tsv", airr_text(rows).encode("latin-1"))
    refused(
        path,
        r"latin1\.tsv: row 3, column 'v_call' is not UTF-8 text \(byte 0xe9.*Fix: convert the file to "
        r"UTF-8, e\.g\. iconv -f LATIN1 -t UTF-8",
    )


def test_latin1_in_a_column_that_is_not_read_is_ignored(tmp_path, lf_file):
    rows = [[*fields, "Müller"] for fields in GOOD]
    path = write(tmp_path / "latin1.tsv", airr_text(rows, [*HEADER, "operator"]).encode("latin-1"))
    assert qc_of(path) == qc_of(lf_file)


def test_latin1_in_the_header(tmp_path):
    path = write(tmp_path / "latin1.tsv", airr_text(header=[*HEADER[:-1], "duplicate_count_é"]).encode("latin-1"))
    refused(path, r"row 1 \(the header\) is not UTF-8 text \(byte 0xe9\)\. Fix: convert the file to UTF-8")


# ---- documented handling: parsed like a clean LF file, every row accounted for ----------------------


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr-only"])
def test_line_endings_parse_like_lf(tmp_path, lf_file, newline):
    path = write(tmp_path / "s.tsv", airr_text(newline=newline))
    same_result(path, lf_file)
    assert qc_of(path)["kept_count"] == 12 + 7  # duplicate_count is the last column: no '12\r'


def test_crlf_with_an_empty_last_column(tmp_path):
    rows = [GOOD[0], [*GOOD[1][:-1], ""]]
    qc = qc_of(write(tmp_path / "s.tsv", airr_text(rows, newline="\r\n")))
    assert (qc["kept_rows"], qc["missing_count_rows"], qc["input_count"]) == (1, 1, 12)


@pytest.mark.parametrize("first", ["sequence_id", "junction_aa"])
def test_utf8_bom(tmp_path, first):
    order = [HEADER.index(first), *[i for i, name in enumerate(HEADER) if name != first]]
    header, rows = [HEADER[i] for i in order], [[fields[i] for i in order] for fields in GOOD]
    plain = write(tmp_path / "plain.tsv", airr_text(rows, header))
    path = write(tmp_path / "bom.tsv", "\ufeff" + airr_text(rows, header))
    assert read_airr_header(path)[0] == first
    same_result(path, plain)


def test_bom_crlf_and_gzip_together(tmp_path, lf_file):
    path = write(tmp_path / "s.tsv.gz", gzip.compress(("\ufeff" + airr_text(newline="\r\n")).encode()))
    same_result(path, lf_file)


def test_gzip_without_gz_suffix_and_multi_member_gzip(tmp_path, lf_file):
    text = airr_text().encode()
    same_result(write(tmp_path / "noext.tsv", gzip.compress(text)), lf_file)
    cut = text.index(b"\nr3") + 1  # bgzip-style: several gzip members, one after another
    same_result(write(tmp_path / "members.tsv.gz", gzip.compress(text[:cut]) + gzip.compress(text[cut:])), lf_file)


def test_quoted_fields(tmp_path, lf_file):
    header = [*HEADER, "note"]
    rows = [['"' + value + '"' for value in fields] + ['"a\tquoted tab"'] for fields in GOOD]
    path = write(tmp_path / "quoted.tsv", airr_text(rows, ['"' + name + '"' for name in header]))
    same_result(path, write(tmp_path / "plain.tsv", airr_text([[*f, "x"] for f in GOOD], header)))
    result = ingest_airr(path)
    assert result.clonotypes.filter(pl.col("v_ambiguous"))["v_gene"].to_list() == ["TRBV6-2"]


def test_unclosed_quote_that_swallows_a_row_is_refused(tmp_path):
    rows = [GOOD[0], [*GOOD[1][:5], '"' + GOOD[1][5], GOOD[1][6]], [*GOOD[2][:5], 'CASS"', GOOD[2][6]], GOOD[3]]
    refused(
        write(tmp_path / "s.tsv", airr_text(rows)),
        r"row 3, column 'junction_aa': 'CASSPDRGYTF\\t7\\nr3.*' runs over several lines \(an unclosed quote\?\)\. "
        r"Fix: close or remove the stray",
    )


def test_quoted_tab_after_the_first_256_kib_is_read_with_quotes(tmp_path):
    rows = [[*fields, "note"] for fields in random_rows(6000)]
    rows.append([*GOOD[0], '"a\ttab"'])
    path = write(tmp_path / "s.tsv", airr_text(rows, [*HEADER, "note"]))
    assert b'"' not in path.read_bytes()[: 1 << 18]
    qc = qc_of(path)
    assert (qc["input_rows"], qc["kept_rows"]) == (6001, 6001)


def test_quoted_empty_value_is_missing(tmp_path):
    rows = [GOOD[0], [*GOOD[1][:5], '""', GOOD[1][6]]]
    qc = qc_of(write(tmp_path / "s.tsv", airr_text(rows)))
    assert (qc["kept_rows"], qc["missing_junction_rows"], qc["missing_junction_count"]) == (1, 1, 7)


def test_blank_lines_are_not_rows(tmp_path, lf_file):
    text = airr_text(GOOD[:2]) + "\n" + airr_text(GOOD[2:]).split("\n", 1)[1] + "\n\n"
    qc = qc_of(write(tmp_path / "s.tsv", text))
    assert qc == qc_of(lf_file)
    assert qc["input_rows"] == len(GOOD)


def test_row_of_empty_fields_is_counted_as_dropped(tmp_path):
    qc = qc_of(write(tmp_path / "s.tsv", airr_text([GOOD[0], [""] * len(HEADER)])))
    assert (qc["input_rows"], qc["kept_rows"], qc["wrong_locus_rows"]) == (2, 1, 1)


def test_header_names_with_spaces_and_quotes_are_cleaned(tmp_path, lf_file):
    header = [f' "{name}" ' if name == "v_call" else f"{name} " for name in HEADER]
    same_result(write(tmp_path / "s.tsv", airr_text(header=header)), lf_file)


@pytest.mark.parametrize("count", [2**31 + 7, 2**53 + 1, 2**62 + 3])
def test_huge_single_clone_count_is_kept_exactly(tmp_path, count):
    rows = [[*GOOD[0][:-1], str(count)], GOOD[1]]
    result = ingest_airr(write(tmp_path / "s.tsv", airr_text(rows)))
    assert result.clonotypes["count"].to_list() == [count, 7]
    assert result.qc["kept_count"][0] == count + 7 == result.qc["input_count"][0]


def test_whole_numbers_written_as_decimals_are_accepted(tmp_path):
    rows = [[*GOOD[0][:-1], "12.0"], [*GOOD[1][:-1], "7.000"], [*GOOD[2][:-1], "0.0"]]
    qc = qc_of(write(tmp_path / "s.tsv", airr_text(rows)))
    assert (qc["kept_count"], qc["non_productive_count"]) == (19, 0)
    assert qc["non_productive_rows"] == 1


# ---- the sample sheet (cases not already in tests/test_samplesheet.py) ------------------------------

SHEET_HEADER = ["patient", "sample", "compartment", "day", "replicate", "path", "format", "response"]
SHEET_ROWS = [
    ["P1", "P1_b0", "blood", "0", "1", "b0.tsv", "airr", "responder"],
    ["P1", "P1_t", "tumor", "-7", "", "t.tsv", "", "responder"],
]


def sheet(
    tmp_path: Path,
    rows: list[list[str]] = SHEET_ROWS,
    header: list[str] = SHEET_HEADER,
    newline: str = "\n",
    prefix: str = "",
    encoding: str = "utf-8",
) -> Path:
    for name in ("b0.tsv", "t.tsv", "b7.tsv"):
        (tmp_path / name).write_text("x")
    text = prefix + newline.join("\t".join(fields) for fields in [header, *rows]) + newline
    return write(tmp_path / "samples.tsv", text.encode(encoding))


def sheet_refused(path: Path, pattern: str, **options: object) -> str:
    with pytest.raises(SampleSheetError) as info:
        read_sample_sheet(path, **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: ") and "Fix: " in message, message
    assert re.search(pattern, message), message
    return message


def test_sheet_empty_missing_or_a_directory(tmp_path):
    sheet_refused(write(tmp_path / "samples.tsv", b""), r"the sheet is empty \(0 bytes\)\. Fix: write a header")
    sheet_refused(tmp_path / "nowhere.tsv", r"sample sheet not found\. Fix: pass an existing TSV file")
    sheet_refused(tmp_path, r"is a directory, not a sample sheet\. Fix: ")


@pytest.mark.parametrize(
    ("newline", "prefix"),
    [("\r\n", ""), ("\r", ""), ("\n", "\ufeff"), ("\r\n", "\ufeff")],
    ids=["crlf", "cr-only", "bom", "bom-crlf"],
)
def test_sheet_line_endings_and_bom_parse_like_lf(tmp_path, newline, prefix):
    expected = read_sample_sheet(sheet(tmp_path))
    samples = read_sample_sheet(sheet(tmp_path, newline=newline, prefix=prefix))
    assert samples.columns[0] == "patient"
    assert samples["response"].to_list() == ["responder", "responder"]  # the last column has no '\r'
    assert samples.equals(expected)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_sheet_that_is_not_utf8(tmp_path, encoding):
    rows = [SHEET_ROWS[0], [*SHEET_ROWS[1][:-1], "répondeur"]]
    pattern = (
        r"row 3 is not UTF-8 text \(byte 0xe9.*Fix: save the sheet as UTF-8"
        if encoding == "latin-1"
        else r"the sheet is UTF-16 text\. Fix: save it as UTF-8"
    )
    sheet_refused(sheet(tmp_path, rows, encoding=encoding), pattern)


def test_sheet_duplicated_column(tmp_path):
    header = [*SHEET_HEADER[:-1], "day"]
    sheet_refused(
        sheet(tmp_path, header=header),
        r"column 'day' appears more than once in the header \(columns 4, 8\)\. Fix: keep one column",
    )


@pytest.mark.parametrize(("fields", "got"), [(SHEET_ROWS[1][:-1], 7), ([*SHEET_ROWS[1], "extra"], 9)])
def test_sheet_ragged_rows(tmp_path, fields, got):
    sheet_refused(
        sheet(tmp_path, [SHEET_ROWS[0], fields]),
        rf"row 3 has {got} field\(s\) but the header has 8\. Fix: give every row one tab-separated value",
    )


def test_sheet_whitespace_around_values_and_names(tmp_path):
    rows = [[f" {value} " for value in SHEET_ROWS[0]], [f"{value}  " for value in SHEET_ROWS[1]]]
    samples = read_sample_sheet(sheet(tmp_path, rows, header=[f" {name}" for name in SHEET_HEADER]))
    assert samples.equals(read_sample_sheet(sheet(tmp_path)))
    assert samples["sample"].to_list() == ["P1_b0", "P1_t"]
    assert Path(samples["path"][0]) == (tmp_path / "b0.tsv").resolve()


def test_sheet_comments_blank_lines_and_quotes(tmp_path):
    path = sheet(
        tmp_path,
        [
            ["# a comment line"],
            [],
            [f'"{value}"' for value in SHEET_ROWS[0]],
            [*SHEET_ROWS[1][:-1], '"responder, partial"'],
        ],
    )
    samples = read_sample_sheet(path)
    assert samples["sample"].to_list() == ["P1_b0", "P1_t"]
    assert samples["response"].to_list() == ["responder", "responder, partial"]


def test_sheet_errors_give_the_line_of_the_file_after_comments(tmp_path):
    path = sheet(tmp_path, [["# a comment line"], [], SHEET_ROWS[0], [*SHEET_ROWS[1][:2], "blod", *SHEET_ROWS[1][3:]]])
    sheet_refused(path, r"row 5 \(sample 'P1_t'\): column 'compartment' is 'blod'\. Fix: use one of blood")


def test_sheet_misspelled_column_gets_a_hint(tmp_path):
    header = [name if name != "compartment" else "compartement" for name in SHEET_HEADER]
    sheet_refused(
        sheet(tmp_path, header=header),
        r"missing column\(s\) 'compartment' .*did you mean 'compartement' for 'compartment'\?.*Fix:",
    )


def test_sheet_path_that_is_a_directory(tmp_path):
    (tmp_path / "adir").mkdir()
    rows = [SHEET_ROWS[0], [*SHEET_ROWS[1][:5], "adir", *SHEET_ROWS[1][6:]]]
    sheet_refused(sheet(tmp_path, rows), r"row 3 \(sample 'P1_t'\): .*adir is a directory\. Fix: 'path' must name")


def test_sheet_same_file_spelled_two_ways(tmp_path):
    (tmp_path / "sub").mkdir()
    rows = [SHEET_ROWS[0], [*SHEET_ROWS[1][:5], "./sub/../b0.tsv", *SHEET_ROWS[1][6:]]]
    sheet_refused(sheet(tmp_path, rows), r"rows 2, 3 point at the same file .*b0\.tsv\. Fix: each sample needs")


def test_sheet_replicate_below_one(tmp_path):
    rows = [SHEET_ROWS[0], [*SHEET_ROWS[1][:4], "0", *SHEET_ROWS[1][5:]]]
    sheet_refused(sheet(tmp_path, rows), r"row 3 \(sample 'P1_t'\): column 'replicate': 0 is less than the minimum")


# ---- fuzz: random AIRR-like files, random encodings of the same rows --------------------------------

_TRUE, _FALSE = {"T", "TRUE", "true", "True", "1"}, {"F", "FALSE", "false", "False", "0"}
_V = ["TRBV5-1*01", "TRBV5-1*02", "TRBV6-2*01,TRBV6-3*01", "TRBV6-2*01, TRBV6-2*02", "TRAV1-2*01", "IGHV1-2*02", ""]
_J = ["TRBJ2-7*01", "TRBJ1-1*01,TRBJ2-1*01", "TRAJ33*01", ""]

counts = st.one_of(
    st.just(""),
    st.just("0"),
    st.integers(0, 50).map(str),
    st.integers(0, 2**40).map(str),
    st.integers(1, 99).map(lambda n: f"{n}.0"),
)
fuzz_rows = st.lists(
    st.fixed_dictionaries(
        {
            "productive": st.sampled_from(["T", "F", "", "TRUE", "false", "1", "0"]),
            "locus": st.sampled_from(["TRB", "TRB", "TRA", "IGH", ""]),
            "v_call": st.sampled_from(_V),
            "j_call": st.sampled_from(_J),
            "junction_aa": st.one_of(
                st.just(""),
                st.text(alphabet="ACDEFGHIKLMNPQRSTVWY*_~", max_size=16),
                st.sampled_from(["CASSLGQGYEQYF", "CASSPDRGYTF", "CASSQDF"]),
            ),
            "count": counts,
        }
    ),
    min_size=1,
    max_size=30,
)
layouts = st.fixed_dictionaries(
    {
        "newline": st.sampled_from(["\n", "\r\n", "\r"]),
        "bom": st.booleans(),
        "gzip": st.booleans(),
        "quote": st.booleans(),
        "trailing_blank": st.booleans(),
        "count_column": st.sampled_from(["duplicate_count", "umi_count"]),
        "shuffle": st.randoms(use_true_random=False),
    }
)


def render(rows: list[dict[str, str]], layout: dict) -> bytes:
    header = ["sequence_id", "productive", "locus", "v_call", "j_call", "junction_aa", layout["count_column"]]
    layout["shuffle"].shuffle(header)
    quote = (lambda v: f'"{v}"') if layout["quote"] else (lambda v: v)
    lines = ["\t".join(header)]
    for index, row in enumerate(rows):
        values = {**row, "sequence_id": f"s{index}", layout["count_column"]: row["count"]}
        lines.append("\t".join(quote(values[name]) for name in header))
    text = ("\ufeff" if layout["bom"] else "") + layout["newline"].join(lines) + layout["newline"]
    text += layout["newline"] if layout["trailing_blank"] else ""
    return gzip.compress(text.encode()) if layout["gzip"] else text.encode()


def expected_fate(row: dict[str, str]) -> str:
    """The fate rules of tcrtrack.ingest.assign_fates, written out independently (locus TRB, defaults)."""
    v, j, junction, count = row["v_call"], row["j_call"], row["junction_aa"], row["count"]
    prefix_v, prefix_j = v[:3] or None, j[:3] or None
    if (row["locus"] or prefix_v or prefix_j or "") != "TRB":
        return "wrong_locus"
    if (prefix_v and prefix_v != "TRB") or (prefix_j and prefix_j != "TRB"):
        return "locus_gene_mismatch"
    rules = [
        ("non_productive", row["productive"] in _FALSE),
        ("productive_missing", row["productive"] == ""),
        ("missing_junction", junction == ""),
        ("stop_codon", "*" in junction),
        ("out_of_frame", "_" in junction or "~" in junction),
        ("too_short", len(junction) < 5),
        ("missing_count", count == ""),
        ("zero_count", count != "" and int(count.split(".")[0]) == 0),
    ]
    return next((fate for fate, applies in rules if applies), "kept")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=fuzz_rows, layout=layouts)
def test_fuzz_every_row_is_accounted_for(tmp_path, rows, layout):
    path = write(tmp_path / ("fuzz.tsv.gz" if layout["gzip"] else "fuzz.tsv"), render(rows, layout))
    if all(row["count"] == "" for row in rows):  # an empty count column is no count column: each row counts 1
        rows = [{**row, "count": "1"} for row in rows]
    fates = [expected_fate(row) for row in rows]
    number = {index: int(row["count"].split(".")[0]) if row["count"] else 0 for index, row in enumerate(rows)}
    if "kept" not in fates:
        refused(path, r"no row is kept: ")
        return
    qc = qc_of(path)
    assert qc["input_rows"] == len(rows)
    assert qc["input_count"] == sum(number.values())
    for fate in ("kept", *DROP_REASONS):
        assert qc[f"{fate}_rows"] == fates.count(fate), fate
        assert qc[f"{fate}_count"] == sum(n for i, n in number.items() if fates[i] == fate), fate


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), gzipped=st.booleans())
def test_fuzz_damaged_files_give_a_clear_error_or_a_full_account(tmp_path, data, gzipped):
    """Cut, splice and corrupt a valid file: the result is a one-line InputFileError or a QC table whose
    identity holds -- never an exception from inside the parser."""
    text = bytearray(airr_text(GOOD * 3).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(text)))
        damage = data.draw(st.sampled_from([b"", b"\t", b"\n", b"\r", b'"', b"\xe9", b"\x00", b",", b"\xef\xbb\xbf"]))
        width = data.draw(st.integers(0, 4))
        text[position : position + width] = damage
    content = bytes(text)
    if gzipped:
        content = gzip.compress(content)
        content = content[: data.draw(st.integers(0, len(content)))]
    path = write(tmp_path / ("d.tsv.gz" if gzipped else "d.tsv"), content)
    try:
        qc_of(path)
    except InputFileError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(f"{path}: ") and ". Fix: " in message, message


def _ingest_patient(tmp_path: Path, files: dict[str, Path]) -> None:
    from tcrtrack.pipeline import ingest_step

    ingest_step(
        patient="P1",
        samples=list(files),
        repertoires=[str(p) for p in files.values()],
        formats=["airr"] * len(files),
        clonotypes_dir=str(tmp_path / "clonotypes"),
        qc_out=str(tmp_path / "qc.tsv"),
        locus="TRB",
        productive_only=True,
        min_junction_aa_length=5,
        definition="aa_vj",
    )


def test_patient_ingest_writes_a_table_per_sample_and_a_qc_row_each(tmp_path):
    files = {"b0": write(tmp_path / "b0.tsv", airr_text()), "b14": write(tmp_path / "b14.tsv", airr_text(GOOD[:2]))}
    _ingest_patient(tmp_path, files)
    qc = pl.read_csv(tmp_path / "qc.tsv", separator="\t")
    assert qc["sample"].to_list() == ["b0", "b14"] and qc["file"].to_list() == [str(p) for p in files.values()]
    for sample, path in files.items():
        table = pl.read_parquet(tmp_path / "clonotypes" / f"{sample}.parquet")
        assert table.equals(ingest_airr(path).clonotypes)
        assert qc.filter(pl.col("sample") == sample)["kept_count"].item() == table["count"].sum()


def test_patient_ingest_names_every_bad_file_and_writes_no_qc(tmp_path):
    good = write(tmp_path / "good.tsv", airr_text())
    empty = write(tmp_path / "empty.tsv", "")
    csv = write(tmp_path / "csv.tsv", airr_text().replace("\t", ","))
    with pytest.raises(InputFileError, match=r"empty\.tsv: .*Fix: "):  # one bad file: its own error, as is
        _ingest_patient(tmp_path, {"a": good, "b": empty})
    with pytest.raises(TcrtrackError) as info:
        _ingest_patient(tmp_path, {"a": empty, "b": good, "c": csv})
    message = str(info.value)
    assert "\n" not in message and message.startswith("2 input files of patient P1 are unusable: ")
    problems = message.removeprefix("2 input files of patient P1 are unusable: ").split(" | ")
    assert problems[0].startswith(f"{empty}: ") and problems[1].startswith(f"{csv}: ")
    assert all(". Fix: " in problem for problem in problems)
    assert not (tmp_path / "qc.tsv").exists()
