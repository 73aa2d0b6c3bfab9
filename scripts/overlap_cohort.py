"""Snakemake script: cohort overlap table and public clones."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import overlap_cohort_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: overlap_cohort_step(
        overlaps=sm.input.overlaps,
        clones=sm.input.clones,
        overlap_out=sm.output.overlap,
        public_out=sm.output.public,
        min_patients=sm.params.min_patients,
    ),
)
