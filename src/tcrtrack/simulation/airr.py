"""AIRR Rearrangement rows of one simulated library, written as byte-reproducible gzipped TSV."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["AIRR_COLUMNS", "airr_rows", "write_gzipped_tsv"]

AIRR_COLUMNS: tuple[str, ...] = (
    "sequence_id",
    "sequence",
    "rev_comp",
    "productive",
    "v_call",
    "d_call",
    "j_call",
    "sequence_alignment",
    "germline_alignment",
    "junction",
    "junction_aa",
    "v_cigar",
    "d_cigar",
    "j_cigar",
    "locus",
    "duplicate_count",
)


def airr_rows(
    clones: pl.DataFrame, counts: np.ndarray, sample: str, *, v_call_column: str = "v_call_out"
) -> pl.DataFrame:
    """AIRR Rearrangement rows of the clonotypes seen, by count desc then clone order (``v_call`` taken
    from ``v_call_column``; the benchmarks' generator reuses this)."""
    seen = np.flatnonzero(counts)
    order = seen[np.lexsort((seen, -counts[seen]))]
    rows = clones[order]
    empty = pl.lit("")
    return rows.select(
        sequence_id=pl.format(f"{sample}_{{}}", pl.int_range(1, pl.len() + 1)),
        sequence=pl.col("junction"),
        rev_comp=pl.lit("F"),
        productive=pl.col("productive"),
        v_call=pl.col(v_call_column),
        d_call=empty,
        j_call=pl.col("j_call"),
        sequence_alignment=empty,
        germline_alignment=empty,
        junction=pl.col("junction"),
        junction_aa=pl.col("junction_aa"),
        v_cigar=empty,
        d_cigar=empty,
        j_cigar=empty,
        locus=pl.col("locus"),
        duplicate_count=pl.Series(counts[order]),
    )


def write_gzipped_tsv(path: Path, frame: pl.DataFrame) -> None:
    """Write ``frame`` as gzipped TSV, byte-reproducibly (no name or mtime in header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.write_csv(separator="\t", quote_style="never")
    path.write_bytes(gzip.compress(text.encode(), compresslevel=6, mtime=0))
