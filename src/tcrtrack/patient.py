"""Per-patient calls: clones expanding in blood after infusion, accumulating in the tumour, and both.

One patient's samples are aligned on ``clone_id`` into a wide table. Blood: every post-infusion day
(day > 0) is compared with the baseline (every pre-infusion draw pooled, or ``baseline_day``); tumour:
every post-treatment biopsy with the pre-treatment one(s). Each comparison gives one-sided p-values of
the null "unchanged frequency" (:mod:`tcrtrack.comparisons`). The claims are per clone, and so is the
false-discovery control (:mod:`tcrtrack.multiplicity`):

* ``expanded_in_blood``: clone-level Simes over the post-infusion days, testable-only BH over clones;
  the days called inside the selected clones (``<day>_significant``) with the effect filters
  (``log2fc >= min_log2fc``, ``count >= min_count``). ``blood_qvalue`` is the clone-level q-value.
* ``accumulates_in_tumor``: the same over the post-treatment biopsies (or presence without a
  pre-treatment biopsy).
* ``flagged``: expanded in blood *and* enriched in a post-treatment biopsy, in a blood-expanded clone with
  a biopsy meeting the tumour effect filters. ``flag_fdr="replicability"`` (default): Bogomolov & Heller
  (2013) r-values (``tumor_qvalue``) with blood the primary study and the tumour the follow-up of the
  blood-expanded clones; ``"conjunction"``: BH over clones of ``max(p_blood, p_tumour)`` (Berger 1982).
* ``new_in_blood``: the 95% upper confidence bound of the baseline frequency (Garwood 1936, pooled over
  every pre-infusion draw) is at most ``new_max_frequency``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats as scipy_stats

from tcrtrack.comparisons import Comparison, NoiseFloors, best_pair_null, compare, masked, nulls
from tcrtrack.design import (
    Timepoint,
    baseline_timepoint,
    pooled,
    product_clones,
    reference_and_later,
    sample_depths,
    timepoints,
)
from tcrtrack.multiplicity import (
    bh_over_testable,
    clone_level,
    conjunction_pvalues,
    replicability_rvalues,
    simes,
    tarone_testable,
)

__all__ = [
    "ANNOTATION",
    "CallSettings",
    "PatientCalls",
    "Timepoint",
    "analyse_patient",
    "pooled",
    "reference_and_later",
    "timepoints",
    "wide_counts",
]

ANNOTATION = ("clone_id", "junction_aa", "v_gene", "j_gene")
FLAG_EMPHASIS = 0.5
"""Share ``c`` of the flag's FDR level spent on blood in the r-values (Bogomolov & Heller 2013)."""


@dataclass(frozen=True)
class CallSettings:
    """Thresholds of the calls (config keys ``expansion.*`` and ``tumor.*``)."""

    model: Literal["fisher", "betabinomial", "overdispersed"] = "overdispersed"
    fdr: float = 0.05
    min_log2fc: float = 1.0
    min_count: int = 3
    pseudocount: float = 1.0
    new_max_frequency: float = 1e-5
    baseline_day: int | None = None
    tumor_min_count: int = 3
    tumor_rule: Literal["significant_or_new", "significant"] = "significant"
    require_new: bool = False
    flag_fdr: Literal["replicability", "conjunction"] = "replicability"


@dataclass(frozen=True)
class PatientCalls:
    """The outputs for one patient."""

    clones: pl.DataFrame
    flagged: pl.DataFrame
    noise: pl.DataFrame
    notes: tuple[str, ...]


