"""Snakemake script: one repertoire file -> clonotype table + QC row."""
from tcrtrack.pipeline import ingest_step
from tcrtrack.scripting import run_step

run_step(snakemake, lambda sm: ingest_step(  # noqa: F821 (snakemake is injected)
    repertoire=sm.input.repertoire, file_format=sm.params.format, patient=sm.wildcards.patient,
    sample=sm.wildcards.sample, clonotypes_out=sm.output.clonotypes, qc_out=sm.output.qc,
    locus=sm.params.locus, productive_only=sm.params.productive_only,
    min_junction_aa_length=sm.params.min_junction_aa_length, definition=sm.params.definition,
    species=sm.params.species))
