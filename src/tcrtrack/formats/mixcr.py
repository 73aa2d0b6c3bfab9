"""MiXCR ``exportClones`` tables (v2 spaced headers, v3 ``cloneCount``, v4 ``readCount``) -> AIRR columns.

MiXCR's ``CDR3`` gene feature runs from the conserved Cys to the Phe/Trp *inclusive* (MiXCR docs,
gene features: "Cys from V region and Phe/Trp from J region included"), so ``aaSeqCDR3``/``nSeqCDR3``
are the AIRR ``junction_aa``/``junction``. ``*`` (stop) and ``_`` (incomplete codon: out of frame) in
``aaSeqCDR3`` make a clone non-productive. ``allVHitsWithScore`` lists every hit above threshold,
best first, as ``TRBV12-3*00(1520.3)``: hits sharing the top score are ties (kept comma-separated),
the rest are dropped. ``*00`` is MiXCR's placeholder allele and is removed before standardising.

Headers as VDJtools' ``MiXcrParser.groovy`` (``mikessh/vdjtools``) matches them: MiXCR 1.x/2.0
``Clone count``, ``Clone fraction``, ``All V hits``, ``N. Seq. CDR3``, ``AA. Seq. CDR3`` and MiXCR 2.1+/3
``cloneCount``, ``cloneFraction``, ``allVHitsWithScore``, ``nSeqCDR3``, ``aaSeqCDR3``; any other column
(``targetSequences``, ``targetQualities``, alignments, ``minQual...``, ``refPoints``) is ignored, and
optional ones (D/J hits, ``cloneId``, fractions) may be absent. ``cloneFraction``/``readFraction`` (or
``uniqueMoleculeFraction`` with UMI counts) is the share of the whole sample, kept as truncation evidence.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tcrtrack.errors import InputFileError
from tcrtrack.formats._common import (
    ConvertedRepertoire,
    any_positive,
    counts_to_text,
    finish,
    parse_counts,
    productive_from_junction_aa,
    read_table,
    require,
)

NULL_VALUES = ("", "NA", "region_not_covered")

OLD_HEADERS = {  # MiXCR 2.x human-readable export headers
    "Clone ID": "cloneId",
    "Clone count": "cloneCount",
    "Clone fraction": "cloneFraction",
    "All V hits": "allVHitsWithScore",
    "All D hits": "allDHitsWithScore",
    "All J hits": "allJHitsWithScore",
    "Best V hit": "bestVHit",
    "Best D hit": "bestDHit",
    "Best J hit": "bestJHit",
    "N. Seq. CDR3": "nSeqCDR3",
    "AA. Seq. CDR3": "aaSeqCDR3",
}
UMI_COUNTS = ("uniqueMoleculeCount", "uniqueTagCountMolecule", "uniqueTagCountUMI")
UMI_FRACTIONS = ("uniqueMoleculeFraction", "uniqueTagFractionMolecule", "uniqueTagFractionUMI")
READ_FRACTIONS = ("readFraction", "cloneFraction")
READ_COUNTS = ("readCount", "cloneCount")
_HIT_COLUMNS = ("all{}HitsWithScore", "all{}Hits", "best{}Hit", "best{}Gene")


def _hit_column(frame: pl.DataFrame, segment: str) -> str | None:
    for pattern in _HIT_COLUMNS:
        if pattern.format(segment) in frame.columns:
            return pattern.format(segment)
    return None


def _top_hits(frame: pl.DataFrame, segment: str) -> pl.Expr:
    """Hits sharing the best score (``...WithScore``), else the first hit listed."""
    column = _hit_column(frame, segment)
    if column is None:
        return pl.lit(None, dtype=pl.Utf8)
    hits = pl.col(column).str.split(",")
    if column.endswith("WithScore"):
        score = pl.element().str.extract(r"\(([^)]*)\)\s*$", 1).cast(pl.Float64, strict=False)
        first = pl.int_range(pl.len()) == 0  # best hit; also the only one kept when scores are missing
        kept = hits.list.eval(pl.element().filter(first | (score == score.max()).fill_null(False)))
    else:
        kept = hits.list.head(1)
    names = kept.list.eval(pl.element().str.replace(r"\([^)]*\)\s*$", "").str.strip_chars())
    joined = names.list.join(",")
    return pl.when(joined == "").then(pl.lit(None, dtype=pl.Utf8)).otherwise(joined)


def convert_mixcr(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert a MiXCR clones table (TSV)."""
    wanted = [
        "cloneId",
        *UMI_COUNTS,
        *READ_COUNTS,
        *UMI_FRACTIONS,
        *READ_FRACTIONS,
        "nSeqCDR3",
        "aaSeqCDR3",
        *(pattern.format(segment) for pattern in _HIT_COLUMNS for segment in "VDJ"),
    ]
    raw = read_table(path, separator="\t", wanted=wanted, null_values=NULL_VALUES, rename=OLD_HEADERS)
    require(
        path,
        raw,
        "mixcr",
        ["aaSeqCDR3", "nSeqCDR3"],
        [*UMI_COUNTS, *READ_COUNTS],
        [pattern.format("V") for pattern in _HIT_COLUMNS],
    )
    notes: list[str] = []
    rounded = 0
    umi = reads = None
    umi_source = read_source = None
    for name in UMI_COUNTS:
        if name in raw.columns:
            counts, fractional = parse_counts(path, raw, name)
            if any_positive(counts):
                umi, umi_source, rounded = counts, name, rounded + fractional
                break
    for name in READ_COUNTS:
        if name in raw.columns:
            reads, fractional = parse_counts(path, raw, name)
            read_source, rounded = name, rounded + (0 if umi is not None else fractional)
            break
    if umi is None and reads is None:
        raise InputFileError(
            path,
            "the MiXCR table has no usable count column",
            "export clones with readCount/cloneCount (and uniqueMoleculeCount for UMI data)",
        )
    if rounded:
        notes.append(f"{rounded} fractional MiXCR counts (reads split between clones) rounded to whole numbers")
    junction_aa = pl.col("aaSeqCDR3") if "aaSeqCDR3" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    junction = pl.col("nSeqCDR3").str.to_uppercase() if "nSeqCDR3" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    frame = raw.select(
        sequence_id=pl.col("cloneId") if "cloneId" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        v_call=_top_hits(raw, "V"),
        d_call=_top_hits(raw, "D"),
        j_call=_top_hits(raw, "J"),
        junction=junction,
        junction_aa=junction_aa,
    ).with_columns(productive=productive_from_junction_aa())
    if umi is not None:
        notes.append(f"UMI counts ({umi_source}) used; reads ({read_source}) kept as consensus_count")
        frame = frame.with_columns(
            umi_count=counts_to_text(umi, raw.height), consensus_count=counts_to_text(reads, raw.height)
        )
        fraction = next((name for name in UMI_FRACTIONS if name in raw.columns), None)
        return finish(
            frame,
            fmt="mixcr",
            locus=locus,
            species=species,
            count_source=f"{umi_source} (UMIs)",
            notes=notes,
            extra_columns=("umi_count", "consensus_count"),
            frequency=fraction,
            source=raw,
        )
    frame = frame.with_columns(duplicate_count=counts_to_text(reads, raw.height))
    fraction = next((name for name in READ_FRACTIONS if name in raw.columns), None)
    return finish(
        frame,
        fmt="mixcr",
        locus=locus,
        species=species,
        count_source=str(read_source),
        notes=notes,
        frequency=fraction,
        source=raw,
    )
