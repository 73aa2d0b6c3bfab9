"""Antigen specificity and artefact checks for the clones that matter.

- :mod:`~tcrtrack.specificity.databases`: read VDJdb, McPAS-TCR and lab tables, normalised with tidytcells.
- :mod:`~tcrtrack.specificity.matching`: exact, exact + V, and one-mismatch + V database hits.
- :mod:`~tcrtrack.specificity.calibration`: the false-annotation rate of random OLGA junctions.
- :mod:`~tcrtrack.specificity.pgen`: generation probability with OLGA.
- :mod:`~tcrtrack.specificity.convergence`: distinct nucleotide junctions per amino-acid junction.
- :mod:`~tcrtrack.specificity.contamination`: cross-patient carry-over of nucleotide junctions.
- :mod:`~tcrtrack.specificity.groups`: TCRdist-style (CDR3, same V) specificity groups.

Modules load lazily (OLGA and tidytcells are imported only when used).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "read_database": "databases",
    "Database": "databases",
    "DatabaseFileError": "databases",
    "combine": "databases",
    "file_sha256": "databases",
    "antigen_group": "databases",
    "annotate": "matching",
    "summarise_hits": "matching",
    "antigen_counts": "matching",
    "false_annotation_rates": "calibration",
    "olga_background": "calibration",
    "compute_pgen": "pgen",
    "add_pgen": "pgen",
    "convergence": "convergence",
    "add_convergence": "convergence",
    "flag_contamination": "contamination",
    "contamination_qc": "contamination",
    "tcrdist_cdr3": "groups",
    "neighbour_pairs": "groups",
    "specificity_groups": "groups",
    "group_summary": "groups",
}

__all__ = [
    "Database",
    "DatabaseFileError",
    "add_convergence",
    "add_pgen",
    "annotate",
    "antigen_counts",
    "antigen_group",
    "combine",
    "compute_pgen",
    "contamination_qc",
    "convergence",
    "false_annotation_rates",
    "file_sha256",
    "flag_contamination",
    "group_summary",
    "neighbour_pairs",
    "olga_background",
    "read_database",
    "specificity_groups",
    "summarise_hits",
    "tcrdist_cdr3",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
