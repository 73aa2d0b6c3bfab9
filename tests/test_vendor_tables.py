"""Formats VDJtools reads (MiTCR, MiGEC, MiGMAP, IgBlastWrapper, IMGT/HighV-QUEST, IMSEQ, RTCR, older
VDJtools and MiXCR 1.x-3 headers), TRUST4 and BD Rhapsody, plus the one list of formats (FORMATS = CLI
choices = sample-sheet enum).

The files are written by the tests in the layouts VDJtools' parsers read (``mikessh/vdjtools``,
``src/main/groovy/com/antigenomics/vdjtools/io/parser/``; column names from the parsers, ``misc/Software.groovy``
and the tools' docs, cited in each converter's docstring), with hand-made rows. Expected totals are what
VDJtools reports for such a file: the sample's total count is the sum of ``count`` over its rows
(``Sample.count``), and ``FilterNonFunctional`` keeps the in-frame rows without a stop; tcrtrack's QC
``input_count`` and ``kept_count`` must equal them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tcrtrack.cli import main
from tcrtrack.errors import InputFileError
from tcrtrack.format_names import FORMATS
from tcrtrack.formats import detect_format, ingest_converted, to_airr

REPO = Path(__file__).resolve().parents[1]

_CODON = {
    "A": "GCC",
    "C": "TGT",
    "D": "GAT",
    "E": "GAG",
    "F": "TTC",
    "G": "GGC",
    "H": "CAC",
    "I": "ATC",
    "K": "AAG",
    "L": "CTG",
    "M": "ATG",
    "N": "AAC",
    "P": "CCC",
    "Q": "CAG",
    "R": "CGC",
    "S": "AGC",
    "T": "ACC",
    "V": "GTG",
    "W": "TGG",
    "Y": "TAC",
    "*": "TGA",
}


def nt(aa: str) -> str:
    return "".join(_CODON[residue] for residue in aa)


def write(path: Path, header: list[str], rows: list[list[object]], *, preamble: str | None = None) -> Path:
    lines = ([preamble] if preamble else []) + ["\t".join(header)]
    lines += ["\t".join("" if value is None else str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# (count, V, D, J, CDR3 aa, CDR3 nt): a productive TRB clone twice over two V ties, a stop, a frameshift
CLONES = [
    (60, "TRBV12-3", "TRBD1", "TRBJ2-7", "CASSLAGGYEQYF", nt("CASSLAGGYEQYF")),
    (25, "TRBV5-1", "TRBD2", "TRBJ1-1", "CASSPGTEAFF", nt("CASSPGTEAFF")),
    (10, "TRBV6-5", "", "TRBJ2-1", "CASS*GNEQFF", nt("CASS*GNEQFF")),
    (5, "TRBV20-1", "", "TRBJ1-2", "CSARD~GYTF", nt("CSARD") + "GG" + nt("GYTF")),
]
TOTAL, FUNCTIONAL = 100, 85


def check_totals(path: Path, fmt: str, *, total: int = TOTAL, kept: int = FUNCTIONAL) -> dict:
    assert detect_format(path) == fmt
    qc = ingest_converted(path).qc.row(0, named=True)
    assert qc["format"] == fmt
    assert (qc["input_count"], qc["kept_count"]) == (total, kept)
    assert qc["input_count"] == qc["kept_count"] + sum(
        qc[name] for name in qc if name.endswith("_count") and name not in ("input_count", "kept_count")
    )
    return qc


def test_mitcr(tmp_path: Path) -> None:
    header = [
        "Read count",
        "Percentage",
        "CDR3 nucleotide sequence",
        "CDR3 nucleotide quality",
        "Min quality",
        "CDR3 amino acid sequence",
        "V alleles",
        "V segments",
        "J alleles",
        "J segments",
        "D alleles",
        "D segments",
        "Last V nucleotide position",
        "First D nucleotide position",
        "Last D nucleotide position",
        "First J nucleotide position",
        "VD insertions",
        "DJ insertions",
        "Total insertions",
    ]
    rows = [
        [c, c / TOTAL, n, "I" * len(n), 30, aa, f"{v}*01", v, f"{j}*01", j, d and f"{d}*01", d, 10, -1, -1, 30, 1, 1, 2]
        for c, v, d, j, aa, n in CLONES
    ]
    qc = check_totals(write(tmp_path / "mitcr.txt", header, rows, preamble="#MiTCRProcessor run"), "mitcr")
    assert qc["kept_share"] == pytest.approx(1.0) and qc["truncated"] is False
    assert check_totals(write(tmp_path / "plain.txt", header, rows), "mitcr")["clonotypes"] == 2


def test_migec(tmp_path: Path) -> None:
    header = [
        "Count",
        "Percentage",
        "CDR3 nucleotide sequence",
        "CDR3 amino acid sequence",
        "V segments",
        "J segments",
        "D segments",
        "Last V nucleotide position",
        "First D nucleotide position",
        "Last D nucleotide position",
        "First J nucleotide position",
        "Good events",
        "Total events",
        "Good reads",
        "Total reads",
    ]
    rows = [
        [
            c,
            c / TOTAL,
            n,
            aa.replace("~", "?"),
            f"{v},TRBV12-4" if i == 0 else v,
            j,
            d,
            5,
            -1,
            -1,
            20,
            c,
            c,
            10 * c,
            10 * c,
        ]
        for i, (c, v, d, j, aa, n) in enumerate(CLONES)
    ]
    path = write(tmp_path / "migec.txt", header, rows)
    qc = check_totals(path, "migec")
    assert qc["v_ambiguous_rows"] == 1
    assert to_airr(path).frame["v_call"][0] == "TRBV12-3,TRBV12-4"


def test_migmap(tmp_path: Path) -> None:
    header = [
        "freq",
        "count",
        "v",
        "d",
        "j",
        "cdr3nt",
        "cdr3aa",
        "v.end.in.cdr3",
        "d.start.in.cdr3",
        "d.end.in.cdr3",
        "j.start.in.cdr3",
        "has.cdr3",
        "in.frame",
        "no.stop",
        "complete",
        "canonical",
    ]
    rows = [
        [
            c / TOTAL,
            c,
            v,
            d or ".",
            j,
            n,
            aa.replace("~", "_"),
            5,
            -1,
            -1,
            20,
            "true",
            str("~" not in aa).lower(),
            str("*" not in aa).lower(),
            "true",
            "true",
        ]
        for c, v, d, j, aa, n in CLONES
    ]
    check_totals(write(tmp_path / "migmap.txt", header, rows), "migmap")


def test_igblast_wrapper(tmp_path: Path) -> None:
    header = [
        "#reads_count",
        "reads_percent",
        "events_count",
        "events_percent",
        "cdr1nt",
        "cdr2nt",
        "cdr3nt",
        "cdr1aa",
        "cdr2aa",
        "cdr3aa",
        "inFrame",
        "noStop",
        "complete",
        "vSegment",
        "dSegment",
        "jSegment",
        "cdr1q",
        "cdr2q",
        "cdr3q",
        "mutations",
    ]
    rows = [
        [
            10 * c,
            10 * c / (10 * TOTAL),
            c,
            100 * c / TOTAL,
            "",
            "",
            n,
            "",
            "",
            aa.replace("~", "_"),
            str("~" not in aa).lower(),
            str("*" not in aa).lower(),
            "true",
            v,
            d or ".",
            j,
            "",
            "",
            "",
            ".",
        ]
        for c, v, d, j, aa, n in CLONES
    ]
    qc = check_totals(write(tmp_path / "igblast.txt", header, rows), "igblast")
    assert qc["kept_share"] == pytest.approx(1.0)  # events_percent is a percentage: recognised
    assert "percentages" in qc["truncation_note"]


def test_vdjtools_old_header(tmp_path: Path) -> None:
    header = ["#Seq. Count", "Percent", "N Sequence", "AA Sequence", "V segments", "D segment", "J segments"]
    rows = [[c, c / TOTAL, n, aa, v, d or ".", j] for c, v, d, j, aa, n in CLONES]
    check_totals(write(tmp_path / "old.txt", header, rows), "vdjtools")


def test_trust4_report_and_airr(tmp_path: Path) -> None:
    header = ["#count", "frequency", "CDR3nt", "CDR3aa", "V", "D", "J", "C", "cid", "cid_full_length"]
    rows = [
        [c, c / 103, n, aa.replace("*", "_"), v, d or "*", j, "TRBC2", f"assemble{i}", 1]
        for i, (c, v, d, j, aa, n) in enumerate(CLONES[:3])
    ]
    rows.append([5, 5 / 103, nt("CSARD") + "GG", "out_of_frame", "TRBV20-1", "*", "TRBJ1-2", "TRBC1", "assemble3", 0])
    rows.append([3, 3 / 103, nt("CASS"), "partial", "TRBV9", "*", "*", "*", "assemble4", 0])
    rows.append([40.4, 1.0, nt("CARDYW"), "CARDYW", "IGHV3-23", "*", "IGHJ4", "IGHM", "assemble5", 1])  # IG class
    qc = check_totals(write(tmp_path / "x_report.tsv", header, rows), "trust4", total=143, kept=FUNCTIONAL)
    assert (qc["non_productive_rows"], qc["wrong_locus_count"]) == (3, 40)
    assert qc["kept_share"] == pytest.approx(1.0)  # the IG row's frequency is of the IG class: not used
    # TRUST4's AIRR output (trust-airr.pl columns) is read by the AIRR reader
    airr_header = [
        "sequence_id",
        "sequence",
        "rev_comp",
        "productive",
        "v_call",
        "d_call",
        "j_call",
        "c_call",
        "sequence_alignment",
        "germline_alignment",
        "cdr1",
        "cdr2",
        "junction",
        "junction_aa",
        "v_cigar",
        "d_cigar",
        "j_cigar",
        "v_identity",
        "j_identity",
        "cell_id",
        "complete_vdj",
        "consensus_count",
    ]
    airr_rows = [
        [
            f"assemble{i}_0",
            n,
            "F",
            "F" if "*" in aa else "T",
            f"{v}*01",
            "",
            f"{j}*01",
            "TRBC2",
            "",
            "",
            "",
            "",
            n,
            "" if "*" in aa else aa,
            "",
            "",
            "",
            "",
            "",
            "",
            "T",
            c,
        ]
        for i, (c, v, _d, j, aa, n) in enumerate(CLONES[:3])
    ]
    airr = write(tmp_path / "x_airr.tsv", airr_header, airr_rows)
    assert detect_format(airr) == "airr"
    airr_qc = ingest_converted(airr).qc.row(0, named=True)
    assert (airr_qc["input_count"], airr_qc["kept_count"], airr_qc["count_source"]) == (95, 85, "consensus_count")


def test_rtcr(tmp_path: Path) -> None:
    header = [
        "Number of reads",
        "Amino acid sequence",
        "V gene",
        "J gene",
        "Junction nucleotide sequence",
        "V gene end position",
        "J gene start position",
        "Frame",
        "Number of stop codons",
        "Minimum Phred",
        "Quality",
    ]
    rows = [
        [c, aa, f"{v}*01", f"{j}*01", n, 10, 25, 0, aa.count("*"), 30, "I" * len(n)] for c, v, _d, j, aa, n in CLONES
    ]
    path = write(tmp_path / "results.tsv", header, rows)
    check_totals(path, "rtcr")
    assert to_airr(path).frame["junction_aa"].to_list()[:3] == ["CASSLAGGYEQYF", "CASSPGTEAFF", "CASS*GNEQFF"]


@pytest.mark.parametrize("name", ["3_Nt-sequences.txt", "1_Summary.txt"])
def test_imgt_highvquest(tmp_path: Path, name: str) -> None:
    if name.startswith("3"):
        header = [
            "Sequence number",
            "Sequence ID",
            "V-DOMAIN Functionality",
            "V-GENE and allele",
            "J-GENE and allele",
            "D-GENE and allele",
            "V-D-J-REGION",
            "V-J-REGION",
            "V-REGION",
            "FR1-IMGT",
            "CDR1-IMGT",
            "FR2-IMGT",
            "CDR2-IMGT",
            "FR3-IMGT",
            "CDR3-IMGT",
            "JUNCTION",
        ]
    else:
        header = [
            "Sequence number",
            "Sequence ID",
            "V-DOMAIN Functionality",
            "V-GENE and allele",
            "J-GENE and allele",
            "D-GENE and allele",
            "AA JUNCTION",
        ]
    rows = []
    for c, v, d, j, aa, n in CLONES:
        status = "productive" if aa.isalpha() else "unproductive (see comment)"
        gene = f"Homsap {v}*01 F" + (", or Homsap TRBV12-4*01 F" if v == "TRBV12-3" else "")
        junction = n.lower() if name.startswith("3") else aa.replace("~", "#")
        for _ in range(c // 5):  # one row per sequence
            rows.append(
                [
                    len(rows) + 1,
                    f"read{len(rows)}",
                    status,
                    gene,
                    f"Homsap {j}*01 F",
                    f"Homsap {d}*01 F" if d else "",
                    *[""] * (len(header) - 7),
                    junction,
                ]
            )
    path = write(tmp_path / name, header, rows)
    qc = check_totals(path, "imgt", total=TOTAL // 5, kept=FUNCTIONAL // 5)
    assert qc["v_ambiguous_rows"] == 12
    assert to_airr(path).frame["v_call"][0] == "TRBV12-3*01,TRBV12-4*01"


def test_imseq(tmp_path: Path) -> None:
    path = tmp_path / "imseq.tsv"
    path.write_text("".join(f"{v}:{n}:{j}\t{c}\n" for c, v, _d, j, _aa, n in CLONES))
    check_totals(path, "imseq")


def test_vidjil_clone_lines_as_vdjtools_reads_them(tmp_path: Path) -> None:
    """VDJtools' VidjilParser splits ``V:CDR3nt:J count`` on ``[: \\t]``: a space before the count (and blank
    lines, CRLF) are read like IMSEQ's tab; a bad line is named by its line number in the file."""
    path = tmp_path / "vidjil.txt"
    path.write_text(
        "".join(f"{v}:{n}:{j} {c}\r\n" + ("\n" if i == 1 else "") for i, (c, v, _d, j, _aa, n) in enumerate(CLONES))
    )
    check_totals(path, "imseq")
    assert to_airr(path).frame["junction_aa"].to_list()[:2] == ["CASSLAGGYEQYF", "CASSPGTEAFF"]
    path.write_text(f"TRBV9:{nt('CASSVGQGNEQFF')}:TRBJ2-1 4\n\nTRBV9 {nt('CASS')} 2\n")
    with pytest.raises(InputFileError, match="line 3: 'TRBV9 TGT"):
        ingest_converted(path, fmt="imseq")


