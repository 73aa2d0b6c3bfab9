"""The cohort workflow step of the specificity stage (rule ``specificity_cohort``,
``workflow/rules/specificity.smk``), as a function of files.

:func:`specificity_cohort_step`: specificity groups across patients (:data:`GROUPED_SETS` of every patient's
``specificity.tsv``, written by :func:`tcrtrack.specificity.steps.specificity_step`), the cohort's flagged clones
with every annotation column (:data:`FLAGGED_EXTRA`), cross-patient contamination (and its QC table), the
per-patient annotation summary and the network figure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tcrtrack.io import read_tsv, write_tsv
from tcrtrack.samplesheet import read_sample_sheet
from tcrtrack.specificity.steps import SPECIFICITY_SCHEMA, read_specificity

log = logging.getLogger(__name__)

#: Clone sets grouped across patients (the cohort rule).
GROUPED_SETS = ("flagged", "expanded_in_blood", "top_tumor")
#: Columns added to the cohort's flagged clones in ``flagged_clones_annotated.tsv``.
FLAGGED_EXTRA = (
    "known_specificity",
    "viral_bystander",
    "best_match",
    "specificity_group",
    "pgen",
    "convergence",
    "possible_contamination",
    "contamination_source",
    "contamination_ratio",
)


def _sample_rows(clonotypes: Sequence[str]) -> pl.DataFrame:
    """Every sample's clonotypes (``patient``, ``sample``, ``clone_id``, ``junction``, ``frequency``); the patient
    and sample come from the path ``results/clonotypes/{patient}/{sample}.parquet``."""
    frames = [
        pl.read_parquet(p, columns=["clone_id", "junction", "frequency"]).select(
            pl.lit(Path(p).parent.name).alias("patient"),
            pl.lit(Path(p).name.removesuffix(".parquet")).alias("sample"),
            pl.all(),
        )
        for p in clonotypes
    ]
    if not frames:
        return pl.DataFrame(
            schema={
                "patient": pl.Utf8,
                "sample": pl.Utf8,
                "clone_id": pl.Utf8,
                "junction": pl.Utf8,
                "frequency": pl.Float64,
            }
        )
    return pl.concat(frames, how="vertical_relaxed")


def contamination(rows: pl.DataFrame, *, min_ratio: float, min_frequency: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per clone of a patient: ``possible_contamination``, ``contamination_source`` (the other sample with the
    largest frequency ratio), ``contamination_ratio``; per sample: the QC counts)."""
    from tcrtrack.specificity.contamination import flag_contamination

    flagged = flag_contamination(rows, min_ratio=min_ratio, min_source_frequency=min_frequency)
    qc = flagged.group_by("patient", "sample", maintain_order=True).agg(
        clones=pl.len(),
        shared_nt_clones=(pl.col("shared_nt_samples") > 0).sum().cast(pl.Int64),
        contamination_clones=pl.col("possible_contamination").sum().cast(pl.Int64),
        contamination_frequency=pl.col("frequency").filter(pl.col("possible_contamination")).sum(),
        contamination_sources=pl.col("contamination_source").drop_nulls().unique().sort().str.join(","),
    )
    qc = qc.with_columns(
        contamination_sources=pl.when(pl.col("contamination_sources") == "")
        .then(None)
        .otherwise(pl.col("contamination_sources"))
    )
    per_clone = (
        flagged.filter(pl.col("possible_contamination"))
        .sort("patient", "clone_id", "contamination_ratio", "sample", descending=[False, False, True, False])
        .group_by("patient", "clone_id", maintain_order=True)
        .agg(
            possible_contamination=pl.lit(True),
            contamination_source=pl.format(
                "{} (in {})", pl.col("contamination_source").first(), pl.col("sample").first()
            ),
            contamination_ratio=pl.col("contamination_ratio").first(),
        )
    )
    return per_clone, qc


