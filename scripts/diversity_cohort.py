"""Snakemake script: per-sample diversity -> results/cohort/diversity.tsv."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import gather_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: gather_step(tables=sm.params.tables, sheet=sm.input.sheet, out=sm.output.diversity),
)
