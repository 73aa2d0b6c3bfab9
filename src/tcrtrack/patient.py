"""Per-patient calls: clones expanding in blood after infusion, accumulating in the tumour, and both.

One patient's samples are aligned on ``clone_id`` into a wide table. Blood: every post-infusion
day (day > 0) is compared with the baseline (the latest blood day <= 0, replicates pooled);
tumour: every post-treatment biopsy with the pre-treatment one. Each comparison is a
per-clone test (:func:`tcrtrack.expansion.test_expansion`) with Benjamini–Hochberg q-values
over the clones tested in it. A clone is *flagged* when it is expanded in blood at one or more
post-infusion days and accumulates in the tumour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from tcrtrack.expansion import bh_qvalues, test_expansion
from tcrtrack.noise import (NoiseModel, fit_noise_from_bulk, fit_noise_from_replicates, for_pooled_libraries,
                            poisson_noise)

ANNOTATION = ("clone_id", "junction_aa", "v_gene", "j_gene")


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


def wide_counts(clonotypes: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Align the samples' clonotype tables on ``clone_id``: ``count_<sample>`` (0 when absent) and
    ``freq_<sample>`` columns, one row per clone seen in any sample, ordered by ``clone_id``."""
    long = pl.concat([table.select(*ANNOTATION, "count").with_columns(sample=pl.lit(sample))
                      for sample, table in clonotypes.items()])
    annotation = long.group_by("clone_id").agg(pl.col(c).first() for c in ANNOTATION[1:])
    counts = long.pivot(on="sample", index="clone_id", values="count", aggregate_function="sum",
                        on_columns=list(clonotypes))
    counts = counts.rename({s: f"count_{s}" for s in clonotypes}).fill_null(0)
    totals = {s: int(t["count"].sum()) for s, t in clonotypes.items()}
    return annotation.join(counts, on="clone_id").with_columns(
        (pl.col(f"count_{s}") / totals[s]).alias(f"freq_{s}") for s in clonotypes).sort("clone_id")


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
    counts = wide.select(pl.sum_horizontal(f"count_{s}" for s in point.samples)).to_series().to_numpy()
    return counts, int(counts.sum())


def _noise_for(wide: pl.DataFrame, reference: Timepoint, a: np.ndarray, b: np.ndarray, n_a: int, n_b: int,
               settings: CallSettings, fallback: NoiseModel | None = None) -> NoiseModel:
    if settings.model == "fisher":
        return poisson_noise()
    if len(reference.samples) >= 2:
        replicates = [wide[f"count_{s}"].to_numpy() for s in reference.samples]
        return fit_noise_from_replicates(replicates, fallback=fallback)
    return fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b, fallback=fallback)


def compare(wide: pl.DataFrame, reference: Timepoint, later: Timepoint, *, settings: CallSettings,
            min_count: int, fallback: NoiseModel | None = None) -> tuple[pl.DataFrame, NoiseModel]:
    """Test every clone seen at ``reference`` or ``later``; columns prefixed with ``later.label``."""
    a, n_a = pooled(wide, reference)
    b, n_b = pooled(wide, later)
    tested = (a + b) > 0
    noise = for_pooled_libraries(_noise_for(wide, reference, a, b, n_a, n_b, settings, fallback),
                                 k_a=len(reference.samples), k_b=len(later.samples))
    result = test_expansion(a[tested], b[tested], n_a=n_a, n_b=n_b, model=settings.model,
                            noise=noise if settings.model == "overdispersed" else None,
                            pseudocount=settings.pseudocount, fdr=settings.fdr,
                            min_log2fc=settings.min_log2fc, min_count=min_count)
    prefix = later.label
    stats = result.select(
        pl.col("count_post").alias(f"{prefix}_count"), pl.col("freq_post").alias(f"{prefix}_freq"),
        pl.col("log2fc").alias(f"{prefix}_log2fc"), pl.col("pvalue").alias(f"{prefix}_pvalue"),
        pl.col("qvalue").alias(f"{prefix}_qvalue"), pl.col("significant").alias(f"{prefix}_significant"))
    stats = stats.with_columns(clone_id=wide["clone_id"].filter(pl.Series(tested)))
    return stats, noise