def test_mixcr_2_human_readable_export_with_extra_columns(tmp_path: Path) -> None:
    header = [
        "Clone count",
        "Clone fraction",
        "Clonal sequence(s)",
        "Clonal sequence quality(s)",
        "All V hits",
        "All D hits",
        "All J hits",
        "All C hits",
        "All V alignments",
        "All D alignments",
        "All J alignments",
        "All C alignments",
        "N. Seq. CDR3",
        "Min. qual. CDR3",
        "AA. Seq. CDR3",
    ]
    rows = [
        [
            c,
            c / TOTAL,
            n,
            "I" * len(n),
            f"{v}*00(1500)",
            d and f"{d}*00(40)",
            f"{j}*00(250)",
            "",
            "",
            "",
            "",
            "",
            n,
            38,
            aa.replace("~", "_"),
        ]
        for c, v, d, j, aa, n in CLONES
    ]
    check_totals(write(tmp_path / "mixcr2.txt", header, rows), "mixcr")


def test_mixcr_3_target_sequences(tmp_path: Path) -> None:
    header = [
        "cloneId",
        "cloneCount",
        "cloneFraction",
        "targetSequences",
        "targetQualities",
        "allVHitsWithScore",
        "allDHitsWithScore",
        "allJHitsWithScore",
        "allCHitsWithScore",
        "allVAlignments",
        "allDAlignments",
        "allJAlignments",
        "allCAlignments",
        "nSeqCDR3",
        "minQualCDR3",
        "aaSeqCDR3",
        "refPoints",
    ]
    rows = [
        [
            i,
            c,
            c / TOTAL,
            n,
            "I" * len(n),
            f"{v}*00(1500)",
            "",
            f"{j}*00(250)",
            "",
            "",
            "",
            "",
            "",
            n,
            38,
            aa.replace("~", "_"),
            ":::",
        ]
        for i, (c, v, _d, j, aa, n) in enumerate(CLONES)
    ]
    check_totals(write(tmp_path / "mixcr3.txt", header, rows), "mixcr")
    # without the optional columns (no D/J alignments, no fraction, no cloneId): still read
    slim = write(
        tmp_path / "slim.txt",
        ["cloneCount", "allVHitsWithScore", "allJHitsWithScore", "aaSeqCDR3"],
        [[c, f"{v}*00(1500)", f"{j}*00(250)", aa.replace("~", "_")] for c, v, _d, j, aa, _n in CLONES],
    )
    check_totals(slim, "mixcr")


