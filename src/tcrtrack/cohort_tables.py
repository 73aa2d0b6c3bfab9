"""The contracts of the tables the expansion stage hands on, and the summaries built from them.

* :data:`FLAGGED_COLUMNS` and :func:`flagged_table`: the columns of ``flagged_clones.tsv`` (per patient
  and for the cohort; other stages read them).
* :func:`expansion_summary` and :data:`SUMMARY_COLUMNS`: one patient's counts of expanded, new,
  accumulating and flagged clones (a row of ``results/cohort/expansion_summary.tsv``; ``tcrtrack show``
  prints them).
* :func:`patient_metadata`: the sheet's extra columns (response, arm, ...) per patient, joined onto the
  cohort tables of every stage.

Pure functions of frames: reading and writing is :mod:`tcrtrack.pipeline`'s.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

SHEET_COLUMNS = ("patient", "sample", "compartment", "day", "replicate")
"""The design columns of the sample sheet (besides ``path`` and ``format``); any other column is metadata."""

FLAGGED_COLUMNS = (
    "patient",
    "clone_id",
    "junction_aa",
    "v_gene",
    "j_gene",
    "new_in_blood",
    "peak_day",
    "n_expanded_timepoints",
    "blood_log2fc",
    "blood_qvalue",
    "tumor_log2fc",
    "tumor_qvalue",
    "baseline_count",
    "baseline_frequency",
    "baseline_frequency_upper",
    "tumor_pre_count",
    "tumor_max_post_count",
    "in_product",
)
"""The evidence columns of ``flagged_clones.tsv``; the per-patient table adds ``count_<sample>`` columns."""

COUNT_COLUMNS = (
    "clones",
    "baseline_depth",
    "new_detection_limit",
    "expanded_in_blood",
    "new_expanded_in_blood",
    "accumulating_in_tumor",
    "flagged",
    "flagged_new_in_blood",
)
"""The counts of :func:`expansion_counts` (from the clone table alone)."""

SUMMARY_COLUMNS = (*COUNT_COLUMNS, "flagged_share_last_biopsy", "flagged_share_max_biopsy", "flagged_share_by_biopsy")
"""The columns of :func:`expansion_summary`, in order (``expansion_summary.tsv`` adds patient and metadata)."""


def flagged_table(flagged: pl.DataFrame, *, patient: str, samples: pl.DataFrame) -> pl.DataFrame:
    """The flagged clones with their evidence and their count in every sample (in sheet order)."""
    ordered = samples.sort("compartment", "day", "replicate")["sample"].to_list()
    return flagged.with_columns(patient=pl.lit(patient)).select(*FLAGGED_COLUMNS, *(f"count_{s}" for s in ordered))


def cohort_flagged(tables: Iterable[pl.DataFrame]) -> pl.DataFrame | None:
    """Every patient's flagged clones (:data:`FLAGGED_COLUMNS`, without the per-sample counts); None for none."""
    frames = [table.select(FLAGGED_COLUMNS) for table in tables]
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def patient_metadata(samples: pl.DataFrame) -> pl.DataFrame:
    """Per patient, the first value of every metadata column of the sheet."""
    extra = [c for c in samples.columns if c not in (*SHEET_COLUMNS, "path", "format")]
    return samples.group_by("patient", maintain_order=True).agg(pl.col(c).drop_nulls().first() for c in extra)


def expansion_counts(clones: pl.DataFrame) -> dict[str, object]:
    """Counts of expanded, new, accumulating and flagged clones of one patient's clone table
    (:data:`COUNT_COLUMNS`), and the depth of its pooled baseline with the frequency below which a clone
    absent from it counts as new."""
    flagged = clones.filter(pl.col("flagged"))
    seen = clones.filter(pl.col("baseline_count") > 0) if "baseline_count" in clones.columns else clones.clear()
    depth = float((seen["baseline_count"] / seen["baseline_frequency"]).median()) if seen.height else None
    return {
        "clones": clones.height,
        "baseline_depth": round(depth) if depth else None,
        # Garwood's 95% upper bound on the frequency of a clone absent from the pooled baseline: 3.0 / N
        "new_detection_limit": float(-np.log(0.05) / depth) if depth else None,
        "expanded_in_blood": int(clones["expanded_in_blood"].sum()),
        "new_expanded_in_blood": int((clones["expanded_in_blood"] & clones["new_in_blood"].fill_null(False)).sum()),
        "accumulating_in_tumor": int(clones["accumulates_in_tumor"].sum()),
        "flagged": flagged.height,
        "flagged_new_in_blood": int(flagged["new_in_blood"].fill_null(False).sum()),
    }


def expansion_summary(clones: pl.DataFrame, samples: pl.DataFrame) -> dict[str, object]:
    """:func:`expansion_counts`, and the share of each post-treatment biopsy's repertoire that the flagged
    clones occupy (``samples``: the patient's sheet rows)."""
    flagged = clones.filter(pl.col("flagged"))
    biopsies = samples.filter((pl.col("compartment") == "tumor") & (pl.col("day") > 0)).sort("day", "replicate")
    shares = {
        f"d{day}": float(flagged[f"freq_{sample}"].sum())
        for sample, day in biopsies.select("sample", "day").iter_rows()
    }
    return {
        **expansion_counts(clones),
        "flagged_share_last_biopsy": list(shares.values())[-1] if shares else None,
        "flagged_share_max_biopsy": max(shares.values()) if shares else None,
        "flagged_share_by_biopsy": "; ".join(f"{k}={v:.4g}" for k, v in shares.items()) or None,
    }
