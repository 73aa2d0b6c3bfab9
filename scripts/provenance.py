"""Snakemake script: results/provenance.json (version, config, input checksums)."""

import _tcrtrack_path  # noqa: F401 (tcrtrack importable in a conda env: see the module)

from tcrtrack.provenance import write_provenance
from tcrtrack.scripting import run_step

run_step(
    snakemake,
    lambda sm: write_provenance(
        config=sm.config,
        sheet=sm.input.sheet,
        inputs=sm.input.repertoires,
        out=sm.output.provenance,
        databases=sm.params.databases,
    ),
)
