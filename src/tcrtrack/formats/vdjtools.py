"""VDJtools clonotype tables (``count freq cdr3nt cdr3aa v d j ...``, header optionally ``#count``) -> AIRR columns.

``cdr3nt``/``cdr3aa`` are the junction (C to F/W); out-of-frame CDR3s carry ``_`` (older files ``~``
or ``?``) and stops ``*``, which make the row non-productive. Tied genes are comma-separated already;
``.`` marks a missing gene. ``count`` is whatever the upstream tool counted (reads or UMIs).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tcrtrack.formats._common import (ConvertedRepertoire, counts_to_text, finish, parse_counts,
                                      productive_from_junction_aa, read_table, require)

NULL_VALUES = ("", ".", "NA")


def convert_vdjtools(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert a VDJtools table."""
    raw = read_table(path, separator="\t", wanted=["count", "cdr3nt", "cdr3aa", "v", "d", "j"],
                     null_values=NULL_VALUES, rename={"#count": "count"})
    require(path, raw, "vdjtools", ["count"], ["cdr3aa", "cdr3nt"], ["v"], ["j"])
    counts, rounded = parse_counts(path, raw, "count")
    notes = [f"{rounded} fractional counts rounded to whole numbers"] if rounded else []
    frame = raw.select(
        v_call=pl.col("v"),
        d_call=pl.col("d") if "d" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        j_call=pl.col("j"),
        junction=pl.col("cdr3nt").str.to_uppercase() if "cdr3nt" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        junction_aa=pl.col("cdr3aa") if "cdr3aa" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        duplicate_count=counts_to_text(counts, raw.height),
    ).with_columns(productive=productive_from_junction_aa())
    return finish(frame, fmt="vdjtools", locus=locus, species=species,
                  count_source="count (VDJtools: reads or UMIs, as counted upstream)", notes=notes)