def wide_counts(clonotypes: Mapping[str, pl.DataFrame], *, depths: Mapping[str, int] | None = None) -> pl.DataFrame:
    """Align the samples' clonotype tables on ``clone_id``: ``count_<sample>`` (0 when absent) and
    ``freq_<sample>`` columns (count over ``depths[sample]``, default the count total), one row per clone
    seen in any sample, ordered by ``clone_id``.

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
        np.add.at(counts[sample], row[start : start + table.height], table["count"].fill_null(0).to_numpy())
        start += table.height
    totals = {s: int(t["count"].sum()) for s, t in clonotypes.items()}
    if depths is not None:
        totals = {s: max(totals[s], int(depths.get(s, totals[s]))) for s in totals}
    wide = pl.DataFrame([*long[first].get_columns(), *(pl.Series(f"count_{s}", c) for s, c in counts.items())])
    return wide.with_columns((pl.col(f"count_{s}") / totals[s]).alias(f"freq_{s}") for s in clonotypes)


def _pvalue_matrix(comparisons: Sequence[Comparison], n: int) -> tuple[NDArray, NDArray]:
    """``(clones, comparisons)`` p-values and smallest reachable p-values, NaN where not tested."""
    if not comparisons:
        return np.full((n, 0), np.nan), np.full((n, 0), np.nan)
    p = np.column_stack([np.where(c.tested, c.stats["pvalue"], np.nan) for c in comparisons])
    p_min = np.column_stack([np.where(c.tested, c.p_min, np.nan) for c in comparisons])
    return p, p_min


def _effect(comparison: Comparison, *, min_log2fc: float, min_count: int) -> NDArray[np.bool_]:
    """The effect filters of a comparison: ``log2fc >= min_log2fc`` and ``count >= min_count``."""
    stats = comparison.stats
    return comparison.tested & (stats["log2fc"] >= min_log2fc) & (stats["count_post"] >= min_count)


def _best(comparisons: Sequence[Comparison], called: NDArray[np.bool_], *, n: int) -> tuple[NDArray, NDArray]:
    """Per clone, the index of the comparison with the smallest p-value among the called ones (else among
    all tested; -1 where none tested) and whether any was called."""
    if not comparisons:
        return np.full(n, -1), np.zeros(n, dtype=bool)
    p, _ = _pvalue_matrix(comparisons, n)
    rank = np.where(called, p - 2.0, np.where(np.isnan(p), np.inf, p))
    best = np.argmin(rank, axis=1)
    best[np.all(np.isnan(p), axis=1)] = -1
    return best, called.any(axis=1)


def _pick(comparisons: Sequence[Comparison], best: NDArray, stat: str) -> NDArray[np.float64]:
    """``stat`` of each clone's chosen comparison (NaN where none)."""
    out = np.full(best.size, np.nan)
    for j, comparison in enumerate(comparisons):
        out[best == j] = comparison.stats[stat][best == j]
    return out


