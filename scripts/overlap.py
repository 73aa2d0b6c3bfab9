"""Snakemake script: pairwise clone overlap of one patient's samples."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import overlap_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: overlap_step(
        patient=sm.wildcards.patient, clonotypes=sm.params.clonotypes, sheet=sm.input.sheet, out=sm.output.overlap
    ),
)
