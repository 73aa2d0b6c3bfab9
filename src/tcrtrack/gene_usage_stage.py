"""The gene-usage stage: files in, files out (``workflow/rules/gene_usage.smk``, ``scripts/gene_usage*.py``).

:func:`gene_usage_step` (rule ``gene_usage``, per patient) reads one patient's clonotype tables and
``clones.parquet`` and writes V, J and V-J usage, spectratype, pairwise divergence, the usage comparisons,
the QC of ambiguous calls and the two figures; :func:`gene_usage_cohort_step` (rule ``gene_usage_cohort``)
gathers every patient's V usage with each sample's heatmap class (:func:`sample_class`). The statistics
themselves live in :mod:`tcrtrack.gene_usage`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from tcrtrack.gene_usage import (
    Ambiguity,
    Weight,
    compare_usage,
    gene_usage,
    pairwise_divergence,
    spectratype,
    split_by_flag,
    usage_qc,
)

_CLONOTYPE_COLUMNS = ("clone_id", "junction_aa", "junction", "v_gene", "j_gene", "v_ambiguous", "j_ambiguous", "count")
#: Sample classes of the cohort V-usage heatmap (:func:`sample_class`), in row order.
SAMPLE_CLASSES = ("baseline blood", "product", "post-infusion blood", "pre-treatment tumour", "post-treatment tumour")


def pool_clonotypes(tables: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Several clonotype tables (replicates, days) as one: counts summed per ``clone_id``."""
    frames = [t for t in tables if t.height]
    if not frames:
        return tables[0] if tables else pl.DataFrame(schema={"clone_id": pl.Utf8, "count": pl.Int64})
    both = pl.concat(frames, how="diagonal_relaxed")
    return both.group_by("clone_id", maintain_order=True).agg(
        pl.exclude("clone_id", "count").first(), pl.col("count").sum()
    )


def sample_class(compartment: str, day: int, last_blood_day: int | None, last_biopsy_day: int | None) -> str | None:
    """The heatmap class of a sample: baseline blood (day <= 0), product, post-infusion blood (the last
    blood day), pre-treatment tumour (day <= 0), post-treatment tumour (the last biopsy); else None."""
    if compartment == "product":
        return "product"
    if compartment == "blood":
        return "baseline blood" if day <= 0 else ("post-infusion blood" if day == last_blood_day else None)
    if compartment == "tumor":
        return "pre-treatment tumour" if day <= 0 else ("post-treatment tumour" if day == last_biopsy_day else None)
    return None


def _long_usage(name: str, table: pl.DataFrame, ambiguous: Ambiguity) -> pl.DataFrame:
    frames = []
    for segment in ("v", "j", "vj"):
        usage = gene_usage(table, segment=segment, ambiguous=ambiguous)
        for weight, (count, share) in {
            "clonotypes": ("clonotypes", "clonotype_share"),
            "templates": ("templates", "template_share"),
        }.items():
            frames.append(
                usage.select(
                    pl.lit(name).alias("sample"),
                    pl.lit(segment).alias("segment"),
                    pl.lit(weight).alias("weight"),
                    "gene",
                    pl.col(count).alias("count"),
                    pl.col(share).alias("share"),
                )
            )
    return pl.concat(frames)


def _comparison(
    name: str,
    reference: tuple[str, pl.DataFrame],
    test: tuple[str, pl.DataFrame],
    *,
    weights: Sequence[Weight],
    ambiguous: Ambiguity,
) -> list[pl.DataFrame]:
    out = []
    if reference[1].height == 0 or test[1].height == 0:
        return out
    for weight in weights:
        table = compare_usage(
            reference[1], test[1], segment="v", weight=weight, ambiguous=ambiguous, labels=("reference", "test")
        )
        out.append(
            table.select(
                pl.lit(name).alias("comparison"),
                pl.lit(reference[0]).alias("reference"),
                pl.lit(test[0]).alias("test"),
                pl.lit("v").alias("segment"),
                pl.all(),
            )
        )
    return out