# --- bad input: one line, never a traceback ----------------------------------------------------------------

LAYOUT_HEADERS = {
    "migec": [
        "Count",
        "Percentage",
        "CDR3 nucleotide sequence",
        "CDR3 amino acid sequence",
        "V segments",
        "J segments",
        "D segments",
    ],
    "migmap": ["freq", "count", "v", "d", "j", "cdr3nt", "cdr3aa", "in.frame", "no.stop"],
    "igblast": [
        "#reads_count",
        "reads_percent",
        "events_count",
        "events_percent",
        "cdr3nt",
        "cdr3aa",
        "inFrame",
        "noStop",
        "vSegment",
        "dSegment",
        "jSegment",
    ],
    "trust4": ["#count", "frequency", "CDR3nt", "CDR3aa", "V", "D", "J", "C", "cid", "cid_full_length"],
    "rtcr": ["Number of reads", "Amino acid sequence", "V gene", "J gene", "Junction nucleotide sequence"],
    "imgt": [
        "Sequence number",
        "Sequence ID",
        "V-DOMAIN Functionality",
        "V-GENE and allele",
        "J-GENE and allele",
        "D-GENE and allele",
        "JUNCTION",
    ],
}
COUNT_COLUMN = {
    "migec": "Count",
    "migmap": "count",
    "igblast": "events_count",
    "trust4": "#count",
    "rtcr": "Number of reads",
}


