"""Ingest AIRR Rearrangement TSV files into clonotype tables, accounting for every row.

The reader follows the AIRR Community Rearrangement schema (Vander Heiden et al. 2018,
Front Immunol 9:2206), taking field names and types from the schema file that the ``airr``
package ships (read directly: importing ``airr`` pulls in pandas, half a second per job). Each input
row ends in exactly one *fate*: ``kept`` or one drop reason (:data:`DROP_REASONS`), so that
``input = kept + sum(dropped)`` holds for rows and for counts (the QC identity).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from tcrtrack.errors import InputFileError
from tcrtrack.genes import normalise_gene_calls, translate_junctions
from tcrtrack.schema import CLONOTYPE_DEFINITIONS, CLONOTYPE_SCHEMA

COUNT_FIELDS: tuple[str, ...] = ("duplicate_count", "umi_count", "consensus_count")
"""Count columns in order of preference; without any, each row counts 1."""

READ_FIELDS: tuple[str, ...] = ("locus", "productive", "v_call", "j_call", "junction", "junction_aa",
                                "cell_id", *COUNT_FIELDS)

DROP_REASONS: tuple[str, ...] = (
    "wrong_locus",        # locus (or the V/J call's prefix) is not the configured locus
    "locus_gene_mismatch",  # locus column says the configured locus but a V/J call names another
    "non_productive",     # productive is F (with ingest.productive_only)
    "productive_missing",  # productive is empty (with ingest.productive_only)
    "missing_junction",   # neither junction_aa nor a translatable junction
    "stop_codon",         # junction_aa contains '*'
    "out_of_frame",       # junction_aa contains '_' or '~' (frameshift markers)
    "too_short",          # junction_aa shorter than ingest.min_junction_aa_length
    "missing_count",      # the count column is empty on this row
    "zero_count",         # the count is 0
)

_TRUE = ("T", "TRUE", "True", "true", "1")
_FALSE = ("F", "FALSE", "False", "false", "0")


@dataclass(frozen=True)
class IngestResult:
    """Clonotype table (:data:`tcrtrack.schema.CLONOTYPE_SCHEMA`) and its one-row QC table."""

    clonotypes: pl.DataFrame
    qc: pl.DataFrame


@functools.cache
def airr_field_types() -> dict[str, str]:
    """AIRR Rearrangement field name -> AIRR type (``string``, ``integer``, ``boolean``, ``number``)."""
    spec = importlib.util.find_spec("airr")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'airr' package is required (pip install airr)")
    path = Path(spec.submodule_search_locations[0]) / "specs" / "airr-schema.yaml"
    with open(path, encoding="utf-8") as handle:
        schema = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {name: field.get("type", "object") for name, field in schema["Rearrangement"]["properties"].items()}


def read_airr_tsv(path: Path | str) -> pl.DataFrame:
    """Read the columns tcrtrack uses from an AIRR Rearrangement TSV (plain or gzipped).

    All columns are read as strings (AIRR allows empty values anywhere) and typed later,
    so a malformed value is reported with its row instead of failing inside the parser.
    """
    path = Path(path)
    header = read_airr_header(path)
    columns = [name for name in READ_FIELDS if name in header]
    try:
        return pl.read_csv(path, separator="\t", columns=columns, infer_schema=False, quote_char='"')
    except (pl.exceptions.PolarsError, OSError, EOFError) as error:
        raise InputFileError(path, f"cannot be parsed ({str(error).splitlines()[0]})",
                             "check for truncated or corrupt content and rows with a wrong number of tabs"
                             ) from None


def read_airr_header(path: Path | str) -> list[str]:
    """The column names of an AIRR TSV, after checking that tcrtrack's required columns are there."""
    path = Path(path)
    try:
        header = pl.read_csv(path, separator="\t", n_rows=0, infer_schema=False, quote_char='"').columns
    except (pl.exceptions.PolarsError, OSError, EOFError) as error:
        raise InputFileError(path, f"cannot be read as a TSV ({str(error).splitlines()[0]})",
                             "check that the file is a complete, tab-separated AIRR Rearrangement file "
                             "(re-export or re-download it)") from None
    _require_columns(path, header)
    return header


def _require_columns(path: Path, header: list[str]) -> None:
    if len(header) == 1 and "," in header[0]:
        raise InputFileError(path, "the header has no tab (it looks comma-separated)",
                             "give a tab-separated AIRR file, or name its format in the sample sheet")
    missing = [name for name in ("v_call", "j_call") if name not in header]
    if "junction_aa" not in header and "junction" not in header:
        missing.insert(0, "junction_aa")
    if missing:
        raise InputFileError(path, f"required AIRR column(s) {', '.join(missing)} missing",
                             "export the file as an AIRR Rearrangement TSV with junction_aa (or junction), "
                             "v_call and j_call")