def _blood_columns(
    wide: pl.DataFrame,
    baseline: Timepoint | None,
    blood: Sequence[Comparison],
    settings: CallSettings,
    notes: list[str],
) -> tuple[list[pl.Series], NDArray, NDArray, NDArray]:
    """Baseline, expansion and peak columns; the expanded and new masks and the blood clone-level p-values."""
    n = wide.height
    if baseline is not None:
        base, depth = pooled(wide, baseline)
        if blood:
            base, depth = blood[0].reference_counts, blood[0].reference_depth
        upper = scipy_stats.chi2.ppf(0.95, 2 * (base + 1)) / 2 / depth  # Garwood 1936 one-sided 95% bound
        limit = float(scipy_stats.chi2.ppf(0.95, 2) / 2 / depth)
        new = upper <= settings.new_max_frequency
        if limit > settings.new_max_frequency:
            notes.append(
                f"baseline depth {depth}: a clone absent at baseline is only known to be below frequency "
                f"{limit:.2g} (95% bound), above new_max_frequency {settings.new_max_frequency:g}: "
                "no clone can be called new in blood"
            )
        columns = [
            pl.Series("baseline_count", pooled(wide, baseline)[0]),
            (pl.Series(pooled(wide, baseline)[0]) / depth).alias("baseline_frequency"),
            pl.Series("baseline_frequency_upper", upper),
            pl.Series("new_in_blood", new),
        ]
    else:
        new = np.zeros(n, dtype=bool)
        columns = [
            nulls("baseline_count", pl.Int64, n),
            nulls("baseline_frequency", pl.Float64, n),
            nulls("baseline_frequency_upper", pl.Float64, n),
            nulls("new_in_blood", pl.Boolean, n),
        ]
    p, p_min = _pvalue_matrix(blood, n)
    q, called = clone_level(p, p_min, alpha=settings.fdr)
    significant = np.zeros((n, len(blood)), dtype=bool)
    for j, comparison in enumerate(blood):
        significant[:, j] = called[:, j] & _effect(
            comparison, min_log2fc=settings.min_log2fc, min_count=settings.min_count
        )
        comparison.stats["significant"] = significant[:, j]
    expanded = significant.any(axis=1)
    best, _ = _best(blood, significant, n=n)
    peak = np.zeros(n, dtype=np.int64)
    highest = np.full(n, -1.0)
    for comparison in blood:
        freq = np.where(comparison.stats["significant"], comparison.stats["freq_post"], -1.0)
        np.copyto(peak, comparison.later.day, where=freq > highest)
        np.maximum(highest, freq, out=highest)
    tested = ~np.isnan(q)
    columns += [
        pl.Series("n_expanded_timepoints", significant.sum(axis=1).astype(np.int64)),
        pl.Series("expanded_in_blood", expanded),
        masked("peak_day", peak, expanded),
        masked("blood_log2fc", _pick(blood, best, "log2fc"), best >= 0),
        masked("blood_qvalue", np.nan_to_num(q, nan=1.0), tested),
    ]
    return columns, expanded, new, simes(p) if blood else np.full(n, np.nan)


def _flag_qvalues(
    pb: NDArray, pb_min: NDArray, pt: NDArray, pt_min: NDArray, *, expanded: NDArray, settings: CallSettings
) -> NDArray[np.float64]:
    """r-values (or q-values) of "expanded in blood and enriched in the tumour" for every clone.

    ``replicability`` (default): Bogomolov & Heller (2013, JASA 108:1480) r-values with blood the primary
    study (its ``m`` = Tarone-testable blood clones) and the tumour the follow-up of the blood-expanded clones
    whose tumour test can reach ``(1 - c) q`` (``c`` = :data:`FLAG_EMPHASIS`): the tumour test pays only for
    the clones it follows up. ``conjunction``: BH over Tarone-testable clones of the intersection-union
    p-value ``max(p_blood, p_tumour)`` (Berger 1982), which pays for every clone tested in both. Both control
    the FDR of the conjunction; the r-values had 1.5-26x the flag recall in every scenario of
    benchmarks/ACCURACY.md at the same realised FDP (<= 0.01).
    """
    if settings.flag_fdr == "conjunction":
        return bh_over_testable(conjunction_pvalues(pb, pt), conjunction_pvalues(pb_min, pt_min), alpha=settings.fdr)
    m_blood = int(tarone_testable(pb_min, alpha=settings.fdr).sum())
    follow = expanded & (np.nan_to_num(pt_min, nan=1.0) <= (1 - FLAG_EMPHASIS) * settings.fdr)
    return replicability_rvalues(pb, pt, selected=follow, m_primary=m_blood, emphasis=FLAG_EMPHASIS)