def _row(header: list[str], count: object) -> list[object]:
    values = {
        "Count": count,
        "count": count,
        "events_count": count,
        "#count": count,
        "Number of reads": count,
        "V gene": "TRBV9",
        "J gene": "TRBJ2-1",
        "Junction nucleotide sequence": nt("CASSVGQGNEQFF"),
        "V segments": "TRBV9",
        "v": "TRBV9",
        "vSegment": "TRBV9",
        "V": "TRBV9",
        "J segments": "TRBJ2-1",
        "j": "TRBJ2-1",
        "jSegment": "TRBJ2-1",
        "J": "TRBJ2-1",
        "V-GENE and allele": "Homsap TRBV9*01 F",
        "J-GENE and allele": "Homsap TRBJ2-1*01 F",
        "JUNCTION": nt("CASSVGQGNEQFF"),
        "CDR3 amino acid sequence": "CASSVGQGNEQFF",
        "cdr3aa": "CASSVGQGNEQFF",
        "CDR3aa": "CASSVGQGNEQFF",
        "in.frame": "true",
        "no.stop": "true",
        "inFrame": "true",
        "noStop": "true",
    }
    return [values.get(name, "") for name in header]


@pytest.mark.parametrize("fmt", sorted(COUNT_COLUMN))
def test_text_in_count_names_row_and_column(tmp_path: Path, fmt: str) -> None:
    header = LAYOUT_HEADERS[fmt]
    path = write(tmp_path / "bad.txt", header, [_row(header, 3), _row(header, "many")])
    column = COUNT_COLUMN[fmt].lstrip("#")
    with pytest.raises(InputFileError, match=rf"row 3, column '{column}': 'many' is not a count"):
        ingest_converted(path, fmt=fmt)


