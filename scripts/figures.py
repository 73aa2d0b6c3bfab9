"""Snakemake script of rule figures: one patient's figures (PNG + PDF)."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import figures_step
from tcrtrack.plots import PATIENT_FIGURES
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: figures_step(
        patient=sm.wildcards.patient,
        clones=sm.input.clones,
        noise=sm.input.noise,
        overlap=sm.input.overlap,
        diversity=sm.params.diversity,
        sheet=sm.input.sheet,
        settings=sm.params.settings,
        figures={name: getattr(sm.output, name) for name in PATIENT_FIGURES},
    ),
)
