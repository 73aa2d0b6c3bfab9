"""Snakemake script: diversity of one sample at full and common depth."""
from tcrtrack.pipeline import diversity_step
from tcrtrack.scripting import run_step

run_step(snakemake, lambda sm: diversity_step(  # noqa: F821
    clonotypes=sm.input.clonotypes, depth_file=sm.input.depth, patient=sm.wildcards.patient,
    sample=sm.wildcards.sample, iterations=sm.params.iterations, seed=sm.params.seed,
    out=sm.output.diversity))
