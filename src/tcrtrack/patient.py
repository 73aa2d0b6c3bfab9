"""Per-patient calls: clones expanding in blood after infusion, accumulating in the tumour, and both.

One patient's samples are aligned on ``clone_id`` into a wide table. Blood: every post-infusion
day (day > 0) is compared with the baseline (the latest blood day <= 0, replicates pooled);
tumour: every post-treatment biopsy with the pre-treatment one. Each comparison is a
per-clone test (:func:`tcrtrack.expansion.test_expansion`) with Benjamini–Hochberg q-values
over the clones tested in it. A clone is *flagged* when it is expanded in blood at one or more
post-infusion days and accumulates in the tumour.

The statistics are computed on numpy arrays aligned on the wide table and attached as columns in
one step (no join per comparison); a column is null where its comparison did not test the clone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tcrtrack.expansion import bh_qvalues, expansion_arrays
from tcrtrack.noise import (NoiseModel, fit_noise_from_bulk, fit_noise_from_replicates, for_pooled_libraries,
                            poisson_noise)

ANNOTATION = ("clone_id", "junction_aa", "v_gene", "j_gene")
# column of tcrtrack.expansion.test_expansion -> suffix of the comparison's column in the clone table
STATISTICS = {"count_post": "count", "freq_post": "freq", "log2fc": "log2fc", "pvalue": "pvalue",
              "qvalue": "qvalue", "significant": "significant"}


@dataclass(frozen=True)
class CallSettings:
    """Thresholds of the calls (config keys ``expansion.*`` and ``tumor.*``)."""

    model: Literal["fisher", "overdispersed"] = "overdispersed"
    fdr: float = 0.05
    min_log2fc: float = 1.0
    min_count: int = 3
    pseudocount: float = 1.0
    new_max_frequency: float = 1e-5
    baseline_day: int | None = None
    tumor_min_count: int = 3
    tumor_rule: Literal["significant_or_new", "significant"] = "significant"
    require_new: bool = False


@dataclass(frozen=True)
class Timepoint:
    """The samples of one patient, compartment and day (technical replicates pooled)."""

    compartment: str
    day: int
    samples: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.compartment}_d{self.day}"


@dataclass(frozen=True)
class PatientCalls:
    """The outputs for one patient."""

    clones: pl.DataFrame
    flagged: pl.DataFrame
    noise: pl.DataFrame
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """One later timepoint tested against the reference, aligned on the wide table.

    Attributes
    ----------
    later : Timepoint
        The later timepoint; its label prefixes the comparison's columns.
    tested : numpy.ndarray of bool
        Clones seen at the reference or at ``later``; the statistics of the others are null.
    stats : dict of str to numpy.ndarray
        The columns of :func:`tcrtrack.expansion.expansion_arrays` named in :data:`STATISTICS`, one
        entry per clone of the wide table, 0 (or false) where not tested.
    """

    later: Timepoint
    tested: NDArray[np.bool_]
    stats: dict[str, NDArray]

    def columns(self) -> list[pl.Series]:
        """The ``<label>_count``, ``_freq``, ``_log2fc``, ``_pvalue``, ``_qvalue``, ``_significant`` columns."""
        return [masked(f"{self.later.label}_{suffix}", self.stats[name], self.tested)
                for name, suffix in STATISTICS.items()]


def masked(name: str, values: NDArray, valid: NDArray[np.bool_]) -> pl.Series:
    """``values`` as a column, null where ``valid`` is false (the values are shared, not copied)."""
    column = pl.Series(name, values)
    if valid.all():
        return column
    return pl.select(pl.when(pl.Series(valid)).then(column)).to_series().alias(name)


def _nulls(name: str, dtype: pl.DataType, n: int) -> pl.Series:
    """A column of ``n`` nulls."""
    return pl.repeat(None, n, dtype=dtype, eager=True).alias(name)


def wide_counts(clonotypes: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Align the samples' clonotype tables on ``clone_id``: ``count_<sample>`` (0 when absent) and
    ``freq_<sample>`` columns, one row per clone seen in any sample, ordered by ``clone_id``.

    The annotation of a clone is the one of the first sample (in ``clonotypes`` order) holding it;
    counts of a ``clone_id`` repeated within a sample are summed.
    """
    long = pl.concat([table.select(ANNOTATION) for table in clonotypes.values()], rechunk=True)  # fast gather
    row = long["clone_id"].rank("dense").to_numpy() - 1  # the clone's row: the rank of its id
    n_clones = int(row.max()) + 1 if row.size else 0
    first = np.full(n_clones, row.size, dtype=np.int64)
    np.minimum.at(first, row, np.arange(row.size, dtype=np.int64))
    counts, start = {}, 0
    for sample, table in clonotypes.items():
        counts[sample] = np.zeros(n_clones, dtype=np.int64)
        np.add.at(counts[sample], row[start:start + table.height], table["count"].fill_null(0).to_numpy())
        start += table.height
    totals = {s: int(t["count"].sum()) for s, t in clonotypes.items()}
    wide = pl.DataFrame([*long[first].get_columns(), *(pl.Series(f"count_{s}", c) for s, c in counts.items())])
    return wide.with_columns((pl.col(f"count_{s}") / totals[s]).alias(f"freq_{s}") for s in clonotypes)


