"""Snakemake script: the cohort V-gene usage table, call QC and heatmap."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.gene_usage_stage import gene_usage_cohort_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: gene_usage_cohort_step(
        usage=list(sm.input.usage),
        qc=list(sm.input.qc),
        sheet=sm.input.sheet,
        out=sm.output.usage,
        qc_out=sm.output.qc,
        heatmap_png=sm.output.heatmap,
        top_n=sm.params.top_n,
    ),
)
