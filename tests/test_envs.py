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


def test_every_pip_entry_resolves_where_snakemake_creates_the_env(tmp_path):
    """Snakemake copies the env file to `.snakemake/conda/<hash>.yaml` and runs `conda env create --file` on the
    copy (snakemake/deployment/conda.py, Env.create), and conda resolves relative pip paths against that
    folder. No conda channel is reachable here: check each pip entry from the copy's folder instead. Every
    entry must be a pinned requirement or a path that exists from there (a checkout-relative `-e ..` does not)."""
    from packaging.requirements import InvalidRequirement, Requirement

    run = tmp_path / "run"
    copy = run / ".snakemake" / "conda" / "0123abcd.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text((ROOT / "envs" / "tcrtrack.yaml").read_text())
    env = yaml.safe_load(copy.read_text())
    pip = [entry for item in env["dependencies"] if isinstance(item, dict) for entry in item["pip"]]
    assert pip
    for entry in pip:
        target = entry.removeprefix("-e").strip()
        if target.startswith((".", "/", "~")) or "/" in target:
            path = (copy.parent / target).expanduser()
            assert path.is_file() or (path / "pyproject.toml").is_file() or (path / "setup.py").is_file(), (
                f"{entry}: {path.resolve()} is no package (from the env file's copy in .snakemake/conda/)"
            )
            continue
        try:
            requirement = Requirement(target)
        except InvalidRequirement as error:
            raise AssertionError(f"{entry}: neither a path nor a requirement ({error})") from None
        assert str(requirement.specifier).startswith("=="), entry


def test_scripts_import_tcrtrack_without_it_installed():
    """The conda env does not contain tcrtrack: scripts/_tcrtrack_path.py (imported first by every script)
    puts the workflow's own package on sys.path. Checked in a Python from which tcrtrack cannot be imported."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.util, pathlib, runpy\n"
        "sys.path[:] = [p for p in sys.path if not (pathlib.Path(p or '.') / 'tcrtrack').is_dir()]\n"
        "assert importlib.util.find_spec('tcrtrack') is None, 'tcrtrack still importable'\n"
        f"runpy.run_path({str(ROOT / 'scripts' / '_tcrtrack_path.py')!r})\n"
        "import tcrtrack.pipeline\n"
        "print(tcrtrack.__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT / "scripts"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(ROOT / "src" / "tcrtrack" / "__init__.py")
    for script in (ROOT / "scripts").glob("*.py"):
        if script.name != "_tcrtrack_path.py":
            first_import = next(line for line in script.read_text().splitlines() if line.startswith(("import", "from")))
            assert first_import.startswith("import _tcrtrack_path"), script.name
