"""Truncated exports: implied whole-sample depth, kept share, the round-number rule, and frequencies.

The real files are LymphoSeq's top-1,000 immunoSEQ exports in ``../shared/data/lymphoseq`` (never copied
into the repo; skipped when absent); the expected values are read from the table in its SOURCE.md.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl
import pytest

from tcrtrack.formats import ingest_converted, to_airr, write_airr_tsv
from tcrtrack.ingest import ingest_airr
from tcrtrack.truncation import ABSENCE_WARNING, FrequencyEvidence, assess, is_round_row_count

LYMPHOSEQ = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lymphoseq"
needs_lymphoseq = pytest.mark.skipif(
    not (LYMPHOSEQ / "SOURCE.md").is_file(),
    reason=f"LymphoSeq exports not found at {LYMPHOSEQ} (../shared next to the repo; absent in an outside clone)",
)


def source_table() -> list[tuple[int, int, int, float]]:
    """(day, rows, templates in the file, frequencyCount sum) from SOURCE.md's table."""
    rows = []
    for line in (LYMPHOSEQ / "SOURCE.md").read_text().splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|$", line.strip())
        if match:
            day, n, templates, share = match.groups()
            rows.append((int(day), int(n), int(templates), float(share)))
    return rows


@needs_lymphoseq
def test_source_table_is_read() -> None:
    assert [day for day, *_ in source_table()] == [0, 32, 83, 369, 949, 1320, 1496]


@needs_lymphoseq
@pytest.mark.parametrize("day", [0, 32, 83, 369, 949, 1320, 1496])
def test_lymphoseq_implied_depth_and_kept_share(day: int) -> None:
    expected = {row[0]: row for row in source_table()}[day]
    _, rows, templates, share = expected
    result = ingest_converted(LYMPHOSEQ / f"TRB_Unsorted_{day}.tsv")
    qc = result.qc.row(0, named=True)
    assert (qc["input_rows"], qc["input_count"]) == (rows, templates)
    assert round(qc["kept_share"], 2) == share
    assert qc["implied_depth"] == pytest.approx(templates / qc["kept_share"])
    assert qc["implied_depth"] == pytest.approx(templates / share, rel=0.01)
    clonotypes = result.clonotypes
    if share < 0.98:
        assert qc["truncated"] is True and ABSENCE_WARNING in qc["truncation_note"]
        # frequencies use the whole sample's depth: count / frequency recovers it
        assert (clonotypes["count"] / clonotypes["frequency"]).to_list() == pytest.approx(
            [qc["implied_depth"]] * clonotypes.height
        )
        assert clonotypes["frequency"].sum() < share
    else:  # day 32: the whole sample; frequencies relative to the kept total, as before
        assert qc["truncated"] is False and qc["truncation_note"] is None
        assert clonotypes["frequency"].to_list() == (clonotypes["count"] / clonotypes["count"].sum()).to_list()


@needs_lymphoseq
def test_lymphoseq_round_number_rule_and_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tcrtrack.ingest"):
        qc = ingest_converted(LYMPHOSEQ / "TRB_Unsorted_369.tsv").qc.row(0, named=True)
    assert "exactly 1000 rows and no count below 6" in qc["truncation_note"]
    assert any(
        ABSENCE_WARNING in record.getMessage() and "TRB_Unsorted_369" in record.getMessage()
        for record in caplog.records
    )


@needs_lymphoseq
def test_truncated_airr_round_trip_keeps_the_evidence(tmp_path: Path) -> None:
    path = LYMPHOSEQ / "TRB_Unsorted_83.tsv"
    out = write_airr_tsv(to_airr(path).frame, tmp_path / "day83.airr.tsv")
    direct, via_file = ingest_converted(path), ingest_airr(out)
    assert direct.clonotypes.equals(via_file.clonotypes)
    assert via_file.qc["kept_share"][0] == direct.qc["kept_share"][0]


# --- the rules on hand-made files ---------------------------------------------------------------------------


