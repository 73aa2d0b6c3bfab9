"""Snakemake script: cohort flagged clones and expansion summary."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import expansion_cohort_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: expansion_cohort_step(
        clones=sm.input.clones,
        flagged=sm.input.flagged,
        sheet=sm.input.sheet,
        flagged_out=sm.output.flagged,
        summary_out=sm.output.summary,
    ),
)
