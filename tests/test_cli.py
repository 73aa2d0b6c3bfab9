"""The `tcrtrack` command line: help, version, one-line errors, `run` (whole cohort and one patient)
and `show`."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from readme_env import readme_python

from tcrtrack import __version__, registry
from tcrtrack.cli import main
from tcrtrack.errors import TcrtrackError
from tcrtrack.simulate import simulate_cohort

COMMANDS = ("run", "show", "simulate", "validate", "convert")
ROOT = Path(__file__).resolve().parents[1]


def tcrtrack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess (its snakemake child writes to the real stdout/stderr), in a Python with only what
    the README's install brings (tests/readme_env.py)."""
    return subprocess.run(
        [str(readme_python()), "-m", "tcrtrack.cli", *args], capture_output=True, text=True, timeout=900, cwd=cwd
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Two simulated patients; a fixed rarefaction depth, so that one patient's input does not touch the
    other's diversity (the common depth would otherwise depend on every sample)."""
    base = tmp_path_factory.mktemp("cli")
    simulate_cohort(
        base / "data",
        n_patients=2,
        n_clones=1500,
        blood_depth=5000,
        tumor_depth=3000,
        n_planted=(5, 3, 3),
        replicate_patients=(0,),
        seed=5,
        sheet=base / "samples.tsv",
    )
    (base / "run.yaml").write_text("diversity:\n  depth: 1500\n")
    return base


def test_help_and_version_everywhere():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and all(c in top.output for c in COMMANDS)
    assert runner.invoke(main, ["--version"]).output.strip() == f"tcrtrack, version {__version__}"
    for command in COMMANDS:
        assert runner.invoke(main, [command, "--help"]).exit_code == 0, command
        assert __version__ in runner.invoke(main, [command, "--version"]).output, command


def test_show_unknown_patient_is_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(main, ["show", "P99", "--outdir", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no results for patient 'P99'") and "Fix:" in lines[0]
    assert "Traceback" not in result.output
    debug = CliRunner().invoke(main, ["--debug", "show", "P99", "--outdir", str(tmp_path)])
    assert isinstance(debug.exception, TcrtrackError)  # --debug lets the traceback through


def test_a_config_file_that_is_not_yaml_is_one_line_naming_it(tmp_path):
    """validate --configfile, run --configfile and a run folder's config/config.yaml: no traceback."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("ingest:\n  locus: [TRB,\n")
    (tmp_path / "run" / "config").mkdir(parents=True)
    (tmp_path / "run" / "config" / "config.yaml").write_text("a:\n\tb: 1\n")
    sheet = ROOT / "config" / "samples.tsv"
    for args, name in (
        (["validate", str(sheet), "--configfile", str(broken)], broken),
        (["run", "-n", "--configfile", str(broken), "--outdir", str(tmp_path)], broken),
        (["run", "-n", "--outdir", str(tmp_path / "run")], tmp_path / "run" / "config" / "config.yaml"),
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {name}, line ") and "not valid YAML" in lines[0]


def test_run_refuses_unknown_patient_and_missing_sheet(cohort, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "run",
            "--samples",
            str(cohort / "samples.tsv"),
            "--configfile",
            str(cohort / "run.yaml"),
            "--outdir",
            str(tmp_path),
            "--patient",
            "P7",
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: patient 'P7' is not in {cohort / 'samples.tsv'} (patients: P01, P02). Fix: use one of those ids"
    )
    missing = runner.invoke(main, ["run", "--samples", str(tmp_path / "nope.tsv"), "--outdir", str(tmp_path)])
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
    assert "nope.tsv" in missing.output and "Traceback" not in missing.output


def test_progress_lines_name_the_patient_and_stage_of_each_finished_job():
    from tcrtrack.workflow_run import ProgressLines

    log = """localrule ingest:
    input: a.tsv
    jobid: 6
    wildcards: patient=P04
Finished jobid: 6 (Rule: ingest)
1 of 3 steps (33%) done
rule ingest_cohort:
    jobid: 2
Finished jobid: 2 (Rule: ingest_cohort)
2 of 3 steps (67%) done
"""
    progress = ProgressLines()
    messages = [m for m in map(progress.feed, log.splitlines(keepends=True)) if m]
    assert messages == ["P04: ingest done (1 of 3 steps)", "cohort: ingest_cohort done (2 of 3 steps)"]


def test_patient_dry_run_in_a_fresh_folder_plans_kinetics_and_every_registry_output(tmp_path):
    """`tcrtrack run --patient P01 -n` on the demo sheet, in an empty folder: the plan has the patient's
    kinetics job and writes every per-patient output of tcrtrack.registry for P01."""
    from tcrtrack.registry import patient_files

    done = tcrtrack(
        "run",
        "--samples",
        str(ROOT / "config" / "samples.tsv"),
        "--outdir",
        str(tmp_path / "fresh"),
        "--patient",
        "P01",
        "-n",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    assert "rule kinetics:" in plan
    planned = set(re.findall(r"output: (.*)", plan))
    planned = {f.strip() for line in planned for f in line.split(",")}
    assert set(patient_files("P01")) <= planned
    # every sample is ingested (the common rarefaction depth needs every total), nothing else of P02
    assert {f for f in planned if "P02" in f} == {"results/clonotypes/P02", "results/qc/P02.tsv"}


@pytest.mark.slow
def test_patient_dry_run_plans_only_that_patient(cohort, tmp_path):
    done = tcrtrack(
        "run",
        "--samples",
        str(cohort / "samples.tsv"),
        "--configfile",
        str(cohort / "run.yaml"),
        "--outdir",
        str(tmp_path / "fresh"),
        "--patient",
        "P01",
        "--dry-run",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plan = done.stdout + done.stderr
    for rule in ("ingest", "expansion", "overlap", "figures"):
        assert f"rule {rule}:" in plan, rule
    assert "patient=P01" in plan and "patient=P02" not in plan
    assert "cohort tables not refreshed: P02 has no results yet" in done.stderr
    assert "expansion_cohort" not in plan and "figures_cohort" not in plan


@pytest.fixture(scope="module")
def full_run(cohort) -> Path:
    workdir = cohort / "work"
    done = tcrtrack(
        "run",
        "--samples",
        str(cohort / "samples.tsv"),
        "--configfile",
        str(cohort / "run.yaml"),
        "--outdir",
        str(workdir),
        "--cores",
        "2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for patient in ("P01", "P02"):  # a live line per patient and stage
        assert re.search(rf"^tcrtrack: {patient}: ingest done \(\d+ of \d+ steps\)$", done.stderr, re.M), patient
        assert f"tcrtrack: {patient}: kinetics done" in done.stderr
    return workdir


@pytest.mark.slow
def test_show_lists_figures_tables_and_flagged_clones(full_run):
    done = tcrtrack("show", "P01", "--outdir", str(full_run))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    clones = pl.read_parquet(full_run / "results" / "patients" / "P01" / "clones.parquet")
    n_flagged, n_expanded = int(clones["flagged"].sum()), int(clones["expanded_in_blood"].sum())
    assert f"{clones.height:,} clones; {n_expanded} expanded in blood" in out and f"{n_flagged} flagged" in out
    assert ("flagged clones (strongest blood evidence first):" in out) == (n_flagged > 0)
    assert ("top expansions in blood" in out) == (n_expanded > 0)
    for junction in clones.filter(pl.col("flagged"))["junction_aa"].head(10):
        assert junction in out
    assert "response: responder" in out
    for entry in registry.select(scope="patient"):  # every table and figure, with its meaning
        if entry.kind in ("table", "figure"):
            line = next(line for line in out.splitlines() if str(full_run / entry.format("P01")[0]) in line)
            assert line.rstrip().endswith(entry.meaning), line
    assert "(not built yet)" not in out
    assert "cohort association (" in out and "by response: flagged " in out  # results/cohort/association.tsv


@pytest.mark.slow
def test_run_patient_reruns_only_that_patient_and_the_cohort_tables(cohort, full_run):
    results = full_run / "results"
    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    untouched = (results / "clonotypes" / "P02" / "P02_blood_d28_r1.parquet").read_bytes()
    target = cohort / "data" / "P02" / "P02_blood_d14_r1.tsv.gz"
    lines = gzip.decompress(target.read_bytes()).decode().splitlines()
    target.write_bytes(gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))  # drop the last row
    os.utime(target)
    done = tcrtrack(
        "run",
        "--samples",
        str(cohort / "samples.tsv"),
        "--configfile",
        str(cohort / "run.yaml"),
        "--outdir",
        str(full_run),
        "--cores",
        "2",
        "--patient",
        "P02",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}
    changed = {p.relative_to(results).as_posix() for p in after if after[p] != before.get(p)}
    assert changed, "nothing was rebuilt"
    assert not [c for c in changed if "P01" in c], sorted(changed)
    assert {
        "patients/P02/clones.parquet",
        "patients/P02/figures/expansion_scatter.png",
        "clonotypes/P02/P02_blood_d14_r1.parquet",
        "cohort/expansion_summary.tsv",
        "cohort/public_clones.tsv",
        "cohort/figures/flagged_by_group.png",
    } <= changed
    # the patient is the unit of work: its other samples are re-ingested in the same job, to the same bytes
    assert (results / "clonotypes" / "P02" / "P02_blood_d28_r1.parquet").read_bytes() == untouched
    again = tcrtrack(
        "run",
        "--samples",
        str(cohort / "samples.tsv"),
        "--configfile",
        str(cohort / "run.yaml"),
        "--outdir",
        str(full_run),
        "--patient",
        "P02",
        "--dry-run",
    )
    assert "Nothing to be done" in again.stdout + again.stderr


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent (outside the project's CI)")
def test_convert_writes_a_valid_airr_file_from_an_immunoseq_export(tmp_path):
    from tcrtrack.cli import main

    out = tmp_path / "day0.airr.tsv"
    result = CliRunner().invoke(
        main, ["convert", "--from", "immunoseq_v2", str(SHARED_DATA / "lymphoseq" / "TRB_Unsorted_0.tsv"), str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "immunoseq_v2" in result.output and "1000 rows" in result.output
    import airr

    assert airr.validate_rearrangement(str(out))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent (outside the project's CI)")
def test_convert_warns_about_a_truncated_export(tmp_path):
    """LymphoSeq's day 83 file keeps 0.49 of its sample (SOURCE.md); day 32 holds all of it (920 rows)."""
    warned = CliRunner().invoke(
        main, ["convert", str(SHARED_DATA / "lymphoseq" / "TRB_Unsorted_83.tsv"), str(tmp_path / "d83.tsv")]
    )
    assert warned.exit_code == 0, warned.output
    assert warned.stderr.startswith(
        "warning: frequencyCount (%) implies a whole-sample depth of 484664, of which the "
        "file keeps 0.49: the file is truncated"
    )
    assert "absence from a truncated file is not evidence of absence" in warned.stderr
    complete = CliRunner().invoke(
        main, ["convert", str(SHARED_DATA / "lymphoseq" / "TRB_Unsorted_32.tsv"), str(tmp_path / "d32.tsv")]
    )
    assert complete.exit_code == 0 and "warning" not in complete.stderr


def test_convert_a_vdjtools_table_to_airr(tmp_path):
    """README: `tcrtrack convert --from FORMAT IN OUT.tsv` writes an AIRR TSV (a small VDJtools table here, so
    the test needs no shared data); the converted file then passes `tcrtrack validate`."""
    import airr

    source = tmp_path / "sample.vdjtools.txt"
    source.write_text(
        "count\tfreq\tcdr3nt\tcdr3aa\tv\td\tj\n"
        "10\t0.5\tTGTGCCAGCAGCCAAGATTTTAGAACACTAGACATGCAAGAGACCCAGTACTTC\tCASSQDFRTLDMQETQYF\tTRBV4-2\t.\tTRBJ2-5\n"
        "6\t0.3\tTGTGCCAGGATATGGCTAGGAGAGACCCAGTACTTC\tCARIWLGETQYF\tTRBV6-5\t.\tTRBJ2-5\n"
        "4\t0.2\tTGTGCCAGCAGTTTAGGGACAGGGGGCTACACCTTC\tCASSLGTGGYTF\tTRBV7-9\tTRBD1\tTRBJ1-2\n"
    )
    out = tmp_path / "sample.airr.tsv"
    result = CliRunner().invoke(main, ["convert", "--from", "vdjtools", str(source), str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{source} (vdjtools) -> {out}: 3 rows")
    assert airr.validate_rearrangement(str(out))
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"patient\tsample\tcompartment\tday\tpath\nP\tP_a\tblood\t0\t{out.name}\n")
    checked = CliRunner().invoke(main, ["validate", str(sheet)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[1].split("\t")[:4] == ["P_a", "airr", "3", "3"]


def test_validate_convert_and_simulate_as_the_readme_shows_them(tmp_path):
    """README 'Command line', each in a Python with only the README install's packages: `tcrtrack validate` on the
    demo sheet, `tcrtrack convert` of a VDJtools table, and `tcrtrack simulate` (with its progress line)."""
    valid = tcrtrack("validate", str(ROOT / "config" / "samples.tsv"))
    assert valid.returncode == 0, valid.stderr[-2000:]
    assert (
        valid.stdout.strip()
        .splitlines()[-1]
        .endswith("35 samples of 4 patients, every file read in full (locus TRB): no problem")
    )
    source = tmp_path / "s.vdjtools.txt"
    source.write_text(
        "count\tfreq\tcdr3nt\tcdr3aa\tv\td\tj\n"
        "6\t0.6\tTGTGCCAGGATATGGCTAGGAGAGACCCAGTACTTC\tCARIWLGETQYF\tTRBV6-5\t.\tTRBJ2-5\n"
        "4\t0.4\tTGTGCCAGCAGTTTAGGGACAGGGGGCTACACCTTC\tCASSLGTGGYTF\tTRBV7-9\tTRBD1\tTRBJ1-2\n"
    )
    converted = tcrtrack("convert", "--from", "vdjtools", str(source), str(tmp_path / "s.airr.tsv"))
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert converted.stdout.startswith(f"{source} (vdjtools) -> {tmp_path / 's.airr.tsv'}: 2 rows")
    simulated = tcrtrack(
        "simulate",
        "--out",
        str(tmp_path / "sim"),
        "--patients",
        "1",
        "--clones",
        "1000",
        "--blood-depth",
        "500",
        "--tumor-depth",
        "300",
        "--seed",
        "2",
    )
    assert simulated.returncode == 0, simulated.stderr[-2000:]
    assert re.search(r"simulating cohort (\d+)/\1\n", simulated.stderr), simulated.stderr[-500:]
    assert (tmp_path / "sim" / "samples.tsv").is_file() and simulated.stdout.startswith("wrote ")
