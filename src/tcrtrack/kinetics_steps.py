"""The kinetics stage's steps (rules ``kinetics`` and ``kinetics_cohort``, as in :mod:`tcrtrack.pipeline`): clone
kinetics and product persistence of one patient, then of the cohort; the statistics are in
:mod:`tcrtrack.kinetics`, the figures in :mod:`tcrtrack.plots.kinetics`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tcrtrack.cohort_tables import patient_metadata
from tcrtrack.io import read_tsv, write_tsv
from tcrtrack.samplesheet import read_patient_sheet, read_sample_sheet

log = logging.getLogger(__name__)


def kinetics_step(
    *,
    patient: str,
    clones: str,
    sheet: str,
    settings: dict,
    baseline_day: int | None,
    kinetics_out: str,
    persistence_out: str,
    kinetics_png: str,
    persistence_png: str,
) -> None:
    """One patient's clone kinetics and product persistence: tables and figures."""
    from tcrtrack.kinetics import clone_kinetics, product_persistence
    from tcrtrack.plots.kinetics import kinetics_panel, persistence_curves
    from tcrtrack.plots.style import save_figure

    samples = read_patient_sheet(sheet, patient)
    table = pl.read_parquet(clones)
    kinetics = clone_kinetics(
        samples,
        table,
        top_n=settings["top_n"],
        min_post_peak_points=settings["min_post_peak_points"],
        dispersion=settings["dispersion"],
    )
    persistence = product_persistence(
        samples,
        table,
        top_n=settings["top_n"],
        reference=settings["reference"],
        dispersion=settings["dispersion"],
        baseline_day=baseline_day,
    )
    write_tsv(
        kinetics.with_columns(patient=pl.lit(patient)) if "patient" not in kinetics.columns else kinetics, kinetics_out
    )
    write_tsv(persistence, persistence_out)
    save_figure(kinetics_panel(kinetics, patient=patient), kinetics_png)
    save_figure(persistence_curves(persistence, title=f"{patient} · product clones in blood"), persistence_png)
    log.info(
        "%s: %d clones followed, %d with a half-life",
        patient,
        kinetics.height,
        kinetics["half_life_days"].is_not_null().sum(),
    )


def kinetics_cohort_step(
    *,
    kinetics: Sequence[str],
    persistence: Sequence[str],
    sheet: str,
    kinetics_out: str,
    summary_out: str,
    persistence_out: str,
    kinetics_png: str,
    persistence_png: str,
) -> None:
    """All patients' kinetics and persistence -> cohort tables (with patient metadata) and figures."""
    from tcrtrack.kinetics import PERSISTENCE_SCHEMA, cohort_kinetics, kinetics_summary
    from tcrtrack.plots.kinetics import cohort_kinetics_figure, persistence_curves
    from tcrtrack.plots.style import save_figure

    samples = read_sample_sheet(sheet, check_files=False)
    # TSVs read back lose their types where a column is all NA: restore them from the schemas
    per_patient = {Path(p).parent.name: cohort_kinetics({Path(p).parent.name: read_tsv(p)}) for p in kinetics}
    persist = {Path(p).parent.name: read_tsv(p).cast(PERSISTENCE_SCHEMA) for p in persistence}
    cohort = cohort_kinetics(per_patient)
    summary = kinetics_summary(per_patient, persist).join(patient_metadata(samples), on="patient", how="left")
    persisted = (
        pl.concat([t for t in persist.values() if t.height], how="diagonal_relaxed")
        if any(t.height for t in persist.values())
        else next(iter(persist.values()))
    )
    write_tsv(cohort, kinetics_out)
    write_tsv(summary, summary_out)
    write_tsv(persisted, persistence_out)
    save_figure(cohort_kinetics_figure(cohort, summary), kinetics_png)
    save_figure(persistence_curves(persisted, title="cohort · product clones in blood"), persistence_png)
