"""End to end: real `snakemake` runs on the bundled demo cohort, deployed from another folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import polars as pl
import pytest
from readme_env import readme_python

from tcrtrack.ingest import DROP_REASONS

ROOT = Path(__file__).resolve().parents[1]
# the README install's Python (tests/readme_env.py): only tcrtrack's runtime dependencies, no test extras
SNAKEMAKE = ["{python}", "-m", "snakemake"]
SHEET = ROOT / "config" / "samples.tsv"

pytestmark = pytest.mark.slow


def snakemake_command() -> list[str]:
    return [part.format(python=readme_python()) for part in SNAKEMAKE]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*snakemake_command(), "-s", str(ROOT / "Snakefile"), "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The demo cohort, run from a folder that is not the repository (deployed use)."""
    workdir = tmp_path_factory.mktemp("deployed")
    (workdir / "my.yaml").write_text(f"samples: {SHEET}\n")
    done = snakemake(workdir, "--configfile", "my.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def sheet() -> pl.DataFrame:
    return pl.read_csv(SHEET, separator="\t")


def independent_kept_count(path: Path) -> tuple[int, int]:
    """Rows and templates of productive TRB rows with a clean junction of >= 5 aa, by plain polars."""
    raw = pl.read_csv(path, separator="\t", infer_schema=False)
    kept = raw.filter(
        (pl.col("productive") == "T")
        & (pl.col("locus") == "TRB")
        & pl.col("v_call").str.starts_with("TRB")
        & pl.col("j_call").str.starts_with("TRB")
        & ~pl.col("junction_aa").str.contains(r"[*_~]")
        & (pl.col("junction_aa").str.len_chars() >= 5)
        & (pl.col("duplicate_count").cast(pl.Int64) > 0)
    )
    return kept.height, int(kept["duplicate_count"].cast(pl.Int64).sum())


def test_qc_accounts_for_every_row_and_matches_an_independent_count(demo_run, sheet):
    qc = pl.read_csv(demo_run / "results" / "cohort" / "qc.tsv", separator="\t")
    assert sorted(qc["sample"]) == sorted(sheet["sample"])
    for record in qc.iter_rows(named=True):
        for unit in ("rows", "count"):
            dropped = sum(record[f"{reason}_{unit}"] for reason in DROP_REASONS)
            assert record[f"input_{unit}"] == record[f"kept_{unit}"] + dropped, record["sample"]
        path = ROOT / "config" / sheet.filter(pl.col("sample") == record["sample"])["path"][0]
        assert (record["kept_rows"], record["kept_count"]) == independent_kept_count(path)
        clonotypes = pl.read_parquet(
            demo_run / "results" / "clonotypes" / record["patient"] / f"{record['sample']}.parquet"
        )
        assert clonotypes["count"].sum() == record["kept_count"]
        assert clonotypes.height == record["clonotypes"]
    assert qc["non_productive_rows"].sum() > 0 and qc["wrong_locus_rows"].sum() > 0
    assert "response" in qc.columns


def test_diversity_has_full_and_rarefied_rows_at_each_compartments_smallest_depth(demo_run, sheet):
    diversity = pl.read_csv(demo_run / "results" / "cohort" / "diversity.tsv", separator="\t", null_values="NA")
    qc = pl.read_csv(demo_run / "results" / "cohort" / "qc.tsv", separator="\t")
    assert diversity.height == 2 * sheet.height
    rarefied = diversity.filter(pl.col("depth_type") == "rarefied")
    # diversity.depth_by: compartment (default): blood, tumour and product each at their own smallest total
    smallest = dict(qc.group_by("compartment").agg(pl.col("kept_count").min()).iter_rows())
    depths = rarefied.group_by("compartment").agg(pl.col("depth").unique())
    assert {c: sorted(d) for c, d in depths.iter_rows()} == {c: [m] for c, m in smallest.items()}
    assert len(set(smallest.values())) > 1  # the demo's biopsies are shallower than its blood
    full = diversity.filter(pl.col("depth_type") == "full").join(
        qc.select("sample", "clonotypes", "kept_count"), on="sample"
    )
    assert (full["richness"] == full["clonotypes"]).all()
    assert (full["total_count"] == full["kept_count"]).all()
    assert (rarefied["richness"] <= full.sort("sample")["richness"].max()).all()
    assert rarefied["shannon_nats_subsampling_sd"].is_not_null().all()


def test_patient_tables_and_flagged_clones(demo_run, sheet):
    results = demo_run / "results"
    for patient in sheet["patient"].unique():
        clones = pl.read_parquet(results / "patients" / patient / "clones.parquet")
        for sample in sheet.filter(pl.col("patient") == patient)["sample"]:
            kept = pl.read_parquet(results / "clonotypes" / patient / f"{sample}.parquet")["count"].sum()
            assert clones[f"count_{sample}"].sum() == kept
        flagged = clones.filter(pl.col("flagged"))
        tumour_evidence = pl.any_horizontal(pl.col(c) for c in clones.columns if c.endswith("_flag_significant"))
        assert flagged["expanded_in_blood"].all()
        assert flagged.select(tumour_evidence).to_series().all()
    cohort = pl.read_csv(results / "cohort" / "flagged_clones.tsv", separator="\t", null_values="NA")
    for column in (
        "patient",
        "junction_aa",
        "v_gene",
        "j_gene",
        "new_in_blood",
        "peak_day",
        "blood_log2fc",
        "blood_qvalue",
        "tumor_log2fc",
        "tumor_qvalue",
        "baseline_count",
    ):
        assert column in cohort.columns
    summary = pl.read_csv(results / "cohort" / "expansion_summary.tsv", separator="\t", null_values="NA")
    assert summary.height == sheet["patient"].n_unique()
    assert summary["flagged"].sum() == cohort.height
    assert "response" in summary.columns
    # the demo has planted clones that expand in blood and accumulate in the tumour: most calls are real
    truth = pl.read_csv(ROOT / "config" / "demo" / "truth.tsv", separator="\t")
    hits = cohort.join(truth, on=["patient", "junction_aa", "v_gene", "j_gene"], how="left")
    assert cohort.height > 0
    assert hits["category"].is_in(["new_expanded_tumor"]).mean() >= 0.5


def test_a_second_run_has_nothing_to_do(demo_run):
    dry = snakemake(demo_run, "--configfile", "my.yaml", "--dry-run")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr


def _planned_resources(text: str, rule: str) -> dict[str, dict[str, int]]:
    """patient -> {mem_mb, runtime} of every planned job of ``rule`` in a dry-run's output."""
    planned = {}
    for block in re.split(r"\n\s*rule ", text)[1:]:  # jobs of a group are indented
        if block.startswith(f"{rule}:"):
            patient = re.search(r"wildcards: patient=(\S+)", block).group(1)
            planned[patient] = {key: int(re.search(rf"\b{key}=(\d+)", block).group(1)) for key in ("mem_mb", "runtime")}
    return planned


def _megabytes(folder: Path) -> list[float]:
    return [path.stat().st_size / 1e6 for path in folder.iterdir()]


def test_job_resources_scale_with_the_patients_data(demo_run, sheet):
    """mem_mb is a function of the input size (workflow/rules/resources.smk; per-patient folders count as
    their files): the expansion job holds all the patient's tables at once, the ingest job one file at a time."""
    dry = snakemake(demo_run, "--configfile", "my.yaml", "--dry-run", "--forcerun", "expansion", "ingest")
    assert dry.returncode == 0, dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    calls, ingest = _planned_resources(text, "expansion"), _planned_resources(text, "ingest")
    assert set(calls) == set(ingest) == set(sheet["patient"])
    for patient in calls:
        inputs = sum(_megabytes(demo_run / "results" / "clonotypes" / patient)) + SHEET.stat().st_size / 1e6
        assert calls[patient]["mem_mb"] == int(max(600 + 12.0 * inputs, 500))
        files = [ROOT / "config" / p for p in sheet.filter(pl.col("patient") == patient)["path"]]
        largest = max(path.stat().st_size for path in files) / 1e6 * 4.5  # gzipped: ~4.5x as text
        assert ingest[patient]["mem_mb"] == int(max(400 + 8.0 * largest, 500))
    sizes = {p: sum(_megabytes(demo_run / "results" / "clonotypes" / p)) for p in calls}
    order = sorted(calls, key=sizes.get)
    assert [calls[p]["mem_mb"] for p in order] == sorted(calls[p]["mem_mb"] for p in order)


def test_bad_sample_sheet_stops_with_one_line(tmp_path):
    bad = tmp_path / "samples.tsv"
    bad.write_text(SHEET.read_text().replace("\ttumor\t", "\ttumour\t", 1).replace("\tdemo/", f"\t{ROOT}/config/demo/"))
    (tmp_path / "my.yaml").write_text(f"samples: {bad}\n")
    done = snakemake(tmp_path, "--configfile", "my.yaml", "--dry-run")
    assert done.returncode != 0
    assert "column 'compartment' is 'tumour'. Fix: use one of blood, tumor, product" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_config_value_is_refused(tmp_path):
    (tmp_path / "my.yaml").write_text(f"samples: {SHEET}\nexpansion:\n  model: poisson\n")
    done = snakemake(tmp_path, "--configfile", "my.yaml", "--dry-run")
    assert done.returncode != 0
    assert "config key 'expansion.model' is 'poisson'" in done.stderr
    assert "Fix: use one of overdispersed, betabinomial, fisher" in done.stderr


def test_lint_is_clean():
    done = subprocess.run([*snakemake_command(), "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations" in done.stdout + done.stderr


def test_readme_quick_start_plans_the_demo_in_the_checkout():
    """README quick start: `snakemake --cores 2` in the checkout (as a dry run: the deployed demo run above
    does the real work); every rule of the workflow is planned, or everything is already up to date."""
    done = subprocess.run(
        [*snakemake_command(), "--cores", "2", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    assert "rule kinetics_cohort:" in plan or "Nothing to be done" in plan
