"""Snakemake script: every sample's Hill numbers at equal coverage (one target per compartment)."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.diversity_curves import diversity_coverage_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: diversity_coverage_step(
        clonotypes=sm.params.clonotypes,
        sheet=sm.input.sheet,
        n_boot=sm.params.n_boot,
        seed=sm.params.seed,
        out=sm.output.coverage,
    ),
)
