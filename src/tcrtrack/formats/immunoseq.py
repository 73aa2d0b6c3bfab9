"""Adaptive immunoSEQ exports (v1/v2 camelCase, v3 snake_case) -> AIRR columns.

Checked on real exports (LymphoSeq v2, immunarch v3): immunoSEQ's CDR3 amino acids (``aminoAcid``,
``amino_acid``) run from the conserved C to the F/W inclusive, i.e. they are the AIRR/IMGT
*junction*; they are empty for out-of-frame rows and carry ``*`` for stop rows. The junction
nucleotides are cut from the read (``nucleotide``/``rearrangement``) at ``vIndex``/``v_index`` with
3 x the amino-acid length; ``cdr3Length`` is not used because its convention differs between exports
(the junction length in one LymphoSeq file, 3 nt more in the other), and reads are 87 nt, so a
junction that runs past the read's end (common in v3 snippets) is left empty.
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
    productive_from_status,
    read_table,
    require,
)

NULL_VALUES = ("", "null", "NULL", "NA", "N/A", "no data", "unresolved")

_V2 = {
    "read": "nucleotide",
    "aa": "aminoAcid",
    "v_index": "vIndex",
    "status": "sequenceStatus",
    "gene": "{}GeneName",
    "allele": "{}GeneAllele",
    "ties": "{}GeneNameTies",
    "resolved": "{}MaxResolved",
    "family": "{}FamilyName",
}
_V3 = {
    "read": "rearrangement",
    "aa": "amino_acid",
    "v_index": "v_index",
    "status": "frame_type",
    "gene": "{}_gene",
    "allele": "{}_allele",
    "ties": "{}_gene_ties",
    "resolved": "{}_resolved",
    "family": "{}_family",
}
_V2_COUNTS = ("count (templates)", "estimatedNumberGenomes", "count (reads)", "count (templates/reads)", "count")
_V3_COUNTS = ("templates", "reads")
_FREQUENCIES = {2: "frequencyCount (%)", 3: "frequency"}  # share of the whole sample (also non-productive rows)
_LOCUS = {
    "TCRB": "TRB",
    "TCRA": "TRA",
    "TCRG": "TRG",
    "TCRD": "TRD",
    "IGH": "IGH",
    "IGK": "IGK",
    "IGL": "IGL",
    "TRB": "TRB",
    "TRA": "TRA",
    "TRG": "TRG",
    "TRD": "TRD",
}


def _wanted(names: dict[str, str], version: int) -> list[str]:
    genes = [
        names[key].format(segment)
        for key in ("gene", "allele", "ties", "resolved", "family")
        for segment in ("v", "d", "j")
    ]
    extra = list(_V2_COUNTS) if version == 2 else [*_V3_COUNTS, "productive_frequency", "locus"]
    extra.append(_FREQUENCIES[version])
    return [names["read"], names["aa"], names["v_index"], names["status"], *genes, *extra]


def _gene_call(frame: pl.DataFrame, names: dict[str, str], segment: str) -> pl.Expr:
    """Best resolution available: gene (+ allele) > tied genes > max-resolved name > family."""

    def column(key: str) -> pl.Expr:
        name = names[key].format(segment)
        return pl.col(name) if name in frame.columns else pl.lit(None, dtype=pl.Utf8)

    gene, allele = column("gene"), column("allele")
    with_allele = (
        pl.when(allele.is_null() | gene.str.contains("*", literal=True))
        .then(gene)
        .otherwise(pl.concat_str([gene, pl.lit("*"), allele.str.zfill(2)]))
    )
    return pl.coalesce(with_allele, column("ties"), column("resolved"), column("family"))


def _junction(frame: pl.DataFrame, names: dict[str, str]) -> pl.Expr:
    if names["read"] not in frame.columns or names["v_index"] not in frame.columns:
        return pl.lit(None, dtype=pl.Utf8)
    read, aa = pl.col(names["read"]), pl.col(names["aa"])
    start = pl.col(names["v_index"]).cast(pl.Int64, strict=False)
    length = aa.str.len_chars().cast(pl.Int64) * 3
    fits = aa.is_not_null() & (start >= 0) & (start + length <= read.str.len_chars().cast(pl.Int64))
    return pl.when(fits).then(read.str.slice(start, length)).otherwise(pl.lit(None, dtype=pl.Utf8))


def _no_counts(path: Path, columns: list[str]) -> InputFileError:
    if not columns:
        return InputFileError(
            path,
            "the immunoSEQ export has no count column",
            "export with templates/reads ('count (templates/reads)', 'templates', 'reads')",
        )
    return InputFileError(
        path,
        f"{', '.join(columns)} are 0 or empty on every row",
        "export the sample again with its template or read counts",
    )


def _counts_v2(path: Path, raw: pl.DataFrame, notes: list[str]) -> tuple[pl.Series, str]:
    templates = [name for name in ("count (templates)", "estimatedNumberGenomes") if name in raw.columns]
    for name in templates:
        counts, _ = parse_counts(path, raw, name)
        if any_positive(counts):
            return counts, "templates" if name == "count (templates)" else f"templates ({name})"
    labels = {
        "count (reads)": "reads (templates absent)",
        "count (templates/reads)": "reads (templates absent)"
        if templates
        else "count (templates/reads): templates or reads, the export does not say which",
        "count": "count (immunoSEQ v1: templates or reads)",
    }
    for name, label in labels.items():
        if name in raw.columns:
            counts, _ = parse_counts(path, raw, name)
            if any_positive(counts):
                if templates:
                    notes.append(
                        f"{' and '.join(templates)} 0 or empty on every row: templates absent, "
                        f"counts are reads ('{name}')"
                    )
                return counts, label
    raise _no_counts(path, [name for name in _V2_COUNTS if name in raw.columns])


def _counts_v3(path: Path, raw: pl.DataFrame, notes: list[str]) -> tuple[pl.Series, str]:
    for name, label in (("templates", "templates"), ("reads", "reads (templates absent)")):
        if name in raw.columns:
            counts, _ = parse_counts(path, raw, name)
            if any_positive(counts):
                if name == "reads" and "templates" in raw.columns:
                    notes.append("templates 0 or empty on every row: templates absent, counts are reads")
                return counts, label
    raise _no_counts(path, [name for name in _V3_COUNTS if name in raw.columns])


def _productive(frame: pl.DataFrame, names: dict[str, str], notes: list[str]) -> pl.Expr:
    if names["status"] in frame.columns:
        return productive_from_status(names["status"])
    if "productive_frequency" in frame.columns:
        notes.append("no frame_type column: productive = productive_frequency is given")
        return pl.when(pl.col("productive_frequency").is_not_null()).then(pl.lit("T")).otherwise(pl.lit("F"))
    notes.append(f"no {names['status']} column: productive judged from the CDR3 amino acids")
    return productive_from_junction_aa(names["aa"])


def convert_immunoseq(path: Path, *, version: int, locus: str, species: str) -> ConvertedRepertoire:
    """Convert an immunoSEQ v1/v2 (``version=2``) or v3 (``version=3``) export."""
    names = _V2 if version == 2 else _V3
    fmt = f"immunoseq_v{version}"
    raw = read_table(path, separator="\t", wanted=_wanted(names, version), null_values=NULL_VALUES)
    require(
        path,
        raw,
        fmt,
        [names["aa"], names["read"]],
        _V2_COUNTS if version == 2 else _V3_COUNTS,
        [names["gene"].format("v"), names["resolved"].format("v"), names["ties"].format("v")],
    )
    notes: list[str] = []
    counts, source = (_counts_v2 if version == 2 else _counts_v3)(path, raw, notes)
    locus_column = (
        pl.col("locus").str.to_uppercase().replace_strict(_LOCUS, default=None, return_dtype=pl.Utf8)
        if "locus" in raw.columns
        else pl.lit(None, dtype=pl.Utf8)
    )
    aa = pl.col(names["aa"]) if names["aa"] in raw.columns else pl.lit(None, dtype=pl.Utf8)
    frame = raw.select(
        locus=locus_column,
        productive=_productive(raw, names, notes),
        v_call=_gene_call(raw, names, "v"),
        d_call=_gene_call(raw, names, "d"),
        j_call=_gene_call(raw, names, "j"),
        junction=_junction(raw, names),
        junction_aa=aa,
        duplicate_count=counts_to_text(counts, raw.height),
    )
    return finish(
        frame,
        fmt=fmt,
        locus=locus,
        species=species,
        count_source=source,
        notes=notes,
        frequency=_FREQUENCIES[version],
        source=raw,
    )