def vdjtools_file(path: Path, counts: list[int], *, freq: list[float] | None = None) -> Path:
    header = (
        ["count", "freq", "cdr3nt", "cdr3aa", "v", "d", "j"] if freq else ["count", "cdr3nt", "cdr3aa", "v", "d", "j"]
    )
    lines = ["\t".join(header)]
    for index, count in enumerate(counts):
        aa = "CASS" + "".join("ACDEFGHIKLMNPQRSTVWY"[int(digit) * 2] for digit in f"{index:04d}") + "EQYF"
        fields = [str(count), *([repr(freq[index])] if freq else []), "", aa, "TRBV9", ".", "TRBJ2-1"]
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1000, True),
        (2000, True),
        (5000, True),
        (10000, True),
        (100000, True),
        (999, False),
        (1001, False),
        (3000, False),
        (500, False),
        (0, False),
    ],
)
def test_is_round_row_count(rows: int, expected: bool) -> None:
    assert is_round_row_count(rows) is expected


@pytest.mark.parametrize(
    ("rows", "smallest", "truncated"), [(1000, 2, True), (1000, 1, False), (999, 2, False), (5000, 3, True)]
)
def test_round_number_rule_without_frequencies(
    tmp_path: Path, rows: int, smallest: int, truncated: bool, caplog: pytest.LogCaptureFixture
) -> None:
    counts = [smallest + (rows - index) for index in range(rows - 1)] + [smallest]
    with caplog.at_level(logging.WARNING, logger="tcrtrack.ingest"):
        result = ingest_converted(vdjtools_file(tmp_path / "top.tsv", counts))
    qc = result.qc.row(0, named=True)
    assert qc["truncated"] is truncated
    assert qc["implied_depth"] is None and qc["kept_share"] is None  # no frequencies: depth unknown
    if truncated:
        assert f"exactly {rows} rows" in qc["truncation_note"] and ABSENCE_WARNING in qc["truncation_note"]
        assert any(ABSENCE_WARNING in record.getMessage() for record in caplog.records)
    else:
        assert qc["truncation_note"] is None and not caplog.records
    # without a known depth the frequencies stay relative to the kept total
    assert result.clonotypes["frequency"].sum() == pytest.approx(1.0)


def test_complete_file_with_frequencies_keeps_its_outputs(tmp_path: Path) -> None:
    counts = [50, 30, 20]
    with_freq = ingest_converted(vdjtools_file(tmp_path / "f.tsv", counts, freq=[c / 100 for c in counts]))
    without = ingest_converted(vdjtools_file(tmp_path / "n.tsv", counts))
    assert with_freq.clonotypes.equals(without.clonotypes)  # byte-identical clonotype table
    assert with_freq.qc["kept_share"][0] == pytest.approx(1.0) and with_freq.qc["truncated"][0] is False
    assert without.qc["kept_share"][0] is None


def test_truncated_file_frequencies_use_the_implied_depth(tmp_path: Path) -> None:
    counts = [50, 30, 20]  # the top 3 clones of a 400-count sample
    result = ingest_converted(vdjtools_file(tmp_path / "t.tsv", counts, freq=[c / 400 for c in counts]))
    qc = result.qc.row(0, named=True)
    assert (qc["implied_depth"], qc["kept_share"], qc["truncated"]) == (pytest.approx(400), pytest.approx(0.25), True)
    assert result.clonotypes["frequency"].to_list() == pytest.approx([0.125, 0.075, 0.05])
    assert result.clonotypes.drop("frequency").equals(
        ingest_converted(vdjtools_file(tmp_path / "n.tsv", counts)).clonotypes.drop("frequency")
    )


def test_percentages_and_inconsistent_frequencies() -> None:
    counts = pl.Series([50, 30, 20], dtype=pl.Int64)
    percent = assess(counts, FrequencyEvidence(counts, pl.Series([25.0, 15.0, 10.0]), "Percent"))
    assert percent.kept_share == pytest.approx(0.5) and percent.truncated and "percentages" in percent.note
    above = assess(counts, FrequencyEvidence(counts, pl.Series([0.6, 0.4, 0.3]), "freq"))
    assert not above.truncated and above.full_depth is None and "not used" in above.note
    empty = assess(counts, FrequencyEvidence(counts, pl.Series([None, None, None], dtype=pl.Float64), "freq"))
    assert empty.implied_depth is None and not empty.truncated
