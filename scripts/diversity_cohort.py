"""Snakemake script: per-sample diversity -> results/cohort/diversity.tsv."""
from tcrtrack.pipeline import gather_step
from tcrtrack.scripting import run_step

run_step(snakemake, lambda sm: gather_step(  # noqa: F821
    tables=sm.params.tables, sheet=sm.input.sheet, out=sm.output.diversity))
