"""The workflow on a real SLURM cluster (one node, this machine) through snakemake-executor-plugin-slurm,
with the shipped profile config/profiles/slurm, gives the same results as a local run.

Needs Debian's slurmctld, slurmd, slurm-client and munge packages and the plugin (the `slurm` extra of
pyproject.toml). When `CI` is set and they are missing, the test installs them (apt-get as root, pip);
otherwise, or when installation is impossible, it is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import polars as pl
import pytest
import yaml
from slurm_cluster import PARTITION, SlurmCluster, install_packages, missing_tools

ROOT = Path(__file__).resolve().parents[1]
SHEET = ROOT / "config" / "samples.tsv"
PATIENTS = ("P02", "P04")  # one with baseline replicates, one without: ~15 samples
PROFILE = ROOT / "config" / "profiles" / "slurm" / "config.yaml"
SLURM_TIMEOUT = 600  # seconds for the SLURM run (timeout -k)

pytestmark = pytest.mark.slow


def _plugin_requirement() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return next(r for r in extras["slurm"] if r.startswith("snakemake-executor-plugin-slurm"))


def _ensure_requirements() -> None:
    in_ci = bool(os.environ.get("CI"))
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        if not in_ci:
            pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", _plugin_requirement()],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot install the SLURM executor plugin: {done.stderr.strip()[-300:]}")
    missing = missing_tools()
    if missing:
        if not in_ci:
            pytest.skip(
                f"SLURM/munge not installed ({', '.join(missing)} missing): apt-get install "
                "slurmctld slurmd slurm-client munge, or set CI=1 to let the test install them as root"
            )
        why = install_packages()
        if why or missing_tools():
            pytest.skip(f"cannot install SLURM: {why or 'still missing ' + ', '.join(missing_tools())}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _ensure_requirements()
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def _n_samples() -> int:
    return pl.read_csv(SHEET, separator="\t").filter(pl.col("patient").is_in(PATIENTS)).height


def _cohort(folder: Path) -> Path:
    sheet = (
        pl.read_csv(SHEET, separator="\t")
        .filter(pl.col("patient").is_in(PATIENTS))
        .with_columns(path=pl.lit(str(SHEET.parent) + "/") + pl.col("path"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "samples.tsv").write_text(sheet.write_csv(separator="\t"))
    (folder / "run.yaml").write_text(f"samples: {folder / 'samples.tsv'}\n")
    return folder


def _test_profile(folder: Path) -> Path:
    """The shipped SLURM profile with this cluster's partition, no account, squeue status checks and
    short polling intervals (a one-node test cluster answers at once)."""
    profile = yaml.safe_load(PROFILE.read_text())
    resources = dict(profile["default-resources"])
    resources["slurm_partition"] = PARTITION
    resources.pop("slurm_account")
    profile.update(
        {
            "default-resources": resources,
            "slurm-no-account": True,
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 2,
            "slurm-keep-successful-logs": True,
            "latency-wait": 5,
            "retries": 0,
            "jobs": 4,
            "cores": os.cpu_count() or 1,  # a group job must fit on the one node
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def _snakemake(workdir: Path, *args: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    command = [
        "timeout",
        "-k",
        "15",
        str(timeout),
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        "run.yaml",
        *args,
    ]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout + 60)


def _job_env(cluster: SlurmCluster) -> dict[str, str]:
    """SLURM jobs run `python -m snakemake` with the submitting environment (sbatch --export=ALL):
    put this venv's bin first on PATH so the job finds the same Python, snakemake and tcrtrack."""
    env = cluster.env
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    local, on_slurm = _cohort(base / "local"), _cohort(base / "slurm")
    profile = _test_profile(base / "profile")
    # the local reference run goes on while the SLURM run mostly waits for status checks
    local_run = subprocess.Popen(
        [
            "timeout",
            "-k",
            "15",
            "600",
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            "run.yaml",
            "--workflow-profile",
            str(ROOT / "config" / "profiles" / "default"),
            "--cores",
            "2",
        ],
        cwd=local,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    start = time.monotonic()
    done = _snakemake(
        on_slurm, "--workflow-profile", str(profile), "--verbose", env=_job_env(cluster), timeout=SLURM_TIMEOUT
    )
    seconds = time.monotonic() - start
    _, local_err = local_run.communicate(timeout=660)
    assert local_run.returncode == 0, local_err[-3000:]
    logs = "\n".join(
        p.read_text(errors="replace")[-1500:]
        for p in sorted((on_slurm / ".snakemake" / "slurm_logs").rglob("*.log"))[-4:]
    )
    assert done.returncode == 0, (
        f"SLURM run failed (exit {done.returncode}; 124 = timeout)\n"
        f"{done.stderr[-5000:]}\n--- job logs\n{logs}\n--- cluster\n{cluster.logs()}"
    )
    return {"local": local, "slurm": on_slurm, "stderr": done.stderr, "seconds": seconds}


def test_jobs_ran_through_sbatch_in_groups(runs, cluster):
    stderr = runs["stderr"]
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)", stderr))
    assert submitted, stderr[-3000:]
    logs = list(submitted.values())
    # each patient's ingest and diversity is one job; independent jobs of a group share a SLURM job, up to
    # the profile's group-components (a report component: overlap -> figures, or kinetics, of one patient)
    sizes = {
        name: int(n)
        for name, n in (item.split("=") for item in yaml.safe_load(PROFILE.read_text())["group-components"])
    }
    components = {"ingest": len(PATIENTS), "diversity": len(PATIENTS), "report": 2 * len(PATIENTS)}
    for group, n in components.items():
        assert sum(f"/group_{group}_" in log for log in logs) == -(-n // sizes[group]), (group, logs)
    assert not any(
        f"/rule_{rule}/" in log for rule in ("ingest", "diversity", "overlap", "figures", "kinetics") for log in logs
    ), logs
    # local rules ran in snakemake itself, the patients' calls as jobs of their own
    assert not any(
        f"/rule_{rule}" in log for rule in ("common_depth", "ingest_cohort", "diversity_cohort") for log in logs
    ), logs
    assert sum("/rule_expansion/" in log for log in logs) == len(PATIENTS), logs
    listed = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T"],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = dict(line.split("|") for line in listed.split())
    assert all(states.get(job) == "COMPLETED" for job in submitted), states


def test_slurm_results_equal_a_local_run(runs):
    local, on_slurm = runs["local"] / "results", runs["slurm"] / "results"
    for name in ("qc.tsv", "diversity.tsv", "flagged_clones.tsv", "expansion_summary.tsv"):
        assert (on_slurm / "cohort" / name).read_text() == (local / "cohort" / name).read_text(), name
    tables = sorted(p.relative_to(local) for p in local.rglob("*.parquet"))
    assert tables == sorted(p.relative_to(on_slurm) for p in on_slurm.rglob("*.parquet"))
    for kind in ("clonotypes", "diversity"):  # one table per sample
        assert len([rel for rel in tables if rel.parts[0] == kind]) == _n_samples()
    assert len([rel for rel in tables if rel.name == "clones.parquet"]) == len(PATIENTS)
    for rel in tables:
        assert pl.read_parquet(on_slurm / rel).equals(pl.read_parquet(local / rel)), rel
    for patient in PATIENTS:
        for name in ("flagged_clones.tsv", "noise_model.tsv"):
            rel = Path("patients") / patient / name
            assert (on_slurm / rel).read_text() == (local / rel).read_text(), rel


def test_every_job_left_a_benchmark_record(runs):
    records = sorted((runs["slurm"] / "logs" / "benchmarks").rglob("*.tsv"))
    assert len(records) >= 6 * len(PATIENTS)  # ingest, diversity, calls, overlap, figures, kinetics
    for record in records:
        table = pl.read_csv(record, separator="\t", null_values=["-", "NA"])
        assert {"s", "max_rss"} <= set(table.columns), record