def timepoints(samples: pl.DataFrame, compartment: str) -> list[Timepoint]:
    """The patient's timepoints in one compartment, by day."""
    rows = samples.filter(pl.col("compartment") == compartment).group_by("day").agg(
        pl.col("sample").sort_by("replicate")).sort("day")
    return [Timepoint(compartment, day, tuple(names)) for day, names in rows.iter_rows()]


def reference_and_later(points: Sequence[Timepoint], *, day: int | None = None
                        ) -> tuple[Timepoint | None, list[Timepoint]]:
    """The reference timepoint (the given day, else the latest with day <= 0) and the days after it > 0."""
    before = [p for p in points if p.day <= 0 and (day is None or p.day == day)]
    return (before[-1] if before else None), [p for p in points if p.day > 0]


def pooled(wide: pl.DataFrame, point: Timepoint) -> tuple[np.ndarray, int]:
    """Counts of a timepoint (replicates summed) and its depth."""
    counts = reduce(np.add, (wide[f"count_{s}"].to_numpy() for s in point.samples))
    return counts, int(counts.sum())


def _noise_for(wide: pl.DataFrame, reference: Timepoint, where: NDArray[np.int64], a: NDArray[np.int64],
               b: NDArray[np.int64], n_a: int, n_b: int, settings: CallSettings,
               fallback: NoiseModel | None = None) -> NoiseModel:
    """The comparison's noise model, fitted on the clones it tests (rows ``where``, counts ``a`` and
    ``b``): the fits ignore clones absent from both timepoints, so leaving them out only saves work."""
    if settings.model == "fisher":
        return poisson_noise()
    if len(reference.samples) >= 2:
        replicates = [wide[f"count_{s}"].to_numpy()[where] for s in reference.samples]
        return fit_noise_from_replicates(replicates, fallback=fallback)
    return fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b, fallback=fallback)


def compare(wide: pl.DataFrame, reference: Timepoint, later: Timepoint, *, settings: CallSettings,
            min_count: int, fallback: NoiseModel | None = None) -> tuple[Comparison, NoiseModel]:
    """Test every clone seen at ``reference`` or ``later``; the comparison and its noise model."""
    a, n_a = pooled(wide, reference)
    later_counts, n_b = pooled(wide, later)
    tested = (a + later_counts) > 0
    where = np.flatnonzero(tested)
    a, b = a[where], later_counts[where]
    noise = for_pooled_libraries(_noise_for(wide, reference, where, a, b, n_a, n_b, settings, fallback),
                                 k_a=len(reference.samples), k_b=len(later.samples))
    result = expansion_arrays(a, b, n_a=n_a, n_b=n_b, model=settings.model,
                              noise=noise if settings.model == "overdispersed" else None,
                              pseudocount=settings.pseudocount, fdr=settings.fdr,
                              min_log2fc=settings.min_log2fc, min_count=min_count)
    stats = {"count_post": later_counts}  # the later counts, 0 where not tested already
    for name in STATISTICS.keys() - stats.keys():
        stats[name] = np.zeros(wide.height, dtype=result[name].dtype)
        stats[name][where] = result[name]
    return Comparison(later, tested, stats), noise


def _best(comparisons: Sequence[Comparison], *, n: int, prefix: str) -> list[pl.Series]:
    """``<prefix>_log2fc`` and ``<prefix>_qvalue`` of the comparison whose q-value is smallest among the
    significant ones (else overall), the first on ties; null where no comparison tested the clone."""
    if not comparisons:
        return [_nulls(f"{prefix}_{stat}", pl.Float64, n) for stat in ("log2fc", "qvalue")]
    best = np.full(n, np.inf)
    log2fc, qvalue = np.zeros(n), np.zeros(n)
    for comparison in comparisons:
        q = comparison.stats["qvalue"]
        order = np.where(comparison.stats["significant"], q, q + 2)
        better = (order < best) & comparison.tested
        for out, values in ((best, order), (log2fc, comparison.stats["log2fc"]), (qvalue, q)):
            np.copyto(out, values, where=better)
    found = best < np.inf
    return [masked(f"{prefix}_log2fc", log2fc, found), masked(f"{prefix}_qvalue", qvalue, found)]


