"""End to end: one cohort whose sheet mixes AIRR, immunoSEQ v2/v3, MiXCR, VDJtools and 10x files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO = ROOT / "config" / "demo" / "P01"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent (outside the project's CI)"),
]


def demo_as(fmt: str, source: Path, out: Path) -> Path:
    """Rewrite a demo AIRR file as a MiXCR (v4 header) or VDJtools export, productive rows only."""
    airr = pl.read_csv(source, separator="\t").filter(pl.col("productive") == "T")
    if fmt == "mixcr":
        table = airr.select(
            pl.int_range(pl.len()).alias("cloneId"),
            pl.col("duplicate_count").alias("readCount"),
            (pl.col("v_call") + "(1200)").alias("allVHitsWithScore"),
            pl.lit("").alias("allDHitsWithScore"),
            (pl.col("j_call") + "(300)").alias("allJHitsWithScore"),
            pl.col("junction").alias("nSeqCDR3"),
            pl.col("junction_aa").alias("aaSeqCDR3"),
        )
    else:
        table = airr.select(
            pl.col("duplicate_count").alias("count"),
            (pl.col("duplicate_count") / pl.col("duplicate_count").sum()).alias("freq"),
            pl.col("junction").alias("cdr3nt"),
            pl.col("junction_aa").alias("cdr3aa"),
            pl.col("v_call").str.replace(r"\*.*", "").alias("v"),
            pl.lit(".").alias("d"),
            pl.col("j_call").str.replace(r"\*.*", "").alias("j"),
        )
    table.write_csv(out, separator="\t")
    return out


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("mixed")
    rows = [
        ("LS", "LS_blood_d0", "blood", 0, SHARED / "lymphoseq" / "TRB_Unsorted_0.tsv", "auto"),
        ("LS", "LS_blood_d32", "blood", 32, SHARED / "lymphoseq" / "TRB_Unsorted_32.tsv", "immunoseq_v2"),
        ("LS", "LS_tumor_d-7", "tumor", -7, SHARED / "immunarch" / "immunoseq_1.txt", "auto"),
        (
            "LS",
            "LS_tumor_d28",
            "tumor",
            28,
            SHARED / "scirpy-10x" / "vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz",
            "auto",
        ),
        ("DM", "DM_blood_d0", "blood", 0, DEMO / "P01_blood_d0_r1.tsv.gz", "airr"),
        (
            "DM",
            "DM_blood_d14",
            "blood",
            14,
            demo_as("mixcr", DEMO / "P01_blood_d14_r1.tsv.gz", work / "clones.tsv"),
            "auto",
        ),
        (
            "DM",
            "DM_blood_d28",
            "blood",
            28,
            demo_as("vdjtools", DEMO / "P01_blood_d28_r1.tsv.gz", work / "vdjtools.txt"),
            "auto",
        ),
    ]
    sheet = pl.DataFrame(
        [(*row[:4], str(row[4]), row[5]) for row in rows],
        orient="row",
        schema=["patient", "sample", "compartment", "day", "path", "format"],
    )
    sheet.write_csv(work / "samples.tsv", separator="\t")
    (work / "run.yaml").write_text(f"samples: {work / 'samples.tsv'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", "--configfile", "run.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return work


def test_every_format_is_read_and_reported_in_qc(mixed_run):
    qc = pl.read_csv(mixed_run / "results" / "cohort" / "qc.tsv", separator="\t", null_values="NA")
    formats = dict(qc.select("sample", "format").iter_rows())
    assert formats == {
        "LS_blood_d0": "immunoseq_v2",
        "LS_blood_d32": "immunoseq_v2",
        "LS_tumor_d-7": "immunoseq_v3",
        "LS_tumor_d28": "10x_contigs",
        "DM_blood_d0": "airr",
        "DM_blood_d14": "mixcr",
        "DM_blood_d28": "vdjtools",
    }
    sources = dict(qc.select("sample", "count_source").iter_rows())
    assert sources["LS_blood_d0"].startswith("templates")
    assert sources["LS_blood_d32"].startswith("reads")  # estimatedNumberGenomes is 0 on every row there
    assert sources["LS_tumor_d28"].startswith("cells")
    assert qc.filter(pl.col("format") != "airr")["gene_mapping"].str.contains("tidytcells").all()
    # independent totals of the real immunoSEQ v2 file: productive ('In') rows and their templates
    raw = pl.read_csv(
        SHARED / "lymphoseq" / "TRB_Unsorted_0.tsv", separator="\t", null_values="null", infer_schema_length=None
    )
    productive = raw.filter(pl.col("sequenceStatus") == "In")
    day0 = qc.filter(pl.col("sample") == "LS_blood_d0").row(0, named=True)
    assert day0["input_rows"] == raw.height
    assert day0["kept_rows"] == productive.height
    assert day0["kept_count"] == productive["count (templates/reads)"].sum()


def test_converted_demo_files_give_the_same_clonotypes_as_their_airr_source(mixed_run):
    from tcrtrack.ingest import ingest_airr

    for sample, source in (("DM_blood_d14", "P01_blood_d14_r1"), ("DM_blood_d28", "P01_blood_d28_r1")):
        converted = pl.read_parquet(mixed_run / "results" / "clonotypes" / "DM" / f"{sample}.parquet")
        original = ingest_airr(DEMO / f"{source}.tsv.gz").clonotypes
        assert converted.select("clone_id", "count").equals(original.select("clone_id", "count"))


def test_patients_of_mixed_formats_get_calls(mixed_run):
    summary = pl.read_csv(mixed_run / "results" / "cohort" / "expansion_summary.tsv", separator="\t", null_values="NA")
    assert set(summary["patient"]) == {"LS", "DM"}
    clones = pl.read_parquet(mixed_run / "results" / "patients" / "LS" / "clones.parquet")
    assert "blood_d32_qvalue" in clones.columns and "tumor_d28_qvalue" in clones.columns