def _tumor_columns(
    wide: pl.DataFrame,
    pre: Timepoint | None,
    tumor: Sequence[Comparison],
    post_biopsies: Sequence[Timepoint],
    blood: Sequence[Comparison],
    *,
    expanded: NDArray,
    new: NDArray,
    settings: CallSettings,
) -> list[pl.Series]:
    """Tumour accumulation, the conjunction evidence of each biopsy, the best of it, and the flag."""
    n = wide.height
    post = [pooled(wide, p)[0] for p in post_biopsies]
    max_post = np.maximum.reduce(post) if post else np.zeros(n, dtype=np.int64)
    p_blood, p_min_blood = _pvalue_matrix(blood, n)
    pb, pb_min = (simes(p_blood), simes(p_min_blood)) if blood else (np.full(n, np.nan), np.full(n, np.nan))
    effects = [_effect(c, min_log2fc=settings.min_log2fc, min_count=settings.tumor_min_count) for c in tumor]
    if pre is not None:
        pre_count, _ = pooled(wide, pre)
        p, p_min = _pvalue_matrix(tumor, n)
        _, called = clone_level(p, p_min, alpha=settings.fdr)
        significant = np.zeros((n, len(tumor)), dtype=bool)
        for j, (comparison, effect) in enumerate(zip(tumor, effects, strict=True)):
            significant[:, j] = called[:, j] & effect
            comparison.stats["significant"] = significant[:, j]
        new_rule = (pre_count == 0) & (max_post >= settings.tumor_min_count)
        accumulates = significant.any(axis=1)
        if settings.tumor_rule == "significant_or_new":
            accumulates = accumulates | new_rule
        columns = [pl.Series("tumor_pre_count", pre_count)]
    else:
        accumulates = max_post >= settings.tumor_min_count if post else np.zeros(n, dtype=bool)
        columns = [nulls("tumor_pre_count", pl.Int64, n)]
    columns += [pl.Series("tumor_max_post_count", max_post), pl.Series("accumulates_in_tumor", accumulates)]
    flag_q = np.full((n, len(tumor)), np.nan)
    for j, comparison in enumerate(tumor):
        pj = np.where(comparison.tested, comparison.stats["pvalue"], np.nan)
        pj_min = np.where(comparison.tested, comparison.p_min, np.nan)
        flag_q[:, j] = _flag_qvalues(pb, pb_min, pj, pj_min, expanded=expanded, settings=settings)
    if pre is not None and tumor:
        p, p_min = _pvalue_matrix(tumor, n)
        conj_q = _flag_qvalues(pb, pb_min, simes(p), simes(p_min), expanded=expanded, settings=settings)
        any_effect = np.logical_or.reduce(effects)
        in_tumor = (np.nan_to_num(conj_q, nan=1.0) < settings.fdr) & any_effect
        if settings.tumor_rule == "significant_or_new":
            in_tumor = in_tumor | new_rule
    else:
        conj_q = np.full(n, np.nan)
        in_tumor = accumulates
    flag = expanded & in_tumor
    if settings.require_new:
        flag = flag & new
    for j, (comparison, effect) in enumerate(zip(tumor, effects, strict=True)):
        label = comparison.later.label
        columns += [
            masked(f"{label}_flag_qvalue", np.nan_to_num(flag_q[:, j], nan=1.0), ~np.isnan(flag_q[:, j])),
            masked(f"{label}_flag_log2fc", comparison.stats["log2fc"], comparison.tested),
            pl.Series(f"{label}_flag_significant", flag & effect),
        ]
    best, _ = _best(tumor, np.column_stack(effects) if effects else np.zeros((n, 0), bool), n=n)
    columns += [
        masked("tumor_log2fc", _pick(tumor, best, "log2fc"), best >= 0),
        masked("tumor_qvalue", np.nan_to_num(conj_q, nan=1.0), ~np.isnan(conj_q)),
    ]
    return [*columns, pl.Series("flagged", flag)]