def _best(prefixes: Sequence[str], stat: str, *, by: str) -> pl.Expr:
    """``stat`` of the comparison whose ``by`` value is smallest among significant ones (else overall)."""
    if not prefixes:
        return pl.lit(None, dtype=pl.Float64)
    order = [pl.when(pl.col(f"{p}_significant")).then(pl.col(f"{p}_{by}")).otherwise(pl.col(f"{p}_{by}") + 2)
             for p in prefixes]
    values = [pl.col(f"{p}_{stat}") for p in prefixes]
    return pl.concat_list(values).list.get(pl.concat_list(order).list.arg_min(), null_on_oob=True)


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
    calls = wide

    def run(compartment: str, min_count: int, day: int | None) -> tuple[Timepoint | None, list[str]]:
        nonlocal calls
        reference, later = reference_and_later(timepoints(samples, compartment), day=day)
        if reference is None or not later:
            return reference, []
        for point in later:
            stats, noise = compare(wide, reference, point, settings=settings, min_count=min_count,
                                   fallback=fitted[0] if fitted else None)
            if noise.source != "poisson":
                fitted.append(noise)
            calls = calls.join(stats, on="clone_id", how="left")
            noise_rows.append(noise.to_frame().select(
                pl.lit(f"{point.label} vs {reference.label}").alias("comparison"), pl.all()))
        return reference, [p.label for p in later]

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
    calls = _summarise(calls, baseline=baseline, blood=blood, pre=pre, tumor=tumor,
                       post_biopsies=post_biopsies, settings=settings)
    flagged = calls.filter(pl.col("flagged")).sort(
        ["blood_qvalue", "tumor_qvalue", "blood_log2fc", "clone_id"], descending=[False, False, True, False],
        nulls_last=True)
    noise = pl.concat(noise_rows, how="diagonal_relaxed") if noise_rows else pl.DataFrame(
        schema={"comparison": pl.Utf8})
    return PatientCalls(clones=calls, flagged=flagged, noise=noise, notes=tuple(notes))


def _summarise(calls: pl.DataFrame, *, baseline: Timepoint | None, blood: list[str], pre: Timepoint | None,
               tumor: list[str], post_biopsies: list[Timepoint], settings: CallSettings) -> pl.DataFrame:
    significant_blood = [pl.col(f"{p}_significant").fill_null(False) for p in blood]
    n_expanded = pl.sum_horizontal(significant_blood) if blood else pl.lit(0)
    if baseline is not None:
        base = pl.sum_horizontal(pl.col(f"count_{s}") for s in baseline.samples)
        depth = calls.select(base.sum()).item()
        baseline_cols = [base.alias("baseline_count"), (base / depth).alias("baseline_frequency")]
    else:
        baseline_cols = [pl.lit(None, dtype=pl.Int64).alias("baseline_count"),
                         pl.lit(None, dtype=pl.Float64).alias("baseline_frequency")]
    calls = calls.with_columns(*baseline_cols, n_expanded_timepoints=n_expanded.cast(pl.Int64))
    days = [int(p.split("_d")[1]) for p in blood]
    calls = calls.with_columns(
        expanded_in_blood=pl.col("n_expanded_timepoints") > 0,
        new_in_blood=pl.col("baseline_frequency") <= settings.new_max_frequency,
        peak_day=_peak_day(blood, days),
        blood_log2fc=_best(blood, "log2fc", by="qvalue"),
        blood_qvalue=_best(blood, "qvalue", by="qvalue"),
    )
    post_counts = [pl.sum_horizontal(pl.col(f"count_{s}") for s in p.samples) for p in post_biopsies]
    max_post = pl.max_horizontal(post_counts) if post_counts else pl.lit(0)
    if pre is not None:
        pre_count = pl.sum_horizontal(pl.col(f"count_{s}") for s in pre.samples)
        significant = pl.any_horizontal(pl.col(f"{p}_significant").fill_null(False) for p in tumor) if tumor \
            else pl.lit(False)
        new_rule = (pre_count == 0) & (max_post >= settings.tumor_min_count)
        accumulates = significant | new_rule if settings.tumor_rule == "significant_or_new" else significant
        calls = calls.with_columns(tumor_pre_count=pre_count)
    else:
        accumulates = max_post >= settings.tumor_min_count if post_counts else pl.lit(False)
        calls = calls.with_columns(tumor_pre_count=pl.lit(None, dtype=pl.Int64))
    calls = calls.with_columns(tumor_max_post_count=max_post.cast(pl.Int64), accumulates_in_tumor=accumulates)
    calls = _tumor_evidence_of_blood_expanded(calls, tumor, settings=settings)
    flagged_prefixes = [f"{p}_flag" for p in tumor]
    calls = calls.with_columns(
        tumor_log2fc=_best(flagged_prefixes, "log2fc", by="qvalue"),
        tumor_qvalue=_best(flagged_prefixes, "qvalue", by="qvalue"),
    )
    if pre is not None:
        in_tumor = pl.any_horizontal(pl.col(f"{p}_significant").fill_null(False) for p in flagged_prefixes) \
            if tumor else pl.lit(False)
        if settings.tumor_rule == "significant_or_new":
            in_tumor = in_tumor | new_rule
    else:
        in_tumor = accumulates
    flag = pl.col("expanded_in_blood") & in_tumor
    if settings.require_new:
        flag = flag & pl.col("new_in_blood").fill_null(False)
    return calls.with_columns(flagged=flag.fill_null(False))


