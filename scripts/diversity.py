"""Snakemake script: diversity of one patient's samples at full and common depth."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import diversity_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: diversity_step(
        patient=sm.wildcards.patient,
        samples=sm.params.samples,
        clonotypes_dir=sm.input.clonotypes,
        depth_file=sm.input.depth,
        iterations=sm.params.iterations,
        seed=sm.params.seed,
        out_dir=sm.output.diversity,
    ),
)
