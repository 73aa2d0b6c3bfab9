"""Provenance of a results folder: tcrtrack version, configuration and input checksums."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tcrtrack import __version__
from tcrtrack.io import write_text


def sha256(path: Path | str, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance_record(
    *,
    config: Mapping[str, Any],
    sheet: Path | str,
    inputs: Sequence[Path | str],
    databases: Sequence[Mapping[str, str]] = (),
) -> dict:
    """What produced a results folder; deliberately without timestamps, so that the same inputs and
    config give the same file (reruns stay byte-identical).

    ``databases``: the annotation databases (``{"name", "path", "format"}``: the path as configured, the
    resolved file, the format), recorded with their SHA-256 under ``annotation_databases``."""
    from importlib.metadata import version

    return {
        "tcrtrack_version": __version__,
        "python": platform.python_version(),
        "packages": {name: version(name) for name in ("snakemake", "polars", "scikit-bio", "scipy", "numpy")},
        "config": dict(config),
        "sample_sheet": {"path": str(sheet), "sha256": sha256(sheet)},
        "inputs": {str(path): sha256(path) for path in sorted(map(str, inputs))},
        "annotation_databases": [
            {"name": db["name"], "path": str(db["path"]), "format": db["format"], "sha256": sha256(db["path"])}
            for db in databases
        ],
    }


def write_provenance(
    *,
    config: Mapping[str, Any],
    sheet: Path | str,
    inputs: Sequence[Path | str],
    out: Path | str,
    databases: Sequence[Mapping[str, str]] = (),
) -> None:
    """Write :func:`provenance_record` as indented, key-sorted JSON."""
    record = provenance_record(config=config, sheet=sheet, inputs=inputs, databases=databases)
    write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", out)