def _tumor_evidence_of_blood_expanded(calls: pl.DataFrame, tumor: Sequence[str], *,
                                      settings: CallSettings) -> pl.DataFrame:
    """Tumour enrichment re-tested among the blood-expanded clones only, for the flags.

    For each post-treatment biopsy, Benjamini–Hochberg runs over the tumour p-values of the clones
    expanded in blood (``<biopsy>_flag_qvalue``), not over the whole repertoire: the flag asks
    about those clones, and selecting them on blood data leaves their tumour p-values valid (blood
    and tumour are separate libraries), so the FDR of the flagged set is controlled while the
    multiple-testing burden is that of tens of clones instead of thousands (selective inference in
    the sense of Benjamini & Bogomolov 2014, JRSS-B 76:297). ``<biopsy>_flag_significant`` needs
    ``q < fdr``, ``log2fc >= min_log2fc`` and ``count >= tumor.min_count`` as usual.
    """
    for prefix in tumor:
        selected = calls.filter(pl.col("expanded_in_blood") & pl.col(f"{prefix}_pvalue").is_not_null())
        q = bh_qvalues(selected[f"{prefix}_pvalue"].to_numpy()) if selected.height else np.array([])
        evidence = selected.select("clone_id").with_columns(pl.Series(f"{prefix}_flag_qvalue", q, dtype=pl.Float64))
        calls = calls.join(evidence, on="clone_id", how="left").with_columns(
            pl.col(f"{prefix}_log2fc").alias(f"{prefix}_flag_log2fc"),
            ((pl.col(f"{prefix}_flag_qvalue") < settings.fdr) & (pl.col(f"{prefix}_log2fc") >= settings.min_log2fc)
             & (pl.col(f"{prefix}_count") >= settings.tumor_min_count)).fill_null(False)
            .alias(f"{prefix}_flag_significant"))
    return calls


def _peak_day(blood: Sequence[str], days: Sequence[int]) -> pl.Expr:
    """The post-infusion day with the highest frequency among the days the clone was expanded."""
    if not blood:
        return pl.lit(None, dtype=pl.Int64)
    freqs = [pl.when(pl.col(f"{p}_significant").fill_null(False)).then(pl.col(f"{p}_freq")).otherwise(-1.0)
             for p in blood]
    index = pl.concat_list(freqs).list.arg_max()
    day_list = pl.concat_list(pl.lit(day, dtype=pl.Int64) for day in days)
    return pl.when(pl.col("n_expanded_timepoints") > 0).then(day_list.list.get(index))
