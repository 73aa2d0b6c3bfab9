"""Snakemake script of rule figures_cohort: the cohort figures (PNG + PDF)."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import figures_cohort_step
from tcrtrack.plots import COHORT_FIGURES
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: figures_cohort_step(
        diversity=sm.input.diversity,
        summary=sm.input.summary,
        overlap=sm.input.overlap,
        public=sm.input.public,
        association=sm.input.association,
        sheet=sm.input.sheet,
        group_by=sm.params.group_by,
        baseline_day=sm.params.baseline_day,
        figures={name: getattr(sm.output, name) for name in COHORT_FIGURES},
    ),
)
