"""The conda environment (envs/tcrtrack.yaml) pins the same versions as pyproject.toml.

No conda channel is reachable from CI, so the conda file cannot be solved there; this test
at least keeps the two declarations of the dependency set from drifting apart.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pinned(requirement: str) -> tuple[str, str]:
    name, version = re.split(r"==?", requirement.strip(), maxsplit=1)
    return name.strip().lower(), version.strip()


def test_conda_env_pins_the_same_versions_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python_deps = dict(pinned(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "envs" / "tcrtrack.yaml").read_text())
    conda_deps: dict[str, str] = {}
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            conda_deps.update(pinned(r) for r in entry["pip"] if "=" in r)
        elif "=" in entry:
            conda_deps.update([pinned(entry)])
    assert conda_deps.pop("python") == project["requires-python"].lstrip(">=")
    assert conda_deps == python_deps


def test_the_report_extra_of_snakemake_is_a_dependency():
    """`snakemake --report` needs Snakemake's `reports` extra (pygments), which `pip install -e .` does not
    bring by itself: every requirement of that extra must be among tcrtrack's own dependencies."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    extra = [Requirement(r) for r in requires("snakemake") or []]
    needed = {r.name.lower() for r in extra if r.marker and r.marker.evaluate({"extra": "reports"})}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert needed and needed <= declared, needed - declared
