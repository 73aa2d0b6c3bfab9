"""A patient's sampling design: timepoints, the baseline, pooled counts, product clones, truncated exports.

Shared by the calls (:mod:`tcrtrack.patient`), the kinetics and the figures. A *timepoint* is one
compartment and day with its technical replicates; the *baseline* of blood pools every pre-infusion
draw (``day <= 0``) unless one day is configured. Counts are read from the wide clone table of
:func:`tcrtrack.patient.wide_counts` (``count_<sample>`` columns; ``freq_<sample>`` relative to the
sample's full depth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
import polars as pl
from numpy.typing import NDArray


@dataclass(frozen=True)
class Timepoint:
    """The samples of one patient, compartment and day (technical replicates pooled), or a pool of days.

    Attributes
    ----------
    compartment : str
        ``blood``, ``tumor`` or ``product``.
    day : int
        The day (the latest day of a pool of days).
    samples : tuple of str
        Sample ids, pooled.
    days : tuple of int
        Every day in the pool (``(day,)`` for one timepoint).
    """

    compartment: str
    day: int
    samples: tuple[str, ...]
    days: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """``<compartment>_d<day>``: the prefix of the comparison's columns."""
        return f"{self.compartment}_d{self.day}"

    @property
    def description(self) -> str:
        """The label, naming every pooled day of a pool."""
        days = self.days or (self.day,)
        if len(days) == 1:
            return self.label
        return f"{self.compartment} baseline (days {', '.join(map(str, days))} pooled)"


def timepoints(samples: pl.DataFrame, compartment: str) -> list[Timepoint]:
    """The patient's timepoints in one compartment, by day (replicates in replicate order)."""
    rows = (
        samples.filter(pl.col("compartment") == compartment)
        .group_by("day")
        .agg(pl.col("sample").sort_by("replicate"))
        .sort("day")
    )
    return [Timepoint(compartment, day, tuple(names), (day,)) for day, names in rows.iter_rows()]


def reference_and_later(
    points: Sequence[Timepoint], *, day: int | None = None
) -> tuple[Timepoint | None, list[Timepoint]]:
    """The reference timepoint (the given day, else the latest with day <= 0) and the days after it > 0."""
    before = [p for p in points if p.day <= 0 and (day is None or p.day == day)]
    return (before[-1] if before else None), [p for p in points if p.day > 0]


def baseline_timepoint(points: Sequence[Timepoint], *, day: int | None = None) -> Timepoint | None:
    """Every pre-infusion timepoint (day <= 0) pooled into one reference, or only ``day`` when given."""
    before = [p for p in points if p.day <= 0 and (day is None or p.day == day)]
    if not before:
        return None
    return Timepoint(
        before[-1].compartment,
        before[-1].day,
        tuple(s for p in before for s in p.samples),
        tuple(p.day for p in before),
    )


def pooled(wide: pl.DataFrame, point: Timepoint) -> tuple[NDArray[np.int64], int]:
    """Counts of a timepoint (replicates summed) and their total."""
    counts = reduce(np.add, (wide[f"count_{s}"].to_numpy() for s in point.samples))
    return counts, int(counts.sum())


def product_clones(wide: pl.DataFrame, samples: pl.DataFrame) -> NDArray[np.bool_]:
    """Clones seen in any ``product`` sample of the patient (all false without one)."""
    names = samples.filter(pl.col("compartment") == "product")["sample"].to_list()
    mask = np.zeros(wide.height, dtype=bool)
    for name in names:
        mask |= wide[f"count_{name}"].to_numpy() > 0
    return mask


@dataclass(frozen=True)
class Truncation:
    """What a truncated export (top-N sequences of a sample) implies.

    Attributes
    ----------
    depth : int
        The sample's full depth: from its frequencies (count / frequency) when they refer to the whole
        sample, else its count total.
    cut : int
        The smallest count the file kept; a clone absent from a truncated file may have up to ``cut - 1``.
    truncated : bool
        The file kept less than 99% of the sample's templates.
    """

    depth: int
    cut: int
    truncated: bool


def truncation(table: pl.DataFrame) -> Truncation:
    """Read a clonotype table's truncation from ``count`` and, if present, ``frequency`` (relative to the
    whole sample): the full depth is the median of ``count / frequency``."""
    total = int(table["count"].sum()) if table.height else 0
    if total == 0:
        return Truncation(depth=0, cut=0, truncated=False)
    cut = int(table["count"].min())
    if "frequency" not in table.columns:
        return Truncation(depth=total, cut=cut, truncated=False)
    ratio = (table["count"] / table["frequency"]).filter(table["frequency"] > 0)
    implied = int(round(float(ratio.median()))) if ratio.len() else total
    truncated = implied > total * 1.01
    return Truncation(depth=max(implied, total), cut=cut, truncated=truncated)


def sample_depths(clonotypes: Mapping[str, pl.DataFrame]) -> dict[str, Truncation]:
    """:func:`truncation` of every sample."""
    return {name: truncation(table) for name, table in clonotypes.items()}
