"""Truncated exports: files that keep only the top clones of a sample.

Vendors and labs often share the top N clonotypes of a sample (LymphoSeq's example data: the top 1,000
immunoSEQ sequences; `frequencyCount (%)` over such a file sums to 0.37-0.85). Two kinds of evidence:

* **Frequencies relative to the whole sample** (immunoSEQ ``frequencyCount (%)``/``frequency``, MiXCR
  ``cloneFraction``, VDJtools ``freq``, TRUST4 ``frequency``, ...). The sample's full depth is then
  implied by every row as count / frequency. ``implied_depth`` is their frequency-weighted mean, i.e.
  the rows' count total / their frequency total, and the share of that depth the file kept is
  ``kept_share`` = the file's count total / ``implied_depth`` (= the frequencies' sum). The median of
  count / frequency over rows is not used: in real immunoSEQ files the frequencies come from another
  count than the one exported (reads, not templates), so the per-row ratio scatters (LymphoSeq day 0:
  medians 19,306 vs 21,245 from the sums, share 0.94 vs the 0.85 the frequencies sum to); when the median
  differs from ``implied_depth`` by more than 10% the note says so. A file is ``truncated`` when
  ``kept_share`` < 1 - :data:`SHARE_TOLERANCE`. Frequencies written as percentages (summing to ~100)
  (a sum above 1.5, which fractions cannot reach) are recognised and divided by 100; a sum between 1.02
  and 1.5 is not relative to these counts and is not used.
* **A round number of rows** (:func:`is_round_row_count`: 1,000, 2,000, 5,000, 10,000, ...) whose
  smallest count is > 1: a file cut at the top N, whose tail of singletons is missing. Without
  frequencies the full depth is unknown, so only ``truncated`` and the note are set.

When the full depth is known and the file is truncated, clonotype frequencies are count /
``implied_depth`` (converters pair each frequency with the count it describes, the one ingest uses), so
that count / frequency recovers the whole sample's depth; every other file keeps frequencies relative
to its kept total, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

SOURCE_FREQUENCY = "source_frequency"
"""Column (not an AIRR field) in which converters keep the export's whole-sample frequency, so that an
AIRR file written by ``tcrtrack convert`` is judged as its source was."""

SHARE_TOLERANCE = 0.02
"""A file whose counts are at least 98% of the depth its frequencies imply is complete (rounding)."""

ABSENCE_WARNING = "absence from a truncated file is not evidence of absence"


@dataclass(frozen=True)
class FrequencyEvidence:
    """A vendor's per-row frequency relative to the whole sample, and the count it refers to.

    ``counts`` (Int64) and ``frequencies`` (Float64) are aligned with the converted frame's rows;
    ``source`` names the column, e.g. ``frequencyCount (%)``.
    """

    counts: pl.Series
    frequencies: pl.Series
    source: str


@dataclass(frozen=True)
class Truncation:
    """What a file says about its own completeness (the QC columns of the same names)."""

    implied_depth: float | None = None
    kept_share: float | None = None
    truncated: bool = False
    note: str | None = None
    full_depth: float | None = None  # the depth clonotype frequencies use: set only when truncated and known

    def qc_columns(self) -> dict[str, pl.Expr]:
        """``implied_depth``, ``kept_share``, ``truncated``, ``truncation_note`` as literal columns."""
        return {
            "implied_depth": pl.lit(self.implied_depth, dtype=pl.Float64),
            "kept_share": pl.lit(self.kept_share, dtype=pl.Float64),
            "truncated": pl.lit(self.truncated, dtype=pl.Boolean),
            "truncation_note": pl.lit(self.note, dtype=pl.Utf8),
        }


def is_round_row_count(rows: int) -> bool:
    """1, 2 or 5 times a power of ten, from 1,000 up (the "top N" cuts tools and portals offer)."""
    if rows < 1000:
        return False
    while rows % 10 == 0:
        rows //= 10
    return rows in (1, 2, 5)


def _implied(evidence: FrequencyEvidence) -> tuple[float, float, bool, float] | None:
    """(implied depth, kept share, frequencies were percentages, median of count / frequency), or None
    without usable rows."""
    frame = pl.DataFrame(
        {
            "count": evidence.counts.cast(pl.Float64, strict=False),
            "freq": evidence.frequencies.cast(pl.Float64, strict=False),
        }
    )
    usable = frame.filter((pl.col("count") > 0) & (pl.col("freq") > 0) & pl.col("freq").is_finite())
    if usable.height == 0:
        return None
    percent = float(frame["freq"].fill_null(0).fill_nan(0).sum()) > 1.5
    scale = 100.0 if percent else 1.0
    # math.fsum: exact, so the same rows give the same depth however polars chunked them (AIRR round trip)
    depth = math.fsum(usable["count"].to_list()) / (math.fsum(usable["freq"].to_list()) / scale)
    median = float((usable["count"] / (usable["freq"] / scale)).median())
    described = frame.filter(pl.col("freq").is_not_null())  # rows the frequencies describe (TRUST4: TR rows)
    total = math.fsum(described["count"].fill_null(0).to_list())
    return depth, total / depth, percent, median


def assess(counts: pl.Series, evidence: FrequencyEvidence | None, *, single_cell: bool = False) -> Truncation:
    """Judge one file from its per-row counts (QC units, nulls allowed) and the vendor's frequencies.

    ``single_cell`` input (contigs of cells) is never judged by its number of rows.
    """
    rows = counts.len()
    present = counts.drop_nulls()
    smallest = int(present.min()) if present.len() else 0
    round_cut = (not single_cell) and is_round_row_count(rows) and smallest > 1
    implied = _implied(evidence) if evidence is not None else None
    notes: list[str] = []
    depth = share = full = None
    truncated = False
    if implied is not None:
        depth, share, percent, median = implied
        if percent:
            notes.append(f"{evidence.source} holds percentages: divided by 100")
        if abs(median - depth) > 0.1 * depth:
            notes.append(
                f"count / {evidence.source} varies between rows (median {median:.0f}, overall {depth:.0f}): "
                "the frequencies were computed from another count than the one exported"
            )
        if share < 1 - SHARE_TOLERANCE:
            truncated = True
            full = depth
            notes.append(
                f"{evidence.source} implies a whole-sample depth of {depth:.0f}, of which the file keeps "
                f"{share:.2f}: the file is truncated (frequencies use the whole sample's depth)"
            )
        elif share > 1 + SHARE_TOLERANCE:
            notes.append(
                f"{evidence.source} sums above the counts it should describe (kept share {share:.2f}): "
                "not relative to these counts, not used"
            )
    if round_cut:
        if implied is None or truncated:
            truncated = True
            notes.append(
                f"exactly {rows} rows and no count below {smallest}: likely the top {rows} clones of a "
                "larger sample" + ("" if implied is not None else " (its full depth is unknown)")
            )
        else:
            notes.append(
                f"exactly {rows} rows and no count below {smallest}, but {evidence.source} says the file is complete"
            )
    if truncated:
        notes.append(ABSENCE_WARNING)
    return Truncation(
        implied_depth=depth, kept_share=share, truncated=truncated, note="; ".join(notes) or None, full_depth=full
    )