def _count_source(path: Path, frame: pl.DataFrame) -> str | None:
    for name in COUNT_FIELDS:
        if name in frame.columns and frame[name].is_not_null().any():
            return name
    return None


def _parse_counts(path: Path, frame: pl.DataFrame, source: str | None) -> pl.Series:
    if source is None:
        return pl.Series("count", [1] * frame.height, dtype=pl.Int64)
    if airr_field_types()[source] != "integer":  # guards COUNT_FIELDS against a schema change
        raise ValueError(f"AIRR field {source} is not an integer field")
    raw = frame[source]
    parsed = raw.cast(pl.Int64, strict=False)
    bad = raw.is_not_null() & (parsed.is_null() | (parsed < 0))
    if bad.any():
        row = int(bad.arg_true()[0])
        raise InputFileError(path, f"row {row + 2}, column '{source}': '{raw[row]}' is not a whole number >= 0",
                             f"{source} must hold non-negative integer counts")
    return parsed.alias("count")


def _parse_productive(path: Path, frame: pl.DataFrame) -> pl.Series:
    if "productive" not in frame.columns:
        return pl.Series("productive", [None] * frame.height, dtype=pl.Boolean)
    raw = frame["productive"]
    known = raw.is_null() | raw.is_in(_TRUE + _FALSE)
    if not known.all():
        row = int((~known).arg_true()[0])
        raise InputFileError(path, f"row {row + 2}, column 'productive': '{raw[row]}' is not an AIRR boolean",
                             "write productive as T or F (AIRR booleans: T/F, TRUE/FALSE, true/false)")
    return raw.is_in(_TRUE).alias("productive").set(raw.is_null(), None)


def _locus_expressions(frame: pl.DataFrame, locus: str) -> tuple[pl.Expr, pl.Expr]:
    """(wrong locus, gene calls disagree with the locus column) as Boolean expressions."""
    v_prefix, j_prefix = pl.col("v_call").str.slice(0, 3), pl.col("j_call").str.slice(0, 3)
    from_calls = pl.coalesce(v_prefix, j_prefix)
    if "locus" not in frame.columns:
        return from_calls.fill_null("") != locus, pl.lit(False)
    wrong = pl.coalesce(pl.col("locus"), from_calls).fill_null("") != locus
    mismatch = (v_prefix.is_not_null() & (v_prefix != locus)) | (j_prefix.is_not_null() & (j_prefix != locus))
    return wrong, mismatch


def assign_fates(frame: pl.DataFrame, *, locus: str, productive_only: bool,
                 min_junction_aa_length: int) -> pl.DataFrame:
    """Add a ``fate`` column: ``kept`` or the first drop reason that applies (in :data:`DROP_REASONS` order).

    ``frame`` carries typed ``productive`` (Boolean), ``junction_aa`` and ``count`` columns.
    """
    junction = pl.col("junction_aa")
    wrong_locus, locus_gene_mismatch = _locus_expressions(frame, locus)
    reasons = {
        "wrong_locus": wrong_locus,
        "locus_gene_mismatch": locus_gene_mismatch,
        "non_productive": pl.lit(productive_only) & (pl.col("productive") == False),  # noqa: E712
        "productive_missing": pl.lit(productive_only) & pl.col("productive").is_null(),
        "missing_junction": junction.is_null() | (junction == ""),
        "stop_codon": junction.str.contains("*", literal=True),
        "out_of_frame": junction.str.contains(r"[_~]"),
        "too_short": junction.str.len_chars() < min_junction_aa_length,
        "missing_count": pl.col("count").is_null(),
        "zero_count": pl.col("count") == 0,
    }
    fate = pl.when(reasons["wrong_locus"]).then(pl.lit("wrong_locus"))
    for name in DROP_REASONS[1:]:
        fate = fate.when(reasons[name]).then(pl.lit(name))
    return frame.with_columns(fate=fate.otherwise(pl.lit("kept")))


def qc_table(fated: pl.DataFrame, *, count_source: str | None) -> pl.DataFrame:
    """One row of row- and count-totals per fate, plus the input totals."""
    totals = fated.group_by("fate").agg(rows=pl.len(), count=pl.col("count").fill_null(0).sum())
    by_fate = {fate: (rows, count) for fate, rows, count in totals.iter_rows()}
    row: dict[str, object] = {
        "count_source": count_source or "rows (no count column: 1 per row)",
        "input_rows": fated.height,
        "input_count": int(fated["count"].fill_null(0).sum()),
    }
    for fate in ("kept", *DROP_REASONS):
        rows, count = by_fate.get(fate, (0, 0))
        row[f"{fate}_rows"] = rows
        row[f"{fate}_count"] = count
    return pl.DataFrame([row])


