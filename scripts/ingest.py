"""Snakemake script: one patient's repertoire files -> clonotype tables + QC table."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import ingest_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: ingest_step(  # noqa: F821 (snakemake is injected)
        patient=sm.wildcards.patient,
        samples=sm.params.samples,
        repertoires=sm.input.repertoires,
        formats=sm.params.formats,
        clonotypes_dir=sm.output.clonotypes,
        qc_out=sm.output.qc,
        locus=sm.params.locus,
        productive_only=sm.params.productive_only,
        min_junction_aa_length=sm.params.min_junction_aa_length,
        definition=sm.params.definition,
        species=sm.params.species,
    ),
)
