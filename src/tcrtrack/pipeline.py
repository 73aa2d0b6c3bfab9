"""The workflow's steps as functions of files: each reads its inputs, calls the pure
functions of the package, and writes its outputs atomically. Snakemake scripts and the CLI
call these; the statistics live in the modules they call."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tcrtrack.diversity import common_depth, sample_diversity
from tcrtrack.errors import InputFileError
from tcrtrack.ingest import ingest_airr
from tcrtrack.io import read_tsv, write_parquet, write_text, write_tsv
from tcrtrack.samplesheet import read_sample_sheet

log = logging.getLogger(__name__)

SHEET_COLUMNS = ("patient", "sample", "compartment", "day", "replicate")
READERS = {"airr": ingest_airr}


def ingest_step(*, repertoire: str, file_format: str, patient: str, sample: str, clonotypes_out: str,
                qc_out: str, locus: str, productive_only: bool, min_junction_aa_length: int,
                definition: str) -> None:
    """Repertoire file -> ``clonotypes_out`` (Parquet) and ``qc_out`` (one-row TSV)."""
    if file_format not in READERS:
        raise InputFileError(repertoire, f"format '{file_format}' is not supported",
                             f"use one of {', '.join(READERS)} in the sheet's 'format' column")
    result = READERS[file_format](repertoire, locus=locus, productive_only=productive_only,
                                  min_junction_aa_length=min_junction_aa_length, definition=definition)
    qc = result.qc.select(
        pl.lit(patient).alias("patient"), pl.lit(sample).alias("sample"), pl.lit(str(repertoire)).alias("file"),
        pl.lit(file_format).alias("format"), pl.all())
    write_parquet(result.clonotypes, clonotypes_out)
    write_tsv(qc, qc_out)
    log.info("%s: %d rows in, %d kept, %d clonotypes", sample, qc["input_rows"][0], qc["kept_rows"][0],
             result.clonotypes.height)


def with_sheet_metadata(table: pl.DataFrame, sheet: str | Path) -> pl.DataFrame:
    """Join the sheet's columns (compartment, day, replicate and any metadata) onto ``table`` by sample,
    ordered by patient, compartment, day, replicate."""
    samples = read_sample_sheet(sheet, check_files=False).drop("path", "format")
    joined = samples.join(table.drop("patient", strict=False), on="sample", how="inner", maintain_order="left")
    return joined.sort("patient", "compartment", "day", "replicate", "sample", maintain_order=True)


def gather_step(*, tables: Sequence[str], sheet: str, out: str) -> None:
    """Concatenate per-sample tables (TSV or Parquet) into one cohort TSV with sample metadata."""
    frames = [pl.read_parquet(p) if str(p).endswith(".parquet") else read_tsv(p) for p in tables]
    write_tsv(with_sheet_metadata(pl.concat(frames, how="diagonal_relaxed"), sheet), out)


def common_depth_step(*, qc_tables: Sequence[str], configured: int | None, out: str) -> None:
    """Write the common rarefaction depth: the configured one, else the smallest kept count."""
    totals = [int(read_tsv(p)["kept_count"][0]) for p in qc_tables]
    depth = common_depth(totals, configured=configured)
    write_text(f"{depth}\n", out)
    log.info("common depth %d (%s)", depth, "configured" if configured else f"smallest of {len(totals)} samples")


def sample_seed(seed: int, sample: str) -> int:
    """A per-sample seed: the configured seed mixed with a stable hash (CRC-32) of the sample id."""
    return (seed * 1_000_003 + zlib.crc32(sample.encode())) % 2**32


def diversity_step(*, clonotypes: str, depth_file: str, patient: str, sample: str, iterations: int, seed: int,
                   out: str) -> None:
    """Clonotype table -> diversity rows (full depth, rarefied) for one sample."""
    counts = pl.read_parquet(clonotypes, columns=["count"])["count"].to_numpy()
    depth = int(Path(depth_file).read_text().strip())
    table = sample_diversity(counts, depth=depth, n_iterations=iterations, seed=sample_seed(seed, sample))
    write_parquet(table.select(pl.lit(patient).alias("patient"), pl.lit(sample).alias("sample"), pl.all()), out)
