"""Make the tcrtrack package importable in a script job whose Python does not have it (``--sdm conda``).

Snakemake puts this folder on ``sys.path`` for every ``script:`` of the workflow, and each script imports
this module first. When ``tcrtrack`` cannot be imported (the conda environment of envs/tcrtrack.yaml, which
has the dependencies but not tcrtrack itself), the package is taken from where these scripts live: the
checkout's ``src/`` (scripts/../src), or, for an installed wheel (tcrtrack/_workflow/scripts), the folder
holding the installed package. It is appended, so the environment's own packages keep precedence.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("tcrtrack") is None:
    _here = Path(__file__).resolve().parent
    for _candidate in (_here.parent / "src", _here.parents[2]):
        if (_candidate / "tcrtrack" / "__init__.py").is_file():
            sys.path.append(str(_candidate))
            break
