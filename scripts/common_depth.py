"""Snakemake script: the rarefaction depth of every sample (common per compartment, or per cohort)."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import common_depth_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: common_depth_step(
        qc_tables=sm.input.qc,
        sheet=sm.input.sheet,
        configured=sm.params.configured,
        by_compartment=sm.params.by_compartment,
        out=sm.output.depth,
    ),
)