@pytest.mark.parametrize("fmt", sorted(LAYOUT_HEADERS))
def test_missing_count_or_junction_column_is_one_line(tmp_path: Path, fmt: str) -> None:
    header = [name for name in LAYOUT_HEADERS[fmt] if name != COUNT_COLUMN.get(fmt, "JUNCTION")]
    path = write(tmp_path / "short.txt", header, [_row(header, 3)])
    with pytest.raises(InputFileError, match=f"{fmt} export lacks column") as caught:
        ingest_converted(path, fmt=fmt)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) - {"airr"}))
def test_empty_and_header_only_files(tmp_path: Path, fmt: str) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(InputFileError, match="empty"):
        ingest_converted(empty, fmt=fmt)
    if fmt in LAYOUT_HEADERS:
        only = write(tmp_path / "header.txt", LAYOUT_HEADERS[fmt], [])
        with pytest.raises(InputFileError, match="no row is kept"):
            ingest_converted(only, fmt=fmt)


def test_imseq_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "imseq.tsv"
    path.write_text(f"TRBV9:{nt('CASSVGQGNEQFF')}:TRBJ2-1\t4\nTRBV9-{nt('CASS')}\t2\n")
    with pytest.raises(InputFileError, match="line 2"):
        ingest_converted(path, fmt="imseq")