def gene_usage_step(
    *,
    patient: str,
    clonotypes: Sequence[str],
    clones: str,
    sheet: str,
    ambiguous: Ambiguity = "first",
    baseline_day: int | None = None,
    usage_out: str,
    spectratype_out: str,
    divergence_out: str,
    comparisons_out: str,
    qc_out: str,
    heatmap_png: str,
    spectratype_png: str,
) -> None:
    """One patient's clonotype tables and ``clones.parquet`` -> V, J and V-J usage (both weightings),
    spectratype (every sample and the flagged clones), pairwise Jensen-Shannon divergence of V usage,
    the three comparisons (flagged vs background, product vs baseline blood, last post vs pre biopsy),
    the ambiguous/missing-call counts, and the two figures."""
    import logging
    from pathlib import Path

    from tcrtrack.design import baseline_timepoint, timepoints
    from tcrtrack.io import write_tsv
    from tcrtrack.plots.gene_usage import spectratype_panels, usage_heatmap
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_patient_sheet

    samples = read_patient_sheet(sheet, patient)
    tables = {}
    for path in clonotypes:
        names = pl.read_parquet_schema(path)
        tables[Path(path).name.removesuffix(".parquet")] = pl.read_parquet(
            path, columns=[c for c in _CLONOTYPE_COLUMNS if c in names]
        )
    meta = samples.select("sample", "compartment", "day", "replicate")
    usage = pl.concat([_long_usage(name, table, ambiguous) for name, table in tables.items()])
    usage = meta.join(usage, on="sample", how="inner", maintain_order="right")
    wide = pl.read_parquet(clones)
    flagged, background = split_by_flag(wide, flag="flagged")
    spectra = [spectratype(t).select(pl.lit(n).alias("sample"), pl.all()) for n, t in tables.items()]
    if flagged.height:
        spectra.append(spectratype(flagged).select(pl.lit("flagged_clones").alias("sample"), pl.all()))
    spectra_table = pl.concat(spectra)
    divergence = pl.concat(
        [
            pairwise_divergence(tables, segment="v", weight=w, ambiguous=ambiguous).select(
                pl.lit("v").alias("segment"), pl.lit(w).alias("weight"), pl.all()
            )
            for w in ("clonotypes", "templates")
        ]
    )
    blood, tumor = timepoints(samples, "blood"), timepoints(samples, "tumor")
    base = baseline_timepoint(blood, day=baseline_day)
    pre = baseline_timepoint(tumor)
    post = [p for p in tumor if p.day > 0]
    product = samples.filter(pl.col("compartment") == "product")["sample"].to_list()
    pool = lambda point: pool_clonotypes([tables[s] for s in point.samples if s in tables])  # noqa: E731
    comparisons = _comparison(
        "flagged_vs_background",
        ("background", background),
        ("flagged", flagged),
        weights=("clonotypes",),
        ambiguous=ambiguous,
    )
    if base is not None and product:
        comparisons += _comparison(
            "product_vs_baseline_blood",
            ("baseline blood", pool(base)),
            ("product", pool_clonotypes([tables[s] for s in product if s in tables])),
            weights=("clonotypes", "templates"),
            ambiguous=ambiguous,
        )
    if pre is not None and post:
        comparisons += _comparison(
            "post_vs_pre_biopsy",
            (f"tumour day {pre.day}", pool(pre)),
            (f"tumour day {post[-1].day}", pool(post[-1])),
            weights=("clonotypes",),
            ambiguous=ambiguous,
        )
    schema = {
        "comparison": pl.Utf8,
        "reference": pl.Utf8,
        "test": pl.Utf8,
        "segment": pl.Utf8,
        "gene": pl.Utf8,
        "clonotypes_reference": pl.Float64,
        "clonotypes_test": pl.Float64,
        "share_reference": pl.Float64,
        "share_test": pl.Float64,
        "log2_ratio": pl.Float64,
        "p": pl.Float64,
        "q": pl.Float64,
        "js_divergence": pl.Float64,
        "weight": pl.Utf8,
    }
    compared = pl.concat(comparisons) if comparisons else pl.DataFrame(schema=schema)
    qc = pl.concat([usage_qc(t).select(pl.lit(n).alias("sample"), pl.all()) for n, t in tables.items()])
    lead = pl.lit(patient).alias("patient")
    write_tsv(usage.select(lead, pl.all()), usage_out)
    write_tsv(spectra_table.select(lead, pl.all()), spectratype_out)
    write_tsv(divergence.select(lead, pl.all()), divergence_out)
    write_tsv(compared.select(lead, pl.all()), comparisons_out)
    write_tsv(qc.select(lead, pl.all()), qc_out)
    save_figure(usage_heatmap(usage, samples, patient=patient), heatmap_png)
    save_figure(spectratype_panels(spectra_table, samples, patient=patient), spectratype_png)
    logging.getLogger(__name__).info(
        "%s: gene usage of %d samples, %d comparisons",
        patient,
        len(tables),
        compared["comparison"].n_unique() if compared.height else 0,
    )


def gene_usage_cohort_step(
    *, usage: Sequence[str], qc: Sequence[str], sheet: str, out: str, qc_out: str, heatmap_png: str, top_n: int = 30
) -> None:
    """Every patient's ``gene_usage.tsv`` -> the cohort V usage (both weightings, with each sample's class
    for the heatmap) and the cohort QC of ambiguous and missing calls; the cohort V-usage heatmap."""
    from tcrtrack.cohort_tables import patient_metadata
    from tcrtrack.io import read_tsv, write_tsv
    from tcrtrack.plots.gene_usage import cohort_usage_heatmap
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_sample_sheet

    samples = read_sample_sheet(sheet, check_files=False)
    v = pl.concat([read_tsv(p).filter(pl.col("segment") == "v") for p in usage], how="vertical_relaxed")
    last = samples.group_by("patient").agg(
        last_blood=pl.col("day").filter((pl.col("compartment") == "blood") & (pl.col("day") > 0)).max(),
        last_biopsy=pl.col("day").filter((pl.col("compartment") == "tumor") & (pl.col("day") > 0)).max(),
    )
    v = (
        v.join(last, on="patient", how="left")
        .with_columns(
            sample_class=pl.struct("compartment", "day", "last_blood", "last_biopsy").map_elements(
                lambda r: sample_class(r["compartment"], r["day"], r["last_blood"], r["last_biopsy"]),
                return_dtype=pl.Utf8,
            )
        )
        .drop("last_blood", "last_biopsy")
    )
    meta = patient_metadata(samples)
    write_tsv(v.join(meta, on="patient", how="left", maintain_order="left"), out)
    write_tsv(pl.concat([read_tsv(p) for p in qc], how="vertical_relaxed"), qc_out)
    save_figure(cohort_usage_heatmap(v, top_n=top_n), heatmap_png)