def _group_tables(members: pl.DataFrame, max_distance: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(members with ``specificity_group``, the groups table, the edges between members)."""
    from tcrtrack.specificity.groups import group_summary, specificity_groups

    grouped, edges = specificity_groups(members, max_distance=max_distance)
    if grouped["specificity_group"].is_null().all():
        schema = {
            "specificity_group": pl.Utf8,
            "size": pl.Int64,
            "n_patients": pl.Int64,
            "patients": pl.Utf8,
            "members_per_patient": pl.Utf8,
            "n_flagged": pl.Int64,
            "n_expanded_in_blood": pl.Int64,
            "n_accumulating_in_tumor": pl.Int64,
            "max_tumour_frequency": pl.Float64,
            "v_genes": pl.Utf8,
            "motif": pl.Utf8,
            "known_specificity": pl.Utf8,
            "n_viral": pl.Int64,
            "report": pl.Boolean,
            "members": pl.Utf8,
        }
        return grouped, pl.DataFrame(schema=schema), edges
    summary = group_summary(grouped, flagged="flagged", tumour_frequency="tumor_max_post_frequency", annotation=grouped)
    in_group = grouped.filter(pl.col("specificity_group").is_not_null())
    extra = in_group.group_by("specificity_group").agg(
        n_expanded_in_blood=pl.col("expanded_in_blood").sum().cast(pl.Int64),
        n_accumulating_in_tumor=pl.col("accumulates_in_tumor").sum().cast(pl.Int64),
        n_viral=pl.col("viral_bystander").fill_null(False).sum().cast(pl.Int64),
        members=pl.format("{}:{}", pl.col("patient"), pl.col("junction_aa")).sort().str.join(","),
    )
    per_patient = (
        in_group.group_by("specificity_group", "patient")
        .agg(n=pl.len())
        .sort("patient")
        .group_by("specificity_group")
        .agg(members_per_patient=pl.format("{}:{}", pl.col("patient"), pl.col("n")).str.join(","))
    )
    summary = summary.join(per_patient, on="specificity_group", how="left", maintain_order="left").join(
        extra, on="specificity_group", how="left", maintain_order="left"
    )
    if "known_specificity" not in summary.columns:
        summary = summary.with_columns(known_specificity=pl.lit(None, pl.Utf8))
    summary = summary.select(
        "specificity_group",
        "size",
        "n_patients",
        "patients",
        "members_per_patient",
        "n_flagged",
        "n_expanded_in_blood",
        "n_accumulating_in_tumor",
        "max_tumour_frequency",
        "v_genes",
        "motif",
        "known_specificity",
        "n_viral",
        "report",
        "members",
    )
    return grouped, summary, edges


def annotation_summary(
    spec: pl.DataFrame, flagged: pl.DataFrame, patients: Sequence[str], *, n_databases: int
) -> pl.DataFrame:
    """Per patient: flagged clones with a database hit and with a viral match, and the share of the flagged clones'
    post-treatment tumour templates that the viral ones hold."""
    rows = []
    for patient in patients:
        mine = spec.filter((pl.col("patient") == patient) & pl.col("flagged"))
        viral = mine.filter(pl.col("viral_bystander").fill_null(False))
        templates, viral_templates = int(mine["tumor_post_templates"].sum()), int(viral["tumor_post_templates"].sum())
        in_flagged = flagged.filter(pl.col("patient") == patient)
        rows.append(
            {
                "patient": patient,
                "databases": n_databases,
                "flagged": mine.height,
                "flagged_annotated": int(mine["known_specificity"].is_not_null().sum()),
                "flagged_viral": viral.height,
                "share_flagged_viral": viral.height / mine.height if mine.height and n_databases else None,
                "flagged_tumor_templates": templates,
                "flagged_viral_tumor_templates": viral_templates,
                "share_tumor_templates_viral": viral_templates / templates if templates and n_databases else None,
                "flagged_in_specificity_group": int(in_flagged["specificity_group"].is_not_null().sum()),
                "flagged_possible_contamination": int(in_flagged["possible_contamination"].fill_null(False).sum()),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "patient": pl.Utf8,
            "databases": pl.Int64,
            "flagged": pl.Int64,
            "flagged_annotated": pl.Int64,
            "flagged_viral": pl.Int64,
            "share_flagged_viral": pl.Float64,
            "flagged_tumor_templates": pl.Int64,
            "flagged_viral_tumor_templates": pl.Int64,
            "share_tumor_templates_viral": pl.Float64,
            "flagged_in_specificity_group": pl.Int64,
            "flagged_possible_contamination": pl.Int64,
        },
    )


def specificity_cohort_step(
    *,
    specificity: Sequence[str],
    flagged: str,
    clonotypes: Sequence[str],
    sheet: str,
    settings: Mapping[str, Any],
    n_databases: int,
    groups_out: str,
    flagged_out: str,
    summary_out: str,
    contamination_out: str,
    figure_png: str,
) -> None:
    """The cohort: ``specificity_groups.tsv``, ``flagged_clones_annotated.tsv``, ``annotation_summary.tsv``,
    ``contamination_qc.tsv`` and the network figure (module docstring).

    ``clonotypes``: every sample's clonotype table (``results/clonotypes/{patient}/{sample}.parquet``), for the
    cross-patient contamination check on nucleotide junctions.
    """
    from tcrtrack.cohort_tables import FLAGGED_COLUMNS, patient_metadata
    from tcrtrack.pipeline import with_sheet_metadata
    from tcrtrack.plots.specificity import specificity_network
    from tcrtrack.plots.style import save_figure

    samples = read_sample_sheet(sheet, check_files=False)
    patients = samples["patient"].unique(maintain_order=True).to_list()
    tables = [read_specificity(p) for p in specificity]
    spec = pl.concat(tables, how="vertical") if tables else pl.DataFrame(schema=SPECIFICITY_SCHEMA)
    members = spec.filter(pl.any_horizontal(pl.col(s) for s in GROUPED_SETS))
    grouped, groups, edges = _group_tables(members, int(settings.get("group_distance", 12)))
    per_clone, qc = contamination(
        _sample_rows(clonotypes),
        min_ratio=float(settings.get("contamination_min_ratio", 20)),
        min_frequency=float(settings.get("contamination_min_frequency", 1e-4)),
    )
    cohort_flagged = read_tsv(flagged)
    if cohort_flagged.height == 0:
        cohort_flagged = pl.DataFrame(schema={c: pl.Utf8 for c in FLAGGED_COLUMNS})
    cohort_flagged = cohort_flagged.with_columns(pl.col("patient", "clone_id").cast(pl.Utf8))
    annotated = (
        cohort_flagged.join(
            spec.select(
                "patient", "clone_id", "known_specificity", "viral_bystander", "best_match", "pgen", "convergence"
            ),
            on=["patient", "clone_id"],
            how="left",
            maintain_order="left",
        )
        .join(
            grouped.select("patient", "clone_id", "specificity_group"),
            on=["patient", "clone_id"],
            how="left",
            maintain_order="left",
        )
        .join(per_clone, on=["patient", "clone_id"], how="left", maintain_order="left")
        .with_columns(possible_contamination=pl.col("possible_contamination").fill_null(False))
    )
    annotated = annotated.select(*cohort_flagged.columns, *FLAGGED_EXTRA)
    summary = annotation_summary(spec, annotated, patients, n_databases=n_databases)
    if settings.get("exclude_viral"):
        viral = annotated["viral_bystander"].fill_null(False)
        log.info("annotation.exclude_viral: %d viral bystander(s) left out of %s", int(viral.sum()), flagged_out)
        annotated = annotated.filter(~viral)
    summary = summary.join(patient_metadata(samples), on="patient", how="left", maintain_order="left")
    write_tsv(groups, groups_out)
    write_tsv(annotated, flagged_out)
    write_tsv(summary, summary_out)
    write_tsv(with_sheet_metadata(qc, sheet) if qc.height else qc, contamination_out)
    save_figure(
        specificity_network(
            grouped,
            edges,
            groups,
            n_clones=members.height,
            n_patients=len(patients),
            max_distance=int(settings.get("group_distance", 12)),
        ),
        figure_png,
    )
    log.info(
        "cohort: %d clones grouped into %d specificity groups (%d reported); %d flagged clones annotated, %d "
        "possible contamination; %d samples with possible contamination",
        members.height,
        groups.height,
        int(groups["report"].sum()) if groups.height else 0,
        annotated.height,
        int(annotated["possible_contamination"].sum()),
        int((qc["contamination_clones"] > 0).sum()),
    )