def test_unknown_layout_lists_every_format(tmp_path: Path) -> None:
    path = write(tmp_path / "mystery.tsv", ["clone", "size", "cdr3"], [["1", "2", "CASSF"]])
    with pytest.raises(InputFileError) as caught:
        detect_format(path)
    message = str(caught.value)
    assert "\n" not in message and all(f"{name}:" in message for name in FORMATS)


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04\x14\x00\x06\x00 [Content_Types].xml", bytes(range(256)) * 4, gzip.compress(bytes(range(7, 200)))],
)
def test_binary_data_is_named_without_echoing_it(tmp_path: Path, data: bytes) -> None:
    """An Excel workbook or other binary file in the sheet: one printable line, not the bytes of its header."""
    path = tmp_path / "export.tsv"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match="is not a text table: its first line holds binary data") as caught:
        detect_format(path)
    assert str(caught.value).isprintable()
    assert ("Excel" in str(caught.value)) == data.startswith(b"PK")


# --- one list of formats ------------------------------------------------------------------------------------


def test_formats_cli_choices_and_sheet_schema_agree() -> None:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "samples.schema.yaml").read_text())
    assert schema["properties"]["format"]["enum"] == ["auto", *FORMATS]
    option = next(param for param in main.commands["convert"].params if param.name == "fmt")
    assert list(option.type.choices) == ["auto", *FORMATS]
    from tcrtrack.formats import _CONVERTERS
    from tcrtrack.formats import FORMATS as formats_package

    assert formats_package is FORMATS and set(_CONVERTERS) == set(FORMATS) - {"airr"}


def test_convert_cli_reads_a_new_format(tmp_path: Path) -> None:
    header = LAYOUT_HEADERS["trust4"]
    source = write(tmp_path / "r_report.tsv", header, [_row(header, 7)])
    result = CliRunner().invoke(main, ["convert", "--from", "trust4", str(source), str(tmp_path / "out.tsv")])
    assert result.exit_code == 0, result.output
    assert "(trust4)" in result.output and (tmp_path / "out.tsv").exists()


def test_bd_rhapsody_dominant_contigs_airr_counts_cells(tmp_path: Path) -> None:
    """BD Rhapsody's ``*_VDJ_Dominant_Contigs_AIRR.tsv``: AIRR per-cell contigs (the columns scRepertoire's
    ``.parseBD`` reads: cell_id, locus, v_call, d_call, j_call, c_call, cdr3, cdr3_aa, consensus_count,
    productive, plus AIRR's required junction fields); clonotypes count distinct cells, like 10x."""
    header = [
        "sequence_id",
        "sequence",
        "rev_comp",
        "productive",
        "v_call",
        "d_call",
        "j_call",
        "c_call",
        "sequence_alignment",
        "germline_alignment",
        "junction",
        "junction_aa",
        "v_cigar",
        "d_cigar",
        "j_cigar",
        "cell_id",
        "locus",
        "cdr3",
        "cdr3_aa",
        "consensus_count",
    ]
    beta = ("TRBV12-3*01", "TRBJ2-7*01", "CASSLAGGYEQYF")
    alpha = ("TRAV1-2*01", "TRAJ33*01", "CAVMDSNYQLIW")
    rows = []
    for cell, reads in (("c1", 40), ("c2", 12), ("c3", 7)):  # three cells of one TRB clonotype, each with a TRA
        for v, j, aa in (beta, alpha):
            rows.append(
                [
                    f"{cell}_{v[:3]}",
                    "",
                    "F",
                    "T",
                    v,
                    "",
                    j,
                    "",
                    "",
                    "",
                    nt(aa),
                    aa,
                    "",
                    "",
                    "",
                    cell,
                    v[:3],
                    nt(aa[1:-1]),
                    aa[1:-1],
                    reads,
                ]
            )
    path = write(tmp_path / "S1_VDJ_Dominant_Contigs_AIRR.tsv", header, rows)
    assert detect_format(path) == "airr"
    result = ingest_converted(path)
    qc = result.qc.row(0, named=True)
    assert (qc["kept_rows"], qc["wrong_locus_rows"], qc["kept_count"]) == (3, 3, 59)
    assert result.clonotypes["count"].to_list() == [3]  # cells, not reads
    assert qc["truncated"] is False  # per-cell contigs are never judged by their number of rows


