"""The association stage: per-patient metrics from the cohort tables, tested between sheet groups.

``workflow/rules/association.smk`` runs :func:`association_step` (``scripts/association.py``): it reads the
cohort tables (expansion, diversity or equal-coverage diversity, overlap, kinetics and clone-origin
summaries), builds one row per patient with every metric of :data:`METRIC_MEANINGS`
(:func:`association_metrics`), tests them between the groups of ``report.group_by`` and each
``cohort.compare`` column with :func:`tcrtrack.association.compare_groups` (:func:`association_table`),
adds log-rank tests when the sheet has survival columns (:func:`survival_table`) and draws the forest
figure. The statistics themselves live in :mod:`tcrtrack.association`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from tcrtrack.association import ASSOCIATION_SCHEMA, compare_groups, survival_association

#: Metrics taken from ``results/cohort/expansion_summary.tsv`` (name in the summary -> metric name).
EXPANSION_METRICS: dict[str, str] = {
    "expanded_in_blood": "expanded_in_blood",
    "new_expanded_in_blood": "new_expanded_in_blood",
    "accumulating_in_tumor": "accumulating_in_tumor",
    "flagged": "flagged",
    "flagged_share_max_biopsy": "flagged_tumor_share",
}
#: Metrics taken from ``results/cohort/kinetics_summary.tsv``.
KINETICS_METRICS: dict[str, str] = {
    "flagged_median_half_life_days": "flagged_median_half_life_days",
    "product_top_n_median_half_life_days": "product_median_half_life_days",
}
#: Metrics taken from the last post-treatment biopsy of ``results/cohort/clone_origin_summary.tsv``.
ORIGIN_METRICS: dict[str, str] = {
    "pre_tumor_template_share": "origin_pre_tumor_template_share",
    "baseline_blood_template_share": "origin_baseline_blood_template_share",
    "post_blood_template_share": "origin_post_blood_template_share",
    "novel_template_share": "origin_novel_template_share",
    "adjusted_new_template_share": "origin_adjusted_new_template_share",
}
#: What each metric of :func:`association_metrics` is (the forest figure's labels and the README).
METRIC_MEANINGS: dict[str, str] = {
    "expanded_in_blood": "clones expanded in blood",
    "new_expanded_in_blood": "new clones expanded in blood",
    "accumulating_in_tumor": "clones accumulating in tumour",
    "flagged": "flagged clones",
    "flagged_tumor_share": "flagged clones' tumour share (max biopsy)",
    "blood_shannon_change": "blood Shannon change from baseline",
    "blood_clonality_change": "blood clonality change from baseline",
    "tumor_shannon_change": "tumour Shannon change from pre",
    "tumor_clonality_change": "tumour clonality change from pre",
    "blood_turnover": "blood turnover (1 - Morisita-Horn vs baseline)",
    "blood_tumor_overlap_change": "blood-tumour overlap change (post - pre)",
    "flagged_median_half_life_days": "flagged clones' median half-life (days)",
    "product_median_half_life_days": "product clones' median half-life (days)",
    "origin_pre_tumor_template_share": "tumour templates from pre biopsy",
    "origin_baseline_blood_template_share": "tumour templates new, from baseline blood",
    "origin_post_blood_template_share": "tumour templates new, from post-infusion blood",
    "origin_novel_template_share": "tumour templates seen nowhere else",
    "origin_adjusted_new_template_share": "depth-adjusted share new to tumour (templates)",
}


def _change(values: pl.DataFrame, metric: str, compartment: str, baseline_day: int | None) -> pl.DataFrame:
    """``patient, <metric>`` change of the last day > 0 over the reference day (``baseline_day``, else the
    latest day <= 0) of one compartment; replicates averaged."""
    part = values.filter(
        (pl.col("compartment") == compartment) & pl.col(metric).is_not_null() & pl.col(metric).is_not_nan()
    )
    means = part.group_by("patient", "day").agg(pl.col(metric).mean())
    pre = means.filter(pl.col("day") <= 0)
    if baseline_day is not None and compartment == "blood":
        pre = pre.filter(pl.col("day") == baseline_day)
    ref = pre.sort("day").group_by("patient").agg(pl.col(metric).last().alias("ref"))
    last = means.filter(pl.col("day") > 0).sort("day").group_by("patient").agg(pl.col(metric).last().alias("post"))
    return ref.join(last, on="patient").select("patient", (pl.col("post") - pl.col("ref")).alias(metric))


def diversity_metrics_table(diversity: pl.DataFrame, *, baseline_day: int | None = None) -> pl.DataFrame:
    """Per patient: change from baseline (blood) and from the pre-treatment biopsy (tumour) of rarefied
    Shannon entropy (nats) and clonality, the last post-treatment day against the reference; from
    ``results/cohort/diversity.tsv`` (``depth_type == "rarefied"``) or a table of the same columns."""
    rows = diversity.filter(pl.col("depth_type") == "rarefied") if "depth_type" in diversity.columns else diversity
    out = rows.select("patient").unique()
    for compartment in ("blood", "tumor"):
        for metric in ("shannon_nats", "clonality"):
            name = f"{compartment}_{metric.removesuffix('_nats')}_change"
            out = out.join(
                _change(rows, metric, compartment, baseline_day).rename({metric: name}), on="patient", how="left"
            )
    return out


def overlap_metrics_table(overlap: pl.DataFrame, *, baseline_day: int | None = None) -> pl.DataFrame:
    """Per patient: ``blood_turnover`` (1 - Morisita-Horn between baseline blood and the last post-infusion
    draw) and ``blood_tumor_overlap_change`` (Morisita-Horn of the last post-treatment biopsy with its
    nearest blood draw minus that of the pre-treatment biopsy), from ``results/cohort/overlap.tsv``."""
    from tcrtrack.plots.cohort import _pairs

    blood = _pairs(overlap, "blood", baseline_day=baseline_day).filter(~pl.col("reference") & (pl.col("day") > 0))
    turnover = blood.sort("day").group_by("patient").agg((1.0 - pl.col("value").last()).alias("blood_turnover"))
    cross = _pairs(overlap, "blood_tumor", baseline_day=baseline_day)
    pre = cross.filter(pl.col("day") <= 0).sort("day").group_by("patient").agg(pl.col("value").last().alias("pre"))
    post = cross.filter(pl.col("day") > 0).sort("day").group_by("patient").agg(pl.col("value").last().alias("post"))
    change = pre.join(post, on="patient").select(
        "patient", (pl.col("post") - pl.col("pre")).alias("blood_tumor_overlap_change")
    )
    patients = overlap.select("patient").unique()
    return patients.join(turnover, on="patient", how="left").join(change, on="patient", how="left")


def association_metrics(
    *,
    expansion: pl.DataFrame,
    diversity: pl.DataFrame | None = None,
    overlap: pl.DataFrame | None = None,
    kinetics: pl.DataFrame | None = None,
    origin: pl.DataFrame | None = None,
    baseline_day: int | None = None,
) -> pl.DataFrame:
    """One row per patient (the patients of ``expansion``, in its order) with every metric the association
    stage tests (:data:`METRIC_MEANINGS`); a metric a patient lacks is null (counted by
    :func:`compare_groups`). ``diversity`` may be the rarefied rows of ``diversity.tsv`` or rows of the
    same columns at equal coverage."""
    out = expansion.select(
        "patient",
        *(pl.col(k).cast(pl.Float64).alias(v) for k, v in EXPANSION_METRICS.items() if k in expansion.columns),
    )
    for k in ("expanded_in_blood", "new_expanded_in_blood", "accumulating_in_tumor", "flagged"):
        if k in out.columns:
            out = out.with_columns(pl.col(k).cast(pl.Int64))
    if diversity is not None and diversity.height:
        out = out.join(diversity_metrics_table(diversity, baseline_day=baseline_day), on="patient", how="left")
    if overlap is not None and overlap.height:
        out = out.join(overlap_metrics_table(overlap, baseline_day=baseline_day), on="patient", how="left")
    if kinetics is not None and kinetics.height:
        out = out.join(
            kinetics.select(
                "patient",
                *(pl.col(k).cast(pl.Float64).alias(v) for k, v in KINETICS_METRICS.items() if k in kinetics.columns),
            ),
            on="patient",
            how="left",
        )
    if origin is not None and origin.height:
        last = origin.sort("biopsy_day").group_by("patient", maintain_order=True).last()
        out = out.join(
            last.select(
                "patient",
                *(pl.col(k).cast(pl.Float64).alias(v) for k, v in ORIGIN_METRICS.items() if k in last.columns),
            ),
            on="patient",
            how="left",
        )
    return out.with_columns(pl.col(pl.Float64).fill_nan(None))


def association_table(
    metrics: pl.DataFrame, groups: pl.DataFrame, *, columns: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> pl.DataFrame:
    """:func:`compare_groups` of every metric for each grouping column (one BH family per column), a
    ``grouping`` column first; a column missing from the sheet or with fewer than two groups gives one
    ``not_tested`` row saying so."""
    table = metrics.join(groups, on="patient", how="left")
    metric_names = [c for c in metrics.columns if c != "patient"]
    frames = []
    for column in dict.fromkeys(c for c in columns if c):
        if column not in table.columns or table[column].drop_nulls().n_unique() < 2:
            why = "no such sheet column" if column not in table.columns else "fewer than two groups"
            frames.append(
                pl.DataFrame(
                    [{"metric": None, "test": "not_tested", "missing_patients": why}], schema=ASSOCIATION_SCHEMA
                ).with_columns(n_tests=pl.lit(0, dtype=pl.Int64), grouping=pl.lit(column))
            )
            continue
        grouped = table.with_columns(pl.col(column).cast(pl.Utf8))
        result = compare_groups(
            grouped.select("patient", column, *metric_names),
            group=column,
            metrics=metric_names,
            n_boot=n_boot,
            seed=seed,
        )
        frames.append(result.with_columns(grouping=pl.lit(column)))
    if not frames:
        return pl.DataFrame(schema={"grouping": pl.Utf8, **ASSOCIATION_SCHEMA})
    return pl.concat(frames, how="vertical_relaxed").select("grouping", *ASSOCIATION_SCHEMA)


def survival_table(metrics: pl.DataFrame, groups: pl.DataFrame, *, by: Sequence[str]) -> pl.DataFrame:
    """Log-rank tests (:func:`survival_association`) for every ``pfs_days``/``os_days`` column of the sheet
    with an event column (``pfs_event``/``os_event``), by each grouping column and by the flagged count
    split at its median; no rows without survival columns."""
    table = metrics.join(groups, on="patient", how="left")
    frames = []
    for endpoint in ("pfs", "os"):
        time, event = f"{endpoint}_days", f"{endpoint}_event"
        if time not in table.columns or event not in table.columns:
            continue
        for column in [*dict.fromkeys(c for c in by if c and c in table.columns), "flagged"]:
            if column not in table.columns:
                continue
            ok = table.filter(pl.col(time).is_not_null() & pl.col(event).is_not_null() & pl.col(column).is_not_null())
            if ok.height < 2 or ok[column].n_unique() < 2:
                continue
            frames.append(
                survival_association(
                    table.with_columns(pl.col(time).cast(pl.Float64)), time=time, event=event, by=column
                ).with_columns(endpoint=pl.lit(endpoint))
            )
    if not frames:
        return pl.DataFrame(
            schema={
                "endpoint": pl.Utf8,
                "by": pl.Utf8,
                "split": pl.Float64,
                "groups": pl.Utf8,
                "n_per_group": pl.Utf8,
                "events_per_group": pl.Utf8,
                "chi2": pl.Float64,
                "df": pl.Int64,
                "p": pl.Float64,
                "test": pl.Utf8,
                "n_missing": pl.Int64,
            }
        )
    return pl.concat(frames, how="diagonal_relaxed").select("endpoint", pl.exclude("endpoint"))


def association_step(
    *,
    expansion: str,
    diversity: str,
    overlap: str,
    kinetics: str,
    origin: str,
    sheet: str,
    group_by: str | None,
    compare: Sequence[str],
    baseline_day: int | None,
    n_boot: int,
    seed: int,
    metrics_out: str,
    association_out: str,
    survival_out: str,
    figure: str,
    coverage: str | None = None,
) -> None:
    """The cohort tables -> per-patient metrics, their association with ``group_by`` and ``compare``, the
    survival tests and the forest figure. ``coverage`` (``results/cohort/diversity_coverage.tsv``, given
    with ``diversity.mode: coverage``) replaces the rarefied diversity by the equal-coverage values."""
    import logging

    from tcrtrack.cohort_tables import patient_metadata
    from tcrtrack.io import read_tsv, write_tsv
    from tcrtrack.plots.association import association_forest
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_sample_sheet

    log = logging.getLogger(__name__)
    samples = read_sample_sheet(sheet, check_files=False)
    meta = patient_metadata(samples)
    div = read_tsv(diversity)
    if coverage is not None:
        div = coverage_diversity_rows(read_tsv(coverage))
        log.info("association: diversity changes at equal coverage (diversity.mode: coverage)")
    metrics = association_metrics(
        expansion=read_tsv(expansion),
        diversity=div,
        overlap=read_tsv(overlap),
        kinetics=read_tsv(kinetics),
        origin=read_tsv(origin),
        baseline_day=baseline_day,
    )
    columns = [c for c in (group_by, *compare) if c]
    result = association_table(metrics, meta, columns=columns, n_boot=n_boot, seed=seed)
    write_tsv(metrics.join(meta, on="patient", how="left", maintain_order="left"), metrics_out)
    write_tsv(result, association_out)
    write_tsv(survival_table(metrics, meta, by=columns), survival_out)
    save_figure(association_forest(result, meanings=METRIC_MEANINGS), figure)
    tested = result.filter(pl.col("p").is_not_null())
    log.info(
        "association: %d metrics x %d groupings, %d tests, smallest q %s",
        metrics.width - 1,
        len(columns),
        tested.height,
        f"{tested['q'].min():.3g}" if tested.height else "NA",
    )


def coverage_diversity_rows(coverage: pl.DataFrame) -> pl.DataFrame:
    """``results/cohort/diversity_coverage.tsv`` (Hill numbers at equal coverage) as rows of
    ``diversity.tsv``'s columns: ``shannon_nats = ln D1``, ``clonality = 1 - ln D1 / ln D0``."""
    wide = coverage.filter(pl.col("q").is_in([0, 1])).pivot(
        on="q", index=["patient", "sample", "compartment", "day"], values="estimate", aggregate_function="first"
    )
    return wide.select(
        "patient",
        "sample",
        "compartment",
        "day",
        shannon_nats=pl.col("1").log(),
        clonality=1.0 - pl.col("1").log() / pl.col("0").log(),
        depth_type=pl.lit("rarefied"),
    )