def _peak_day(blood: Sequence[Comparison], expanded: NDArray[np.bool_], *, n: int) -> pl.Series:
    """The post-infusion day with the highest frequency among the days the clone was expanded."""
    if not blood:
        return _nulls("peak_day", pl.Int64, n)
    highest = np.full(n, -np.inf)
    day = np.zeros(n, dtype=np.int64)
    for comparison in blood:
        freq = np.where(comparison.stats["significant"], comparison.stats["freq_post"], -1.0)
        higher = freq > highest
        np.copyto(highest, freq, where=higher)
        np.copyto(day, comparison.later.day, where=higher)
    return masked("peak_day", day, expanded)


def _blood_columns(wide: pl.DataFrame, baseline: Timepoint | None, blood: Sequence[Comparison], *,
                   settings: CallSettings) -> tuple[list[pl.Series], NDArray[np.bool_], NDArray[np.bool_]]:
    """Baseline, expansion and peak columns; the expanded and new-in-blood masks (new: false without baseline)."""
    n = wide.height
    if baseline is not None:
        base, depth = pooled(wide, baseline)
        columns = [pl.Series("baseline_count", base), (pl.Series(base) / depth).alias("baseline_frequency")]
        new = (columns[1] <= settings.new_max_frequency).to_numpy()
    else:
        new = np.zeros(n, dtype=bool)
        columns = [_nulls("baseline_count", pl.Int64, n), _nulls("baseline_frequency", pl.Float64, n)]
    n_expanded = np.zeros(n, dtype=np.int64)
    for comparison in blood:
        n_expanded += comparison.stats["significant"]
    expanded = n_expanded > 0
    columns += [pl.Series("n_expanded_timepoints", n_expanded), pl.Series("expanded_in_blood", expanded),
                pl.Series("new_in_blood", new) if baseline is not None else _nulls("new_in_blood", pl.Boolean, n),
                _peak_day(blood, expanded, n=n), *_best(blood, n=n, prefix="blood")]
    return columns, expanded, new


def analyse_patient(samples: pl.DataFrame, clonotypes: Mapping[str, pl.DataFrame], *,
                    settings: CallSettings = CallSettings()) -> PatientCalls:
    """Blood expansion, tumour accumulation and flags for one patient.

    Parameters
    ----------
    samples
        The patient's sample-sheet rows (``sample``, ``compartment``, ``day``, ``replicate``).
    clonotypes
        Sample id -> clonotype table (:data:`tcrtrack.schema.CLONOTYPE_SCHEMA`).
    settings
        Thresholds; see :class:`CallSettings`.
    """
    notes: list[str] = []
    fitted: list[NoiseModel] = []  # the first fit stands in where a later pair has too few clones to fit
    wide = wide_counts(clonotypes)
    noise_rows: list[pl.DataFrame] = []

    def run(compartment: str, min_count: int, day: int | None) -> tuple[Timepoint | None, list[Comparison]]:
        reference, later = reference_and_later(timepoints(samples, compartment), day=day)
        if reference is None or not later:
            return reference, []
        done = []
        for point in later:
            comparison, noise = compare(wide, reference, point, settings=settings, min_count=min_count,
                                        fallback=fitted[0] if fitted else None)
            if noise.source != "poisson":
                fitted.append(noise)
            done.append(comparison)
            noise_rows.append(noise.to_frame().select(
                pl.lit(f"{point.label} vs {reference.label}").alias("comparison"), pl.all()))
        return reference, done

    baseline, blood = run("blood", settings.min_count, settings.baseline_day)
    if baseline is None:
        notes.append("no baseline blood sample (day <= 0): blood expansion not tested")
    elif not blood:
        notes.append("no post-infusion blood sample: blood expansion not tested")
    pre, tumor = run("tumor", settings.tumor_min_count, None)
    post_biopsies = [p for p in timepoints(samples, "tumor") if p.day > 0]
    if pre is None and post_biopsies:
        notes.append("no pre-treatment biopsy: tumour accumulation by presence in post-treatment biopsies only")
    elif not post_biopsies:
        notes.append("no post-treatment biopsy: tumour accumulation not tested")
    blood_columns, expanded, new = _blood_columns(wide, baseline, blood, settings=settings)
    tumor_columns = _tumor_columns(wide, pre, tumor, post_biopsies, expanded=expanded, new=new, settings=settings)
    calls = wide.hstack([*(column for c in (*blood, *tumor) for column in c.columns()),
                         *blood_columns, *tumor_columns])
    flagged = calls.filter(pl.col("flagged")).sort(
        ["blood_qvalue", "tumor_qvalue", "blood_log2fc", "clone_id"], descending=[False, False, True, False],
        nulls_last=True)
    noise = pl.concat(noise_rows, how="diagonal_relaxed") if noise_rows else pl.DataFrame(
        schema={"comparison": pl.Utf8})
    return PatientCalls(clones=calls, flagged=flagged, noise=noise, notes=tuple(notes))


