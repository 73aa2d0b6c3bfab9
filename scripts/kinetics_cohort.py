"""Snakemake script: cohort clone kinetics, summary and product persistence."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.kinetics_steps import kinetics_cohort_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: kinetics_cohort_step(
        kinetics=sm.input.kinetics,
        persistence=sm.input.persistence,
        sheet=sm.input.sheet,
        kinetics_out=sm.output.kinetics,
        summary_out=sm.output.summary,
        persistence_out=sm.output.persistence,
        kinetics_png=sm.output.kinetics_figure,
        persistence_png=sm.output.persistence_figure,
    ),
)
