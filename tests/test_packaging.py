"""`pip install .` (a wheel, not an editable checkout) gives a working `tcrtrack run`: the wheel carries the
workflow (setup.py copies Snakefile, workflow/, scripts/, config/ and envs/ into tcrtrack/_workflow/)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from readme_env import runtime_site_packages

from tcrtrack import registry

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from this checkout, installed into a fresh venv whose other packages are tcrtrack's runtime
    dependencies taken from the test's own environment (tests/readme_env.py: no test extras; nothing is
    downloaded); returns its bin/."""
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(base)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(base.glob("tcrtrack-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "Snakefile",
        "workflow/rules/common.smk",
        "workflow/schemas/samples.schema.yaml",
        "workflow/report/workflow.rst",
        "scripts/ingest.py",
        "scripts/_tcrtrack_path.py",
        "config/config.yaml",
        "config/samples.tsv",
        "envs/tcrtrack.yaml",
    ):
        assert f"tcrtrack/_workflow/{needed}" in names, needed
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    packages = next((venv / "lib").glob("python3*")) / "site-packages"
    (packages / "_test_environment.pth").write_text(f"{runtime_site_packages()}\n")
    # the test environment's pip installs into the venv (which has no pip: pip is no runtime dependency)
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return venv / "bin"


def clean_env() -> dict[str, str]:
    """The environment without what would make the checkout's package win (PYTHONPATH, TCRTRACK_SNAKEFILE)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TCRTRACK_SNAKEFILE")}


def test_the_installed_package_runs_the_demo_from_an_empty_folder(installed, tmp_path):
    where = subprocess.run(
        [str(installed / "python"), "-c", "import tcrtrack; print(tcrtrack.__file__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(installed.parent))  # the wheel's copy, not the checkout
    done = subprocess.run(
        [str(installed / "tcrtrack"), "run", "-n"],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    assert "running the bundled demo cohort" in done.stderr
    assert f"-s {installed.parent}" in done.stderr and "tcrtrack/_workflow/Snakefile" in done.stderr
    for rule in {o.rule for o in registry.OUTPUTS}:
        assert f"rule {rule}:" in plan, rule
    assert "patient=P04" in plan
    # a real job: a script of the installed workflow imports the installed package
    real = subprocess.run(
        [str(installed / "tcrtrack"), "run", "--cores", "1", "--", "results/provenance.json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    assert (tmp_path / "results" / "provenance.json").is_file()
    # README: `snakemake -s $(python -c 'import tcrtrack.paths as p; print(p.snakefile())') --configfile my.yaml`
    # runs that copy deployed
    path = subprocess.run(
        [str(installed / "python"), "-c", "import tcrtrack.paths as p; print(p.snakefile())"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert path.startswith(str(installed.parent)) and path.endswith("tcrtrack/_workflow/Snakefile")
    (tmp_path / "my.yaml").write_text(f"samples: {Path(path).parent / 'config' / 'samples.tsv'}\n")
    deployed = subprocess.run(
        [str(installed / "python"), "-m", "snakemake", "-s", path, "--configfile", "my.yaml", "--cores", "1", "-n"],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]


def test_tcrtrack_snakefile_overrides_the_installed_workflow(installed, tmp_path):
    env = {**clean_env(), "TCRTRACK_SNAKEFILE": str(ROOT / "Snakefile")}
    done = subprocess.run(
        [str(installed / "tcrtrack"), "run", "-n"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        f"-s {ROOT / 'Snakefile'} " in done.stderr and f"demo cohort ({ROOT / 'config' / 'samples.tsv'})" in done.stderr
    )
