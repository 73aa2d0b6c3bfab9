"""A Python with only what the README's install line (`pip install -e .`) brings, built offline.

The test environment has more (pytest, hypothesis, the SLURM plugin and whatever they pull in): pygments came
in with pytest, so `snakemake --report` passed the tests and failed after the README's install (issue 13). This
module computes the closure of tcrtrack's runtime requirements (pyproject.toml's ``dependencies``, then each
distribution's own requirements with their markers and extras, as pip resolves them) from the test environment's
metadata, links just those distributions' top-level files into one folder, and makes a venv that sees that folder
and the checkout's ``src/`` (what the editable install adds). Nothing is downloaded.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(requirements: list[str]) -> dict[str, object]:
    """Distributions (canonical name -> Distribution) that pip would install for ``requirements``."""
    found: dict[str, object] = {}
    seen: set[tuple[str, str]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = _canonical(requirement.name)
        extras = sorted(requirement.extras) or [""]
        if all((name, extra) in seen for extra in extras):
            continue
        seen.update((name, extra) for extra in extras)
        try:
            dist = found.get(name) or distribution(requirement.name)
        except PackageNotFoundError:
            raise AssertionError(f"{requirement} is needed but not installed in the test environment") from None
        found[name] = dist
        for line in dist.requires or []:
            nested = Requirement(line)
            if nested.marker is None or any(nested.marker.evaluate({"extra": extra}) for extra in [*extras, ""]):
                todo.append(nested)
    return found


def build_readme_env(where: Path) -> Path:
    """The venv's python: the runtime closure of pyproject.toml's dependencies, and the checkout's src/."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    closure = runtime_closure(project["dependencies"])
    packages = where / "site-packages"
    packages.mkdir(parents=True)
    for dist in closure.values():
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (packages / top).exists():
                (packages / top).symlink_to(source)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*")) / "site-packages"
    (site / "_readme_install.pth").write_text(f"{packages}\n{ROOT / 'src'}\n")
    return venv / "bin" / "python"


@functools.cache
def readme_python() -> Path:
    """One README-install Python per test session (built on first use, removed at exit)."""
    where = Path(tempfile.mkdtemp(prefix="tcrtrack-readme-env-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    return build_readme_env(where)


def runtime_site_packages() -> Path:
    """The folder holding (links to) the runtime closure: a wheel's venv adds it instead of the test env's own."""
    return readme_python().parents[2] / "site-packages"
