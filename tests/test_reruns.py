"""Reruns: byte-identical results, kill-and-resume, and targeted rebuilds after an input changes."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcrtrack.simulate import simulate_cohort

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--cores",
            "2",
            "--configfile",
            "run.yaml",
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        **kwargs,
    )


def new_workdir(base: Path, name: str, sheet: Path) -> Path:
    workdir = base / name
    workdir.mkdir()
    (workdir / "run.yaml").write_text(f"samples: {sheet}\ndiversity:\n  depth: 1500\n")
    return workdir


def checksums(results: Path) -> dict[str, str]:
    return {
        str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("reruns")
    simulate_cohort(
        base / "data",
        n_patients=2,
        n_clones=1500,
        blood_depth=5000,
        tumor_depth=3000,
        n_planted=(5, 3, 3),
        replicate_patients=(0,),
        seed=3,
        sheet=base / "samples.tsv",
    )
    return base


@pytest.fixture(scope="module")
def reference(cohort) -> dict[str, str]:
    workdir = new_workdir(cohort, "reference", cohort / "samples.tsv")
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return checksums(workdir / "results")


def test_two_runs_give_byte_identical_results(cohort, reference):
    workdir = new_workdir(cohort, "again", cohort / "samples.tsv")
    assert snakemake(workdir).returncode == 0
    again = checksums(workdir / "results")
    assert again.keys() == reference.keys()
    assert {k for k in again if again[k] != reference[k]} == set()
    record = json.loads((workdir / "results" / "provenance.json").read_text())
    assert record["tcrtrack_version"] and len(record["inputs"]) == 15
    assert record["config"]["diversity"]["depth"] == 1500


def test_killed_run_resumes_to_identical_results(cohort, reference):
    workdir = new_workdir(cohort, "killed", cohort / "samples.tsv")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--cores",
        "2",
        "--configfile",
        "run.yaml",
    ]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clonotypes = workdir / "results" / "clonotypes"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(clonotypes.rglob("*.parquet"))) < 3:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    assert not (workdir / "results" / "cohort" / "expansion_summary.tsv").exists()
    resumed = snakemake(workdir, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checksums(workdir / "results") == reference
    assert not [p for p in (workdir / "results").rglob("*.tmp")]


def test_changing_one_patients_file_rebuilds_that_patient_and_the_cohort_tables(cohort, reference):
    data = cohort / "changed_data"
    shutil.copytree(cohort / "data", data)
    sheet = cohort / "changed_samples.tsv"
    sheet.write_text((cohort / "samples.tsv").read_text().replace("data/", "changed_data/"))
    workdir = new_workdir(cohort, "changed", sheet)
    assert snakemake(workdir).returncode == 0
    target = data / "P02" / "P02_blood_d14_r1.tsv.gz"
    lines = gzip.decompress(target.read_bytes()).decode().splitlines()
    target.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))  # drop the last row
    os.utime(target)
    plan = snakemake(workdir, "--dry-run")
    assert plan.returncode == 0
    text = plan.stdout + plan.stderr
    assert "rule ingest:" in text and "patient=P02" in text
    assert "patient=P01" not in text
