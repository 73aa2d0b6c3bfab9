"""Snakemake script: one patient's gene usage, spectratype, divergence and usage comparisons."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.gene_usage_stage import gene_usage_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: gene_usage_step(
        patient=sm.wildcards.patient,
        clonotypes=sm.params.clonotypes,
        clones=sm.input.clones,
        sheet=sm.input.sheet,
        ambiguous=sm.params.ambiguous,
        baseline_day=sm.params.baseline_day,
        usage_out=sm.output.usage,
        spectratype_out=sm.output.spectratype,
        divergence_out=sm.output.divergence,
        comparisons_out=sm.output.comparisons,
        qc_out=sm.output.qc,
        heatmap_png=sm.output.heatmap,
        spectratype_png=sm.output.spectratype_figure,
    ),
)
