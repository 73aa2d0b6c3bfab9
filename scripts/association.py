"""Snakemake script: per-patient metrics, their association with groups, survival tests, forest figure."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.association_stage import association_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: association_step(
        expansion=sm.input.expansion,
        diversity=sm.input.diversity,
        overlap=sm.input.overlap,
        kinetics=sm.input.kinetics,
        origin=sm.input.origin,
        sheet=sm.input.sheet,
        coverage=getattr(sm.input, "coverage", None),
        group_by=sm.params.group_by,
        compare=list(sm.params.compare),
        baseline_day=sm.params.baseline_day,
        n_boot=sm.params.n_boot,
        seed=sm.params.seed,
        metrics_out=sm.output.metrics,
        association_out=sm.output.association,
        survival_out=sm.output.survival,
        figure=sm.output.figure,
    ),
)
