"""Snakemake script: one patient's clone kinetics and product persistence."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.kinetics_steps import kinetics_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: kinetics_step(
        patient=sm.wildcards.patient,
        clones=sm.input.clones,
        sheet=sm.input.sheet,
        settings=sm.params.settings,
        baseline_day=sm.params.baseline_day,
        kinetics_out=sm.output.kinetics,
        persistence_out=sm.output.persistence,
        kinetics_png=sm.output.kinetics_figure,
        persistence_png=sm.output.persistence_figure,
    ),
)
