"""Where the workflow files are: the source checkout's top level (Snakefile, workflow/, scripts/, config/,
envs/), or, in an installed wheel, the copy of them shipped inside the package (``tcrtrack/_workflow/``,
written by setup.py at build time)."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def workflow_root() -> Path:
    """The folder holding the Snakefile: ``$TCRTRACK_SNAKEFILE``'s folder, else the checkout this package
    was imported from (``src/tcrtrack`` -> the repository), else the installed copy."""
    configured = os.environ.get("TCRTRACK_SNAKEFILE")
    if configured:
        return Path(configured).resolve().parent
    checkout = _PACKAGE.parents[1]
    if (checkout / "Snakefile").is_file() and (checkout / "workflow" / "rules").is_dir():
        return checkout
    return _PACKAGE / "_workflow"


def snakefile() -> Path:
    configured = os.environ.get("TCRTRACK_SNAKEFILE")
    return Path(configured).resolve() if configured else workflow_root() / "Snakefile"
