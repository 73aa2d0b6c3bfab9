"""Snakemake script: where one patient's post-treatment tumour clones come from."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.clone_origin import clone_origin_step
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: clone_origin_step(
        patient=sm.wildcards.patient,
        clones=sm.input.clones,
        sheet=sm.input.sheet,
        out=sm.output.origin,
        expectation=sm.params.expectation,
        include_product=sm.params.include_product,
        blood_until_biopsy=sm.params.blood_until_biopsy,
    ),
)
