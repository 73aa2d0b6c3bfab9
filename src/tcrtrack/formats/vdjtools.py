"""VDJtools clonotype tables (``count freq cdr3nt cdr3aa v d j ...``, header optionally ``#count``) -> AIRR columns.

``cdr3nt``/``cdr3aa`` are the junction (C to F/W); out-of-frame CDR3s carry ``_`` (older files ``~``
or ``?``) and stops ``*``, which make the row non-productive. Tied genes are comma-separated already;
``.`` marks a missing gene. ``count`` is whatever the upstream tool counted (reads or UMIs); ``freq`` is
the share of the whole sample (VDJtools docs, "Clonotype tables": kept "for compatibility with cases when
the sample represents a subset of another one"), kept as truncation evidence.

Older VDJtools (and its ``Simple`` layout, ``misc/Software.groovy``/``io/parser/SimpleParser.groovy`` in
``mikessh/vdjtools``: count, frequency, CDR3 nt, CDR3 aa, V, D, J) wrote the header ``#Seq. Count
Percent N Sequence AA Sequence V segments D segment J segments``; those names are read as the modern ones.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tcrtrack.formats._common import (
    ConvertedRepertoire,
    counts_to_text,
    finish,
    parse_counts,
    productive_from_junction_aa,
    read_table,
    require,
)

NULL_VALUES = ("", ".", "NA")
OLD_HEADERS = {
    "#count": "count",
    "#Seq. Count": "count",
    "Seq. Count": "count",
    "Percent": "freq",
    "N Sequence": "cdr3nt",
    "AA Sequence": "cdr3aa",
    "V segments": "v",
    "D segment": "d",
    "D segments": "d",
    "J segments": "j",
    "#freq": "freq",
}


def convert_vdjtools(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert a VDJtools table."""
    raw = read_table(
        path,
        separator="\t",
        wanted=["count", "freq", "cdr3nt", "cdr3aa", "v", "d", "j"],
        null_values=NULL_VALUES,
        rename=OLD_HEADERS,
    )
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
    return finish(
        frame,
        fmt="vdjtools",
        locus=locus,
        species=species,
        count_source="count (VDJtools: reads or UMIs, as counted upstream)",
        notes=notes,
        frequency="freq",
        source=raw,
    )
