"""`--sdm conda` as Snakemake runs it, with a stand-in `conda` (no conda channel is reachable here).

Snakemake (snakemake/deployment/conda.py) asks `conda info --json`, `conda --version` and the channel priority,
copies envs/tcrtrack.yaml to `.snakemake/conda/<hash>.yaml`, runs
`conda env create --quiet --no-default-packages --file "<copy>" --prefix "<hash dir>"` and then each job as
`source <conda>/bin/activate '<hash dir>'; python <script>`. The stand-in records those commands and does what
conda would with the file: it refuses an unpinned package, resolves each pip entry the way conda's pip installer
does (from the copy's folder: a `-e ..` there points into .snakemake/, not at the checkout) and checks pinned pip
requirements against the versions tcrtrack was tested with; the environment it creates is a Python that has the
dependencies but not tcrtrack (a .pth naming the test environment's site-packages, whose own .pth files, among
them the editable tcrtrack's, are not read). Real jobs of the demo then run in it.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

FAKE_CONDA = r'''#!{python}
"""Stand-in for conda: the commands Snakemake runs, logged to {log}."""
import json, os, subprocess, sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

BASE, LOG, SITE = {base!r}, {log!r}, {site!r}
args = sys.argv[1:]
with open(LOG, "a") as log:
    log.write(json.dumps(args) + "\n")
if args == ["info", "--json"]:
    print(json.dumps({{"conda_prefix": BASE, "platform": "linux-64", "envs_dirs": [BASE + "/envs"]}}))
elif args == ["--version"]:
    print("conda 24.11.3")
elif args[:2] == ["config", "--get"]:
    print(json.dumps({{"get": {{"channel_priority": "strict"}}, "rc_path": BASE + "/.condarc"}}))
elif args[:2] == ["env", "create"]:
    env_file = Path(args[args.index("--file") + 1])
    prefix = Path(args[args.index("--prefix") + 1])
    spec = yaml.safe_load(env_file.read_text())
    pip_entries = []
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            pip_entries += entry["pip"]
        elif entry != "pip" and "=" not in entry:
            sys.exit(f"conda stand-in: {{entry}} is not pinned")
    # conda's pip installer writes the entries to a requirements file next to the env file and runs pip there
    workdir = env_file.resolve().parent
    for entry in pip_entries:
        target = entry.removeprefix("-e").strip()
        if target.startswith((".", "/", "~")) or "/" in target:
            path = (workdir / target).expanduser().resolve()
            if not (path.is_file() or (path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
                sys.exit(f"Pip failed: ERROR: {{entry}} (from {{workdir}}: {{path}}) does not appear to be a "
                         "Python project: neither 'setup.py' nor 'pyproject.toml' found.")
            continue
        name, _, pinned = target.partition("==")
        if not pinned:
            sys.exit(f"conda stand-in: pip entry {{entry}} is not pinned")
        try:
            installed = version(name)
        except PackageNotFoundError:
            sys.exit(f"conda stand-in: {{name}} is not in the test environment")
        if installed != pinned:
            sys.exit(f"conda stand-in: {{name}}=={{pinned}} but the tests run {{installed}}")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    packages = next((prefix / "lib").glob("python3*")) / "site-packages"
    (packages / "_conda_stand_in.pth").write_text(SITE + "\n")
    # the test environment's editable tcrtrack metadata stays out of sight (conda's env has no tcrtrack at all)
    (packages / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n"
        "_find = m.distribution\n"
        "def _distribution(name):\n"
        "    if name == 'tcrtrack':\n"
        "        raise m.PackageNotFoundError(name)\n"
        "    return _find(name)\n"
        "m.distribution = _distribution\n")
elif args[:1] == ["clean"]:
    pass
else:
    sys.exit(f"conda stand-in: unexpected command {{args}}")
'''

ACTIVATE = 'export CONDA_PREFIX="$1"; export PATH="$1/bin:$PATH"\n'


def test_sdm_conda_creates_the_env_from_its_copy_and_runs_jobs_without_tcrtrack_installed(tmp_path):
    base, run = tmp_path / "conda", tmp_path / "run"
    (base / "bin").mkdir(parents=True)
    run.mkdir()
    log = base / "commands.log"
    site_packages = "\n".join(site.getsitepackages())
    conda = base / "bin" / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable, base=str(base), log=str(log), site=site_packages))
    conda.chmod(0o755)
    (base / "bin" / "activate").write_text(ACTIVATE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TCRTRACK_SNAKEFILE")}
    env["PATH"] = f"{base / 'bin'}{os.pathsep}{env['PATH']}"
    targets = ["results/provenance.json", "results/qc/P01.tsv"]
    done = subprocess.run(
        [sys.executable, "-m", "tcrtrack.cli", "run", "--cores", "1", "--", *targets, "--sdm", "conda"],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    create = [c for c in commands if c[:2] == ["env", "create"]]
    assert len(create) == 1, commands
    copy = Path(create[0][create[0].index("--file") + 1])
    prefix = Path(create[0][create[0].index("--prefix") + 1])
    # the file conda reads is Snakemake's copy, in the run folder's .snakemake/conda/, not envs/tcrtrack.yaml
    assert copy.parent == run / ".snakemake" / "conda" and copy.suffix == ".yaml"
    assert copy.read_text() == (ROOT / "envs" / "tcrtrack.yaml").read_text()
    assert prefix == copy.with_suffix("")
    # the env really lacks tcrtrack, and the jobs ran in it
    lacks = subprocess.run([str(prefix / "bin" / "python"), "-c", "import tcrtrack"], capture_output=True, env=env)
    assert lacks.returncode != 0
    assert (run / "results" / "qc" / "P01.tsv").is_file()
    provenance = json.loads((run / "results" / "provenance.json").read_text())
    assert provenance["tcrtrack_version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_a_checkout_relative_pip_path_fails_where_snakemake_creates_the_env(tmp_path):
    """The stand-in is not lenient: the old `-e ..` entry is refused, as conda's pip would refuse it."""
    base, run = tmp_path / "conda", tmp_path / "run"
    (base / "bin").mkdir(parents=True)
    copy = run / ".snakemake" / "conda" / "0123abcd.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text((ROOT / "envs" / "tcrtrack.yaml").read_text().replace("  - pip:\n", "  - pip:\n      - -e ..\n"))
    conda = base / "bin" / "conda"
    conda.write_text(FAKE_CONDA.format(python=sys.executable, base=str(base), log=str(base / "log"), site=""))
    conda.chmod(0o755)
    done = subprocess.run(
        [
            str(conda),
            "env",
            "create",
            "--quiet",
            "--no-default-packages",
            "--file",
            str(copy),
            "--prefix",
            str(copy.with_suffix("")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "does not appear to be a Python project" in done.stderr
    assert str(run / ".snakemake") in done.stderr