def _fate_summary(fated: pl.DataFrame) -> str:
    counts = fated.group_by("fate").len().sort("len", descending=True)
    return ", ".join(f"{n} of {fated.height} rows {fate}" for fate, n in counts.iter_rows())


def define_clonotypes(kept: pl.DataFrame, *, definition: str) -> pl.DataFrame:
    """Collapse kept rows into clonotypes.

    ``aa_vj``: junction_aa + V gene + J gene; ``aa``: junction_aa (the V and J shown are those of the
    largest contributing row); ``nt``: junction nucleotides + V gene + J gene. Single-cell input
    (a ``cell_id`` column) counts distinct cells per clonotype, not contigs.
    """
    key = list(CLONOTYPE_DEFINITIONS[definition])
    if definition == "nt" and kept["junction"].is_null().any():
        raise ValueError("clonotype definition 'nt' needs a junction (nucleotide) on every kept row")
    single_cell = "cell_id" in kept.columns and kept["cell_id"].is_not_null().any()
    size = pl.col("cell_id").n_unique() if single_cell else pl.col("count").sum()
    ordered = kept.sort(["count", "junction_aa", "v_gene", "j_gene"], descending=[True, False, False, False],
                        nulls_last=True)
    clonotypes = ordered.group_by(key, maintain_order=True).agg(
        *(pl.col(name).first() for name in ("junction_aa", "v_gene", "j_gene", "junction") if name not in key),
        count=size.cast(pl.Int64),
        v_ambiguous=pl.col("v_ambiguous").any(),
        j_ambiguous=pl.col("j_ambiguous").any(),
    )
    total = clonotypes["count"].sum()
    clonotypes = clonotypes.with_columns(
        clone_id=pl.concat_str([pl.col(k).fill_null("") for k in key], separator="|"),
        frequency=pl.col("count") / total,
    )
    return clonotypes.select(CLONOTYPE_SCHEMA.keys()).cast(CLONOTYPE_SCHEMA).sort(
        ["count", "clone_id"], descending=[True, False])


def ingest_airr(path: Path | str, *, locus: str = "TRB", productive_only: bool = True,
                min_junction_aa_length: int = 5, definition: str = "aa_vj") -> IngestResult:
    """Read one AIRR Rearrangement TSV and return its clonotype table and QC row.

    Parameters
    ----------
    path
        AIRR Rearrangement TSV, plain or gzipped.
    locus
        Keep rows of this locus (``locus`` column, else the V/J call's 3-letter prefix).
    productive_only
        Drop rows whose ``productive`` is false or empty.
    min_junction_aa_length
        Drop junctions shorter than this (amino acids).
    definition
        Clonotype definition: ``aa_vj``, ``aa`` or ``nt``.
    """
    path = Path(path)
    raw = read_airr_tsv(path)
    source = _count_source(path, raw)
    single_cell = "cell_id" in raw.columns and raw["cell_id"].is_not_null().any()
    typed = raw.with_columns(
        _parse_counts(path, raw, source),
        _parse_productive(path, raw),
        junction_aa=translate_junctions(raw),
        junction=pl.col("junction") if "junction" in raw.columns else pl.lit(None, dtype=pl.Utf8),
    )
    fated = assign_fates(typed, locus=locus, productive_only=productive_only,
                         min_junction_aa_length=min_junction_aa_length)
    kept = normalise_gene_calls(fated.filter(pl.col("fate") == "kept"))
    if kept.height == 0:
        raise InputFileError(path, f"no row is kept: {_fate_summary(fated)}",
                             f"check that the file holds productive {locus} rearrangements, or set "
                             "ingest.locus / ingest.productive_only in the config")
    label = f"cells (distinct cell_id; QC counts are {source or 'rows'})" if single_cell else source
    qc = qc_table(fated, count_source=label).with_columns(
        clonotype_definition=pl.lit(definition),
        clonotypes=pl.lit(0, dtype=pl.Int64),
        v_ambiguous_rows=pl.lit(int(kept["v_ambiguous"].sum()), dtype=pl.Int64),
        j_ambiguous_rows=pl.lit(int(kept["j_ambiguous"].sum()), dtype=pl.Int64),
        v_missing_rows=pl.lit(int((kept["v_gene"] == "").sum()), dtype=pl.Int64),
        j_missing_rows=pl.lit(int((kept["j_gene"] == "").sum()), dtype=pl.Int64),
    )
    clonotypes = define_clonotypes(kept, definition=definition)
    return IngestResult(clonotypes=clonotypes, qc=qc.with_columns(clonotypes=pl.lit(clonotypes.height,
                                                                                  dtype=pl.Int64)))