def test_vidjil_airr_consensus_ratio_is_truncation_evidence(tmp_path: Path) -> None:
    """Vidjil-algo's AIRR .tsv (vidjil docs, "AIRR .tsv output"): required AIRR fields, ``consensus_count`` =
    reads of the clone, ``consensus_ratio`` = its share of all reads with a recombination, incomplete
    recombinations as locus ``TRB+``. A file of the top clones is judged truncated by that ratio."""
    header = [
        "sequence_id",
        "sequence",
        "rev_comp",
        "productive",
        "v_call",
        "d_call",
        "j_call",
        "sequence_alignment",
        "germline_alignment",
        "junction",
        "junction_aa",
        "v_cigar",
        "d_cigar",
        "j_cigar",
        "locus",
        "consensus_count",
        "consensus_ratio",
        "clone_id",
    ]
    rows = [
        [
            f"w{i}",
            n,
            "F",
            "F" if "*" in aa or "~" in aa else "T",
            v,
            d,
            j,
            "",
            "",
            n,
            aa.replace("~", "_"),
            "",
            "",
            "",
            "TRB",
            c,
            c / 400,
            f"w{i}",
        ]
        for i, (c, v, d, j, aa, n) in enumerate(CLONES)
    ]
    rows.append(["w9", "ACGT", "F", "", "", "", "TRBJ1-1", "", "", "", "", "", "", "", "TRB+", 20, 20 / 400, "w9"])
    path = write(tmp_path / "vidjil.tsv", header, rows)
    assert detect_format(path) == "airr"
    result = ingest_converted(path)
    qc = result.qc.row(0, named=True)
    assert (qc["input_count"], qc["kept_count"], qc["wrong_locus_count"]) == (120, FUNCTIONAL, 20)
    assert (qc["implied_depth"], qc["kept_share"], qc["truncated"]) == (pytest.approx(400), pytest.approx(0.3), True)
    assert result.clonotypes["frequency"].to_list() == pytest.approx([60 / 400, 25 / 400])


@pytest.mark.parametrize("fmt", sorted(LAYOUT_HEADERS))
def test_no_traceback_on_missing_columns_or_garbage(tmp_path: Path, fmt: str) -> None:
    """Every column dropped in turn, and rows of junk (text, negatives, nan, N-rich junctions): either a
    result or one InputFileError line, never another exception."""
    header = LAYOUT_HEADERS[fmt]
    junk = ["", "x", "-1", "1e400", "nan", "TRBV9", "*", ".", "partial", "CASS_F", "0", "3.5", "NNNTGT"]
    cases = [([c for c in header if c != drop], None) for drop in header]
    cases += [
        (header, [[junk[(i * 7 + j * 3 + k) % len(junk)] for j in range(len(header))] for k in range(3)])
        for i in range(12)
    ]
    for number, (columns, rows) in enumerate(cases):
        path = write(tmp_path / f"case{number}.txt", columns, rows if rows is not None else [_row(columns, 3)])
        for declared in (fmt, "auto"):
            try:
                ingest_converted(path, fmt=declared)
            except InputFileError as error:
                assert "\n" not in str(error)


def test_degenerate_junction_bases_translate_to_x(tmp_path: Path) -> None:
    path = tmp_path / "imseq.tsv"
    path.write_text(f"TRBV9:{nt('CASSV')}NNN{nt('QGNEQFF')}:TRBJ2-1\t4\n")
    assert to_airr(path).frame["junction_aa"].to_list() == ["CASSVXQGNEQFF"]
