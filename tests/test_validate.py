"""`tcrtrack validate` reads every file in full through the run's ingest and names every problem at once."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner

from tcrtrack.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO_FILE = ROOT / "config" / "demo" / "P01" / "P01_blood_d0_r1.tsv.gz"


def airr_rows(n: int = 30) -> list[list[str]]:
    return [line.split("\t") for line in gzip.decompress(DEMO_FILE.read_bytes()).decode().splitlines()[:n]]


def write(path: Path, rows: list[list[str]]) -> str:
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return path.name


def with_value(rows: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in rows]
    rows[row][rows[0].index(column)] = value
    return rows


@pytest.fixture
def bad_sheet(tmp_path) -> Path:
    rows = airr_rows()
    head = rows[0]
    igh = [head] + [
        [
            {"locus": "IGH", "v_call": "IGHV3-23*01", "j_call": "IGHJ4*02"}.get(c, v)
            for c, v in zip(head, r, strict=False)
        ]
        for r in rows[1:]
    ]
    files = {
        "good": write(tmp_path / "good.tsv", rows),
        "negative": write(tmp_path / "negative.tsv", with_value(rows, 5, "duplicate_count", "-3")),
        "text": write(tmp_path / "text.tsv", with_value(rows, 7, "duplicate_count", "many")),
        "igh": write(tmp_path / "igh.tsv", igh),
        "unknown": write(tmp_path / "unknown.tsv", [["foo", "bar", "baz"], ["1", "2", "3"]]),
        "missing": "missing.tsv",
    }
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "patient\tsample\tcompartment\tday\tpath\n"
        + "".join(f"P\tP_{name}\tblood\t{day}\t{file}\n" for day, (name, file) in enumerate(files.items()))
    )
    return sheet


def test_every_problem_of_every_file_in_one_pass(bad_sheet):
    result = CliRunner().invoke(main, ["validate", str(bad_sheet)])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("problem: ")]
    folder = bad_sheet.parent
    assert problems == [
        f"problem: sample 'P_negative': {folder / 'negative.tsv'}: row 6, column 'duplicate_count': '-3' is not a "
        "whole number >= 0 (up to 2**63 - 1). Fix: duplicate_count must hold non-negative integer counts",
        f"problem: sample 'P_text': {folder / 'text.tsv'}: row 8, column 'duplicate_count': 'many' is not a whole "
        "number >= 0 (up to 2**63 - 1). Fix: duplicate_count must hold non-negative integer counts",
        f"problem: sample 'P_igh': {folder / 'igh.tsv'}: no row is kept: 29 of 29 rows wrong_locus. Fix: check that "
        "the file holds productive TRB rearrangements, or set ingest.locus / ingest.productive_only in the config",
        problems[3],
        f"problem: {bad_sheet}: sample 'P_missing': file {folder / 'missing.tsv'} does not exist. Fix: correct "
        "'path' (absolute, or relative to the sheet's folder)",
    ]
    assert problems[3].startswith(
        f"problem: sample 'P_unknown': {folder / 'unknown.tsv'}: unknown repertoire "
        "format (header starts: foo, bar, baz). Fix: give one of the known formats"
    )
    assert result.output.strip().splitlines()[-1] == (
        "Error: 5 of 6 files have problems (one line each above); the run would stop on them"
    )


def test_the_configured_locus_is_the_runs(bad_sheet, tmp_path):
    """With the run's config (ingest.locus: TRA) the TRB file is refused, naming TRA; a locus the run's config
    schema refuses (IGH: the run would stop on the configuration) is a problem of its own."""
    sheet = tmp_path / "good_only.tsv"
    lines = bad_sheet.read_text().splitlines()
    sheet.write_text("\n".join([lines[0], *(line for line in lines if "P_good" in line)]) + "\n")
    (tmp_path / "tra.yaml").write_text("ingest:\n  locus: TRA\n")
    result = CliRunner().invoke(main, ["validate", str(sheet), "--configfile", str(tmp_path / "tra.yaml")])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("problem")]
    assert len(problems) == 1 and problems[0].startswith("problem: sample 'P_good'")
    assert "productive TRA rearrangements" in problems[0]
    (tmp_path / "igh.yaml").write_text("ingest:\n  locus: IGH\n")
    result = CliRunner().invoke(main, ["validate", str(sheet), "--configfile", str(tmp_path / "igh.yaml")])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("problem")] == [
        "problem: configuration: config key 'ingest.locus' is 'IGH': 'IGH' is not one of ['TRA', 'TRB', 'TRG', "
        "'TRD']. Fix: use one of TRA, TRB, TRG, TRD"
    ]


def test_a_clean_sheet_passes_with_kept_and_dropped_counts_per_sample(tmp_path):
    rows = airr_rows()
    sheet = tmp_path / "samples.tsv"
    write(tmp_path / "a.tsv", rows)
    write(tmp_path / "b.tsv", with_value(rows, 3, "productive", "F"))
    sheet.write_text("patient\tsample\tcompartment\tday\tpath\nP\tP_a\tblood\t0\ta.tsv\nP\tP_b\tblood\t7\tb.tsv\n")
    result = CliRunner().invoke(main, ["validate", str(sheet)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("sample\tformat\tinput_rows\tkept_rows\tdropped_rows")
    a = lines[1].split("\t")
    b = lines[2].split("\t")
    assert a[:2] == ["P_a", "airr"] and int(a[2]) == 29 and int(a[3]) + int(a[4]) == 29
    assert int(b[4]) == int(a[4]) + 1 and "non_productive" in b[7]
    assert lines[-1] == f"{sheet}: 2 samples of 1 patients, every file read in full (locus TRB): no problem"


def test_the_demo_sheet_passes():
    result = CliRunner().invoke(main, ["validate", str(ROOT / "config" / "samples.tsv")])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1 + 35 + 1


def test_every_bad_row_every_sheet_row_and_every_config_key(tmp_path):
    """The run would stop on the configuration, then the sheet, then each file: validate names them all at once,
    still reads the files of the sheet's good rows, and counts the other bad rows of a file."""
    rows = airr_rows()
    text = with_value(
        with_value(with_value(rows, 3, "duplicate_count", "many"), 9, "duplicate_count", "-1"),
        12,
        "duplicate_count",
        "x",
    )
    write(tmp_path / "text.tsv", text)
    write(tmp_path / "good.tsv", rows)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "patient\tsample\tcompartment\tday\tpath\n"
        "P\tP_a\tblod\t0\tgood.tsv\n"  # row 2: bad compartment
        "P\tP_b\tblood\tx\tgood.tsv\n"  # row 3: bad day
        "P\tP_c\tblood\t7\ttext.tsv\n"
    )
    (tmp_path / "run.yaml").write_text("expansion:\n  model: poisson\ningest:\n  locus: TRX\n")
    result = CliRunner().invoke(main, ["validate", str(sheet), "--configfile", str(tmp_path / "run.yaml")])
    assert result.exit_code == 1
    problems = [line for line in result.output.splitlines() if line.startswith("problem: ")]
    assert problems[0].startswith("problem: configuration: config key 'expansion.model' is 'poisson'")
    assert problems[1].startswith("problem: configuration: config key 'ingest.locus' is 'TRX'")
    assert problems[2] == (
        f"problem: {sheet}: row 2 (sample 'P_a'): column 'compartment' is 'blod'. Fix: use one "
        "of blood, tumor, product."
    )
    assert problems[3].startswith(f"problem: {sheet}: row 3 (sample 'P_b'): column 'day' is 'x'.")
    # the broken locus is not used to read the files (else every file would be 'wrong_locus')
    assert problems[4:] == [
        f"problem: sample 'P_c': {tmp_path / 'text.tsv'}: row 4, column 'duplicate_count': 'many' is not a whole "
        "number >= 0 (up to 2**63 - 1) (and 2 more rows like it: row 10, row 13). Fix: duplicate_count must hold "
        "non-negative integer counts"
    ]
    assert result.output.strip().splitlines()[-1] == (
        "Error: 1 of 1 files has a problem, and 4 of the sheet or configuration (one line each above); the run "
        "would stop on them"
    )


SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent (outside the project's CI)")
def test_truncated_exports_are_named_in_the_table(tmp_path):
    """LymphoSeq's top-1,000 exports (SOURCE.md): day 0 keeps 0.85 of its sample, day 32 is complete."""
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "patient\tsample\tcompartment\tday\tpath\n"
        f"L\td0\tblood\t0\t{SHARED_DATA / 'lymphoseq' / 'TRB_Unsorted_0.tsv'}\n"
        f"L\td32\tblood\t32\t{SHARED_DATA / 'lymphoseq' / 'TRB_Unsorted_32.tsv'}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(sheet)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()[:3]]
    assert rows[0][-1] == "truncated" and rows[1][-1] == "yes (keeps 0.85 of 21245)" and rows[2][-1] == "no"
    assert result.stdout.splitlines()[-1].endswith(
        "no problem; 1 truncated export(s): absence from them is not "
        "evidence of absence (the warnings on stderr say why)"
    )
