"""Snakemake script: one patient's antigen annotation, clone specificity (Pgen, convergence) and calibration."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.scripting import run_step
from tcrtrack.specificity.steps import specificity_step

run_step(
    snakemake,
    lambda sm: specificity_step(
        patient=sm.wildcards.patient,
        clones=sm.input.clones,
        clonotypes=sm.params.clonotypes,
        sheet=sm.input.sheet,
        databases=sm.params.databases,
        settings=sm.params.settings,
        annotation_out=sm.output.annotation,
        specificity_out=sm.output.specificity,
        calibration_out=sm.output.calibration,
    ),
)