def analyse_patient(
    samples: pl.DataFrame, clonotypes: Mapping[str, pl.DataFrame], *, settings: CallSettings = CallSettings()
) -> PatientCalls:
    """Blood expansion, tumour accumulation and flags for one patient.

    Parameters
    ----------
    samples
        The patient's sample-sheet rows (``sample``, ``compartment``, ``day``, ``replicate``).
    clonotypes
        Sample id -> clonotype table (``clone_id``, ``junction_aa``, ``v_gene``, ``j_gene``, ``count``;
        ``frequency`` relative to the whole sample, when present, reveals truncated exports).
    settings
        Thresholds and model; see :class:`CallSettings`.
    """
    if settings.model not in ("fisher", "betabinomial", "overdispersed"):
        raise ValueError(f"model must be 'fisher', 'betabinomial' or 'overdispersed', got {settings.model!r}")
    if settings.flag_fdr not in ("conjunction", "replicability"):
        raise ValueError(f"flag_fdr must be 'conjunction' or 'replicability', got {settings.flag_fdr!r}")
    notes: list[str] = []
    depths = sample_depths(clonotypes)
    for name, info in depths.items():
        if info.truncated:
            notes.append(
                f"sample {name} is a truncated export (counts >= {info.cut} kept, full depth {info.depth}):"
                f" a clone absent from it may hold up to {info.cut - 1} templates, and the tests assume so"
            )
    wide = wide_counts(clonotypes, depths={s: d.depth for s, d in depths.items()})
    product = product_clones(wide, samples)
    floors = NoiseFloors(wide, samples, depths, settings=settings, exclude=product)
    noise_rows: list[pl.DataFrame] = []
    fitted: list = []
    spare: list = []

    def fallback() -> object | None:
        """The first fit of this patient, else (overdispersed) the blood pair sharing the most clones."""
        if fitted:
            return fitted[0]
        if settings.model != "overdispersed":
            return None
        if not spare:
            spare.append(best_pair_null(wide, timepoints(samples, "blood"), depths, exclude=product))
        return spare[0]

    def run(
        reference: Timepoint | None, later: Sequence[Timepoint], min_count: int, exclude: NDArray
    ) -> list[Comparison]:
        done = []
        for point in later if reference is not None else []:
            comparison = compare(
                wide,
                reference,
                point,
                settings=settings,
                min_count=min_count,
                depths=depths,
                exclude=exclude,
                floors=floors,
                fallback=fallback(),
            )
            if comparison.noise_source not in ("poisson", "fallback"):
                fitted.append(comparison.noise)
            done.append(comparison)
            noise_rows.append(
                comparison.noise_frame.select(
                    pl.lit(f"{point.label} vs {reference.description}").alias("comparison"), pl.all()
                )
            )
        return done

    blood_points = timepoints(samples, "blood")
    baseline = baseline_timepoint(blood_points, day=settings.baseline_day)
    blood = run(baseline, [p for p in blood_points if p.day > 0], settings.min_count, product)
    if baseline is None:
        notes.append("no baseline blood sample (day <= 0): blood expansion not tested")
    elif not blood:
        notes.append("no post-infusion blood sample: blood expansion not tested")
    tumor_points = timepoints(samples, "tumor")
    pre = baseline_timepoint(tumor_points)
    post_biopsies = [p for p in tumor_points if p.day > 0]
    tumor = run(pre, post_biopsies, settings.tumor_min_count, product)
    if pre is None and post_biopsies:
        notes.append("no pre-treatment biopsy: tumour accumulation by presence in post-treatment biopsies only")
    elif not post_biopsies:
        notes.append("no post-treatment biopsy: tumour accumulation not tested")
    notes.extend(floors.notes)
    notes.extend(f"{c.later.label}: {c.noise_note}" for c in (*blood, *tumor) if c.noise_note)
    blood_columns, expanded, new, _ = _blood_columns(wide, baseline, blood, settings, notes)
    tumor_columns = _tumor_columns(
        wide, pre, tumor, post_biopsies, blood, expanded=expanded, new=new, settings=settings
    )
    calls = wide.hstack(
        [
            *(column for c in (*blood, *tumor) for column in c.columns()),
            *blood_columns,
            *tumor_columns,
            pl.Series("in_product", product),
        ]
    )
    flagged = calls.filter(pl.col("flagged")).sort(
        ["tumor_qvalue", "blood_qvalue", "blood_log2fc", "clone_id"],
        descending=[False, False, True, False],
        nulls_last=True,
    )
    noise = (
        pl.concat([*floors.frames, *noise_rows], how="diagonal_relaxed")
        if (noise_rows or floors.frames)
        else pl.DataFrame(schema={"comparison": pl.Utf8})
    )
    return PatientCalls(clones=calls, flagged=flagged, noise=noise, notes=tuple(notes))
