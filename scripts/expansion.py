"""Snakemake script of rule expansion: one patient's blood expansion, tumour accumulation and flagged clones."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.pipeline import expansion_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: expansion_step(
        patient=sm.wildcards.patient,
        clonotypes=sm.params.clonotypes,
        sheet=sm.input.sheet,
        settings=sm.params.settings,
        clones_out=sm.output.clones,
        flagged_out=sm.output.flagged,
        noise_out=sm.output.noise,
    ),
)
