"""The specificity stage end to end: a real `snakemake` run on a two-patient copy of the demo cohort with a
VDJdb-slim-format database written here (not committed data), then `snakemake --report`.

The database (18 rows) holds the junctions planted in P01 as new, blood-expanded, tumour-accumulating clones
(config/demo/truth.tsv), labelled CMV with their V genes; one-mismatch variants and a trimmed CDR3 of P02's
planted clones (EBV, influenza); a tumour-antigen record; and a mouse and a TRA record that the reader drops.
One P02 blood file is copied with a carried-over P01 nucleotide junction (count 1) added, for the
contamination check. Only the specificity outputs (and what they need) are built, to keep the run short.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tcrtrack import registry
from tcrtrack.io import read_tsv

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PATIENTS = ("P01", "P02")
SLIM_HEADER = (
    "gene",
    "cdr3",
    "species",
    "antigen.epitope",
    "antigen.gene",
    "antigen.species",
    "complex.id",
    "v.segm",
    "j.segm",
    "v.end",
    "j.start",
    "mhc.a",
    "mhc.b",
    "mhc.class",
    "reference.id",
    "vdjdb.score",
)
CARRIED_INTO = "P02_blood_d7_r1"

pytestmark = pytest.mark.slow


def _one_mismatch(junction: str) -> str:
    """The junction with its middle residue changed (a Hamming-1 variant)."""
    middle = len(junction) // 2
    return junction[:middle] + ("G" if junction[middle] != "G" else "A") + junction[middle + 1 :]


def write_vdjdb_slim(path: Path, truth: pl.DataFrame) -> dict[str, list[str]]:
    """Write the fixture database (module docstring); returns the planted junctions by role."""
    planted = truth.filter(pl.col("category") == "new_expanded_tumor")
    p01 = planted.filter(pl.col("patient") == "P01").sort("junction_aa")
    p02 = planted.filter(pl.col("patient") == "P02").sort("junction_aa")
    rows = []

    def add(cdr3, v, j, epitope, gene, species, *, locus="TRB", host="HomoSapiens", score=2):
        rows.append(
            {
                "gene": locus,
                "cdr3": cdr3,
                "species": host,
                "antigen.epitope": epitope,
                "antigen.gene": gene,
                "antigen.species": species,
                "complex.id": str(len(rows) + 1),
                "v.segm": f"{v}*01",
                "j.segm": f"{j}*01",
                "v.end": "",
                "j.start": "",
                "mhc.a": "HLA-A*02:01",
                "mhc.b": "B2M",
                "mhc.class": "MHCI",
                "reference.id": f"PMID:{2000 + len(rows)}",
                "vdjdb.score": str(score),
            }
        )

    for junction, v, j in p01.select("junction_aa", "v_gene", "j_gene").head(12).iter_rows():
        add(junction, v, j, "NLVPMVATV", "pp65", "CMV")
    mismatched = p02.head(2)
    for junction, v, j in mismatched.select("junction_aa", "v_gene", "j_gene").iter_rows():
        add(_one_mismatch(junction), v, j, "GLCTLVAML", "BMLF1", "EBV")
    trimmed = p02.row(2, named=True)
    add(trimmed["junction_aa"][1:-1], trimmed["v_gene"], trimmed["j_gene"], "GILGFVFTL", "M", "InfluenzaA")
    add("CASSLGGRDTEAFF", "TRBV5-1", "TRBJ1-1", "ELAGIGILTV", "MLANA", "HomoSapiens", score=1)
    add(p01["junction_aa"][0], "TRBV13-2", "TRBJ2-4", "SSIEFARL", "gB", "HSV-1", host="MusMusculus")
    add("CAVNFGGGKLIF", "TRAV12-2", "TRAJ10", "GILGFVFTL", "M", "InfluenzaA", locus="TRA")
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SLIM_HEADER, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {
        "cmv": p01["junction_aa"].head(12).to_list(),
        "ebv_1mm": mismatched["junction_aa"].to_list(),
        "flu_trimmed": [trimmed["junction_aa"]],
    }


def copy_with_carry_over(source: Path, target: Path, donor_row: dict[str, str]) -> None:
    """A copy of an AIRR .tsv.gz with one more row: ``donor_row`` (another patient's rearrangement), count 1."""
    with gzip.open(source, "rt") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        fields, rows = reader.fieldnames, list(reader)
    extra = dict(rows[0])
    extra.update({k: v for k, v in donor_row.items() if k in extra})
    extra["sequence_id"] = "carried_over_1"
    extra["duplicate_count"] = "1"
    with gzip.open(target, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows([*rows, extra])


def _largest_row(path: Path) -> dict[str, str]:
    with gzip.open(path, "rt") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["productive"] == "T" and r["locus"] == "TRB"]
    return max(rows, key=lambda r: int(r["duplicate_count"]))


@pytest.fixture(scope="module")
def annotated_run(tmp_path_factory) -> tuple[Path, dict[str, list[str]], Path]:
    base = tmp_path_factory.mktemp("specificity")
    sheet = pl.read_csv(ROOT / "config" / "samples.tsv", separator="\t").filter(pl.col("patient").is_in(PATIENTS))
    data = base / "data"
    data.mkdir()
    donor = _largest_row(ROOT / "config" / sheet.filter(pl.col("sample") == "P01_tumor_d56_r1")["path"][0])
    paths = []
    for sample, path in sheet.select("sample", "path").iter_rows():
        if sample == CARRIED_INTO:
            copy_with_carry_over(ROOT / "config" / path, data / Path(path).name, donor)
            paths.append(str(data / Path(path).name))
        else:
            paths.append(str(ROOT / "config" / path))
    sheet.with_columns(path=pl.Series(paths)).write_csv(data / "samples.tsv", separator="\t")
    truth = pl.read_csv(ROOT / "config" / "demo" / "truth.tsv", separator="\t")
    planted = write_vdjdb_slim(data / "vdjdb.slim.txt", truth)
    (base / "run.yaml").write_text(f"samples: {data / 'samples.tsv'}\n")
    # --config points annotation.databases at the file, relative to the sample sheet's folder (as sample paths)
    database = ["--config", 'annotation={"databases": [{"path": "vdjdb.slim.txt", "format": "vdjdb"}]}']
    targets = [
        f
        for o in registry.OUTPUTS
        if o.stage == "specificity" or o.rule == "provenance"
        for f in (o.format() if o.scope == "cohort" else [x for p in PATIENTS for x in o.format(p)])
    ]
    work = base / "work"
    work.mkdir()
    common = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", str(base / "run.yaml"), *database]
    done = subprocess.run([*common, "--cores", "2", *targets], cwd=work, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = subprocess.run(
        [*common, "--report", "results/report.html", *targets], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert report.returncode == 0, report.stderr[-3000:]
    (work / "report.log").write_text(report.stdout + report.stderr)
    return work, planted, data / "vdjdb.slim.txt"


def test_hits_reach_the_annotation_and_the_flagged_table(annotated_run):
    work, planted, _ = annotated_run
    results = work / "results"
    hits = read_tsv(results / "patients" / "P01" / "annotation.tsv")
    assert {
        "mode",
        "match",
        "epitope",
        "antigen_gene",
        "antigen_species",
        "mhc_a",
        "score",
        "reference",
        "database",
    } <= set(hits.columns)
    cmv = hits.filter(pl.col("junction_aa").is_in(planted["cmv"]))
    assert cmv.height > 0 and set(cmv["antigen_species"]) == {"CMV"}
    assert set(cmv["mode"]) == {"exact", "exact_v", "one_mismatch"}
    assert (cmv.filter(pl.col("mode") == "exact_v")["match"] == "exact_v").all()
    assert set(hits["database"]) == {"vdjdb.slim.txt"}
    assert "SSIEFARL" not in hits["epitope"].to_list()  # the mouse record is dropped
    spec = read_tsv(results / "patients" / "P01" / "specificity.tsv")
    flagged_spec = spec.filter(pl.col("flagged"))
    assert flagged_spec.height > 0 and flagged_spec["pgen"].is_not_null().all()
    assert spec.filter(~pl.col("flagged"))["pgen"].is_null().all()
    assert (spec["convergence"].drop_nulls() >= 1).all()
    cohort = read_tsv(results / "cohort" / "flagged_clones.tsv")
    annotated = read_tsv(results / "cohort" / "flagged_clones_annotated.tsv")
    assert annotated.columns[: len(cohort.columns)] == cohort.columns and annotated.height == cohort.height
    for column in (
        "known_specificity",
        "viral_bystander",
        "specificity_group",
        "pgen",
        "convergence",
        "possible_contamination",
        "contamination_source",
    ):
        assert column in annotated.columns
    p01 = annotated.filter((pl.col("patient") == "P01") & pl.col("junction_aa").is_in(planted["cmv"]))
    assert p01.height > 0
    assert p01["known_specificity"].str.starts_with("CMV:pp65:NLVPMVATV").all() and p01["viral_bystander"].all()
    # P02's one-mismatch and trimmed-CDR3 records find P02's planted clones that are in the annotated sets
    p02 = read_tsv(results / "patients" / "P02" / "annotation.tsv")
    p02_spec = read_tsv(results / "patients" / "P02" / "specificity.tsv")
    for junction in planted["ebv_1mm"]:
        if junction in p02_spec["junction_aa"].to_list():
            found = p02.filter(pl.col("junction_aa") == junction)
            assert set(found["match"]) == {"one_mismatch"} and set(found["antigen_species"]) == {"EBV"}
    for junction in planted["flu_trimmed"]:
        if junction in p02_spec["junction_aa"].to_list():
            assert p02.filter((pl.col("junction_aa") == junction) & (pl.col("match") == "exact_v")).height > 0
    summary = read_tsv(results / "cohort" / "annotation_summary.tsv")
    row = summary.filter(pl.col("patient") == "P01").row(0, named=True)
    assert row["databases"] == 1 and row["flagged_viral"] == p01.height
    assert 0 < row["share_flagged_viral"] <= 1 and 0 < row["share_tumor_templates_viral"] <= 1
    calibration = read_tsv(results / "patients" / "P01" / "annotation_calibration.tsv")
    assert (
        calibration.height
        == 3
        * pl.read_csv(work.parent / "data" / "samples.tsv", separator="\t").filter(pl.col("patient") == "P01").height
    )
    assert (calibration.filter(pl.col("mode") != "exact")["false_annotation_rate"] < 0.001).all()


def test_carry_over_is_counted_in_contamination_qc(annotated_run):
    work, _, _ = annotated_run
    qc = read_tsv(work / "results" / "cohort" / "contamination_qc.tsv")
    into = qc.filter(pl.col("sample") == CARRIED_INTO).row(0, named=True)
    assert into["contamination_clones"] >= 1 and "P01_" in into["contamination_sources"]
    assert qc.filter(pl.col("patient") == "P01")["contamination_clones"].sum() == 0


def test_provenance_has_the_database_sha256(annotated_run):
    work, _, database = annotated_run
    record = json.loads((work / "results" / "provenance.json").read_text())
    [entry] = record["annotation_databases"]
    assert entry["format"] == "vdjdb" and entry["name"] == "vdjdb.slim.txt"
    assert entry["sha256"] == hashlib.sha256(database.read_bytes()).hexdigest()


def test_groups_table_figure_and_report(annotated_run):
    work, _, _ = annotated_run
    cohort = work / "results" / "cohort"
    groups = read_tsv(cohort / "specificity_groups.tsv")
    for column in ("specificity_group", "members_per_patient", "v_genes", "motif", "known_specificity", "report"):
        assert column in groups.columns
    assert (cohort / "figures" / "specificity_groups.png").stat().st_size > 10_000
    assert not (cohort / "figures" / "specificity_groups.pdf").exists()  # PDFs on request (report.pdf)
    log = (work / "report.log").read_text()
    assert "(ERROR/" not in log and "(WARNING/" not in log, log[-2000:]
    html = (work / "results" / "report.html").read_text()
    for entry in registry.OUTPUTS:
        if entry.stage == "specificity":
            assert entry.format("P01")[0] in html, entry.path


def test_a_missing_database_is_one_config_line(tmp_path):
    (tmp_path / "run.yaml").write_text(
        f"samples: {ROOT / 'config' / 'samples.tsv'}\nannotation:\n  databases:\n"
        "    - {path: no_such_vdjdb.txt, format: vdjdb}\n"
    )
    done = subprocess.run(
        [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", "run.yaml", "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "config key 'annotation.databases.0.path' is 'no_such_vdjdb.txt'" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"samples: {ROOT / 'config' / 'samples.tsv'}\nannotation:\n  databases:\n    - {{path: x.txt, format: iedb}}\n"
    )
    done = subprocess.run(
        [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--configfile", "bad.yaml", "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "config key 'annotation.databases.0.format' is 'iedb'" in done.stderr


def test_show_lists_the_annotated_clones(annotated_run):
    work, _, _ = annotated_run
    done = subprocess.run(
        [sys.executable, "-m", "tcrtrack.cli", "show", "P01", "--outdir", str(work)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("annotated clones", 1)[1].split("  tables:", 1)[0]
    assert "CMV:pp65:NLVPMVATV" in section and "flagged" in section
