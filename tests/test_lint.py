"""The code style CI checks: ``ruff check``, ``ruff format --check`` and ``snakefmt --check`` with the settings in
pyproject.toml (issue 14). Each failure prints the tool's own findings and the command that fixes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The tool installed beside this Python (the test extra), else on PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' brings it")
    return str(found)


@pytest.mark.parametrize(
    ("command", "fix"),
    [
        (["ruff", "check", "."], "ruff check --fix ."),
        (["ruff", "format", "--check", "."], "ruff format ."),
        (["snakefmt", "--check", "Snakefile", "workflow"], "snakefmt Snakefile workflow"),
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style(command, fix):
    result = subprocess.run([tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed (fix: {fix}):\n{result.stdout}\n{result.stderr}"