def _tumor_columns(wide: pl.DataFrame, pre: Timepoint | None, tumor: Sequence[Comparison],
                   post_biopsies: Sequence[Timepoint], *, expanded: NDArray[np.bool_], new: NDArray[np.bool_],
                   settings: CallSettings) -> list[pl.Series]:
    """Tumour accumulation, the flag evidence of each biopsy, the best of it, and the flag."""
    n = wide.height
    post = [pooled(wide, p)[0] for p in post_biopsies]
    max_post = reduce(np.maximum, post) if post else np.zeros(n, dtype=np.int64)
    if pre is not None:
        pre_count, _ = pooled(wide, pre)
        significant = reduce(np.logical_or, (c.stats["significant"] for c in tumor), np.zeros(n, dtype=bool))
        new_rule = (pre_count == 0) & (max_post >= settings.tumor_min_count)
        accumulates = significant | new_rule if settings.tumor_rule == "significant_or_new" else significant
        columns = [pl.Series("tumor_pre_count", pre_count)]
    else:
        accumulates = max_post >= settings.tumor_min_count if post else np.zeros(n, dtype=bool)
        columns = [_nulls("tumor_pre_count", pl.Int64, n)]
    columns += [pl.Series("tumor_max_post_count", max_post), pl.Series("accumulates_in_tumor", accumulates)]
    evidence = [_tumor_evidence_of_blood_expanded(c, expanded, settings=settings) for c in tumor]
    for comparison, flag in zip(tumor, evidence):
        label = comparison.later.label
        columns += [masked(f"{label}_flag_qvalue", flag.stats["qvalue"], flag.tested),
                    masked(f"{label}_flag_log2fc", flag.stats["log2fc"], comparison.tested),
                    pl.Series(f"{label}_flag_significant", flag.stats["significant"])]
    columns += _best(evidence, n=n, prefix="tumor")
    if pre is not None:
        in_tumor = reduce(np.logical_or, (f.stats["significant"] for f in evidence), np.zeros(n, dtype=bool))
        if settings.tumor_rule == "significant_or_new":
            in_tumor = in_tumor | new_rule
    else:
        in_tumor = accumulates
    flag = expanded & in_tumor
    if settings.require_new:
        flag = flag & new
    return [*columns, pl.Series("flagged", flag)]


def _tumor_evidence_of_blood_expanded(comparison: Comparison, expanded: NDArray[np.bool_], *,
                                      settings: CallSettings) -> Comparison:
    """Tumour enrichment re-tested among the blood-expanded clones only, for the flags.

    For each post-treatment biopsy, Benjamini–Hochberg runs over the tumour p-values of the clones
    expanded in blood (``<biopsy>_flag_qvalue``), not over the whole repertoire: the flag asks
    about those clones, and selecting them on blood data leaves their tumour p-values valid (blood
    and tumour are separate libraries), so the FDR of the flagged set is controlled while the
    multiple-testing burden is that of tens of clones instead of thousands (selective inference in
    the sense of Benjamini & Bogomolov 2014, JRSS-B 76:297). ``<biopsy>_flag_significant`` needs
    ``q < fdr``, ``log2fc >= min_log2fc`` and ``count >= tumor.min_count`` as usual.

    Returns the comparison restricted to the blood-expanded clones (``tested``), with these q-values
    and flags as ``qvalue`` and ``significant``.
    """
    stats = comparison.stats
    selected = expanded & comparison.tested
    qvalue = np.zeros(selected.size)
    qvalue[selected] = bh_qvalues(stats["pvalue"][selected])
    significant = (selected & (qvalue < settings.fdr) & (stats["log2fc"] >= settings.min_log2fc)
                   & (stats["count_post"] >= settings.tumor_min_count))
    return Comparison(comparison.later, selected, {**stats, "qvalue": qvalue, "significant": significant})
