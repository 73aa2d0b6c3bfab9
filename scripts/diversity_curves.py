"""Snakemake script: one patient's rarefaction/extrapolation curves and their figure."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.diversity_curves import diversity_curves_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: diversity_curves_step(
        patient=sm.wildcards.patient,
        clonotypes=sm.params.clonotypes,
        sheet=sm.input.sheet,
        knots=sm.params.knots,
        n_boot=sm.params.n_boot,
        seed=sm.params.seed,
        out=sm.output.curves,
        figure=sm.output.figure,
    ),
)
