"""Snakemake script: specificity groups, annotated flagged clones, contamination QC and the network figure."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.scripting import run_step
from tcrtrack.specificity.cohort_step import specificity_cohort_step

run_step(
    snakemake,
    lambda sm: specificity_cohort_step(
        specificity=sm.input.specificity,
        flagged=sm.input.flagged,
        clonotypes=sm.params.clonotypes,
        sheet=sm.input.sheet,
        settings=sm.params.settings,
        n_databases=len(sm.params.databases),
        groups_out=sm.output.groups,
        flagged_out=sm.output.flagged,
        summary_out=sm.output.summary,
        contamination_out=sm.output.contamination,
        figure_png=sm.output.figure,
    ),
)
