"""Snakemake script: the cohort's clone-origin table, per-biopsy summary and stacked-bar figure."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.clone_origin import clone_origin_cohort_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: clone_origin_cohort_step(
        origins=list(sm.input.origins),
        sheet=sm.input.sheet,
        group_by=sm.params.group_by,
        out=sm.output.origin,
        summary_out=sm.output.summary,
        figure=sm.output.figure,
    ),
)
