"""10x Genomics Cell Ranger ``filtered_contig_annotations.csv`` / ``all_contig_annotations.csv`` -> AIRR columns.

One row per contig. Contigs that are not in a called cell (``is_cell``) or not ``high_confidence``
are background and are dropped here (reported in notes; ``filtered_`` files have none). Every other
contig is kept, whatever its chain or productivity, so that ingest's fates count the other chains
(``wrong_locus``: TRA, IGH, ...) and the non-productive ones. ``cdr3``/``cdr3_nt`` are the junction
(C to F/W). The clonotype count is the number of distinct cells: ``cell_id`` = ``barcode``;
``umis`` -> ``umi_count``, ``reads`` -> ``consensus_count`` (as in Cell Ranger's own AIRR export).
``chain`` ``Multi`` (a chimeric contig) gets no locus: ingest then goes by its V/J calls.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tcrtrack.formats._common import ConvertedRepertoire, finish, parse_counts, read_table, require, truthy
from tcrtrack.genes import LOCI

NULL_VALUES = ("", "None", "NA", "none")
EXTRA_COLUMNS = ("cell_id", "umi_count", "consensus_count")


def convert_10x_contigs(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert a 10x contig annotations CSV (plain or gzipped)."""
    wanted = [
        "barcode",
        "contig_id",
        "is_cell",
        "high_confidence",
        "chain",
        "v_gene",
        "d_gene",
        "j_gene",
        "productive",
        "cdr3",
        "cdr3_nt",
        "reads",
        "umis",
    ]
    raw = read_table(path, separator=",", wanted=wanted, null_values=NULL_VALUES, quote_char='"')
    require(path, raw, "10x_contigs", ["barcode"], ["chain"], ["cdr3", "cdr3_nt"], ["v_gene"], ["j_gene"])
    notes: list[str] = []
    in_cell = pl.lit(True)
    for flag in ("is_cell", "high_confidence"):
        if flag in raw.columns:
            in_cell = in_cell & truthy(flag)
    background = raw.filter(~in_cell)
    if background.height:
        notes.append(
            f"{background.height} contigs not in a called cell or not high-confidence dropped "
            f"({background['barcode'].n_unique()} barcodes)"
        )
    raw = raw.filter(in_cell)
    productive = pl.col("productive").str.to_lowercase() if "productive" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    frame = raw.select(
        sequence_id=pl.col("contig_id") if "contig_id" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        cell_id=pl.col("barcode"),
        locus=pl.when(pl.col("chain").is_in(LOCI)).then(pl.col("chain")).otherwise(pl.lit(None, dtype=pl.Utf8)),
        productive=pl.when(productive == "true")
        .then(pl.lit("T"))
        .when(productive == "false")
        .then(pl.lit("F"))
        .otherwise(pl.lit(None, dtype=pl.Utf8)),
        v_call=pl.col("v_gene"),
        d_call=pl.col("d_gene") if "d_gene" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        j_call=pl.col("j_gene"),
        junction=pl.col("cdr3_nt") if "cdr3_nt" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        junction_aa=pl.col("cdr3") if "cdr3" in raw.columns else pl.lit(None, dtype=pl.Utf8),
    )
    for source, target in (("umis", "umi_count"), ("reads", "consensus_count")):
        values = (
            parse_counts(path, raw, source)[0].cast(pl.Utf8)
            if source in raw.columns
            else pl.Series([None] * raw.height, dtype=pl.Utf8)
        )
        frame = frame.with_columns(values.alias(target))
    chains = frame.filter(
        (pl.col("locus") == locus) & (pl.col("productive") == "T") & pl.col("junction_aa").is_not_null()
    )
    per_cell = chains.group_by("cell_id").len()
    doublets = int((per_cell["len"] > 1).sum())
    notes.append(f"{per_cell.height} cells with a productive {locus} chain")
    if doublets:
        notes.append(
            f"{doublets} cells with two {locus} chains counted once per clonotype "
            f"(such a cell counts in each of its {locus} clonotypes)"
        )
    return finish(
        frame,
        fmt="10x_contigs",
        locus=locus,
        species=species,
        count_source="cells (distinct barcodes)",
        notes=notes,
        extra_columns=EXTRA_COLUMNS,
        single_locus_file=False,
    )
