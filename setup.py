"""Build hook: ship the workflow inside the package, so that `pip install .` (a wheel, not a checkout) has a
working `tcrtrack run`.

The workflow's files stay where Snakemake users expect them in the repository (Snakefile, workflow/, scripts/,
config/, envs/ at the top level; `snakemake --cores 2` in a checkout). At build time they are copied, with the
same layout, into the wheel's ``tcrtrack/_workflow/``; :mod:`tcrtrack.paths` finds them there when tcrtrack is
not imported from a checkout. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (source, glob) pairs, relative to the repository; the same list is in MANIFEST.in for the sdist.
WORKFLOW_FILES = (
    ("", "Snakefile"),
    ("workflow", "**/*.smk"),
    ("workflow", "**/*.yaml"),
    ("workflow", "**/*.rst"),
    ("scripts", "*.py"),
    ("config", "config.yaml"),
    ("config", "samples.tsv"),
    ("config", "demo/**/*"),
    ("config", "profiles/**/*.yaml"),
    ("envs", "*.yaml"),
)


def workflow_files(root: Path = ROOT) -> list[Path]:
    """The workflow's files (relative to ``root``), sorted."""
    found = {
        path.relative_to(root)
        for folder, pattern in WORKFLOW_FILES
        for path in (root / folder).glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    }
    return sorted(found)


class BuildWithWorkflow(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install runs the checkout's own files
            return
        target = Path(self.build_lib) / "tcrtrack" / "_workflow"
        for relative in workflow_files():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target / relative)


setup(cmdclass={"build_py": BuildWithWorkflow})
