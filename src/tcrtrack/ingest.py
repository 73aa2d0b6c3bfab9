"""Turn AIRR rearrangements into clonotype tables, accounting for every row.

Each input row ends in exactly one *fate*: ``kept`` or one drop reason (:data:`DROP_REASONS`), so that
``input = kept + sum(dropped)`` holds for rows and for counts (the QC identity). Files are read by
:mod:`tcrtrack.airr_reader`; vendor exports are converted to the same AIRR columns by
:mod:`tcrtrack.formats` and enter through :func:`ingest_frame`. Counts that are not whole numbers >= 0
or that add up beyond 2**63 - 1, and ``productive`` values that are not AIRR booleans, are refused with
the row; counts written ``12.0`` and ``productive`` as T/F, TRUE/FALSE, True/False, true/false or 1/0
are accepted.

Speed (measurements in benchmarks/INGEST.md): V/J calls are normalised and their locus read once per distinct call
(:func:`annotate_calls`, a join), fates are an Enum, and the clonotype table is sorted on its two key
columns only, then gathered once (:func:`_largest_first`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tcrtrack.airr_errors import RowLocator, airr_row_locator, row_error
from tcrtrack.airr_reader import COUNT_FIELDS, READ_FIELDS, count_column, read_airr_header, read_airr_tsv
from tcrtrack.errors import InputFileError
from tcrtrack.genes import LOCI, normalise_gene_calls, translate_junctions
from tcrtrack.schema import CLONOTYPE_DEFINITIONS, CLONOTYPE_SCHEMA
from tcrtrack.truncation import SOURCE_FREQUENCY, FrequencyEvidence, Truncation, assess

log = logging.getLogger(__name__)

__all__ = [
    "COUNT_FIELDS",
    "DROP_REASONS",
    "FATES",
    "READ_FIELDS",
    "IngestResult",
    "annotate_calls",
    "assign_fates",
    "define_clonotypes",
    "ingest_airr",
    "ingest_frame",
    "qc_table",
    "read_airr_header",
    "read_airr_tsv",
]

DROP_REASONS: tuple[str, ...] = (
    "wrong_locus",  # locus (or the V/J call's prefix) is not the configured locus
    "locus_gene_mismatch",  # locus column says the configured locus but a V/J call names another
    "non_productive",  # productive is F (with ingest.productive_only)
    "productive_missing",  # productive is empty (with ingest.productive_only)
    "missing_junction",  # neither junction_aa nor a translatable junction
    "stop_codon",  # junction_aa contains '*'
    "out_of_frame",  # junction_aa contains '_' or '~' (frameshift markers)
    "too_short",  # junction_aa shorter than ingest.min_junction_aa_length
    "missing_count",  # the count column is empty on this row
    "zero_count",  # the count is 0
)

FATES = pl.Enum(["kept", *DROP_REASONS])
"""The dtype of the ``fate`` column (compared and grouped as integers, read back as the names)."""

_TRUE = ("T", "TRUE", "True", "true", "1")
_FALSE = ("F", "FALSE", "False", "false", "0")


@dataclass(frozen=True)
class IngestResult:
    """Clonotype table (:data:`tcrtrack.schema.CLONOTYPE_SCHEMA`), its one-row QC table, and what the file
    says about its own completeness (:mod:`tcrtrack.truncation`; its columns are in the QC row)."""

    clonotypes: pl.DataFrame
    qc: pl.DataFrame
    truncation: Truncation | None = None


def _parse_counts(path: Path, frame: pl.DataFrame, source: str | None, locate: RowLocator) -> pl.Series:
    """Counts as Int64 (exact up to 2**63 - 1). Whole numbers written as decimals (``12.0``, as pandas
    writes an integer column with gaps) are accepted; fractions, negatives and text are errors."""
    if source is None:
        return pl.Series("count", [1] * frame.height, dtype=pl.Int64)
    raw = frame[source]  # COUNT_FIELDS are AIRR integer fields (tests/test_ingest.py checks them against the spec)
    parsed = raw.cast(pl.Int64, strict=False)
    if (raw.is_not_null() & parsed.is_null()).any():  # rare: parse "12.0" as 12, exactly
        whole = raw.str.replace(r"^\+?(\d+)\.0*$", "$1").cast(pl.Int64, strict=False)
        parsed = pl.select(pl.coalesce(parsed, whole)).to_series()
    bad = raw.is_not_null() & (parsed.is_null() | (parsed < 0))
    if bad.any():
        raise row_error(
            path,
            frame,
            bad,
            source,
            "is not a whole number >= 0 (up to 2**63 - 1)",
            f"{source} must hold non-negative integer counts",
            locate=locate,
        )
    largest = parsed.max()
    if isinstance(largest, int) and largest * frame.height > _INT64_MAX:  # rare: check the exact total
        total = sum(parsed.drop_nulls().to_list())
        if total > _INT64_MAX:
            raise InputFileError(
                path,
                f"column '{source}': the counts add up to {total}, more than 2**63 - 1",
                f"check {source}: no repertoire holds that many reads (a corrupt export?)",
            )
    return parsed.alias("count")


_INT64_MAX = 2**63 - 1


def _parse_productive(path: Path, frame: pl.DataFrame, locate: RowLocator) -> pl.Series:
    """AIRR booleans: T/F, TRUE/FALSE, True/False, true/false, 1/0; empty is null. Anything else is an error."""
    if "productive" not in frame.columns:
        return pl.Series("productive", [None] * frame.height, dtype=pl.Boolean)
    raw = frame["productive"]
    known = raw.is_null() | raw.is_in(_TRUE + _FALSE)
    if not known.all():
        raise row_error(
            path,
            frame,
            ~known,
            "productive",
            "is not an AIRR boolean",
            "write productive as T or F (AIRR booleans: T/F, TRUE/FALSE, true/false, 1/0)",
            locate=locate,
        )
    return raw.is_in(_TRUE).alias("productive").set(raw.is_null(), None)


def _call_table(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """One row per distinct call in ``column`` (``v_call`` or ``j_call``): its gene and ambiguity
    (:func:`tcrtrack.genes.normalise_gene_calls`) and its locus, the call's 3-letter prefix when that names a
    real locus (:data:`LOCI`; a vendor name that could not be standardised, ``TCRBV13-02``, names none).

    A repertoire has ~10^2 distinct calls and ~10^6 rows: computed per call, joined to the rows once.
    """
    side, other = column[0], "j_call" if column == "v_call" else "v_call"
    calls = frame.select(pl.col(column).unique()).with_columns(pl.lit(None, dtype=pl.Utf8).alias(other))
    prefix = pl.col(column).str.slice(0, 3)
    return normalise_gene_calls(calls).select(
        column, f"{side}_gene", f"{side}_ambiguous", pl.when(prefix.is_in(LOCI)).then(prefix).alias(f"{side}_locus")
    )


def annotate_calls(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``v_gene``, ``j_gene``, ``v_ambiguous``, ``j_ambiguous`` (as :func:`tcrtrack.genes.normalise_gene_calls`)
    and ``v_locus``, ``j_locus`` (see :func:`_call_table`) to rows with ``v_call`` and ``j_call``, row order kept."""
    joined = frame.lazy()
    for column in ("v_call", "j_call"):
        joined = joined.join(
            _call_table(frame, column).lazy(), on=column, how="left", nulls_equal=True, maintain_order="left"
        )
    return joined.collect(engine="in-memory")


def _locus_expressions(frame: pl.DataFrame, locus: str) -> tuple[pl.Expr, pl.Expr]:
    """(wrong locus, gene calls disagree with the locus column) as Boolean expressions.

    Only a call whose prefix names a real locus (``v_locus``/``j_locus`` of :func:`annotate_calls`) can
    disagree: a vendor name that could not be standardised is not evidence of another locus.
    """
    v_locus, j_locus = pl.col("v_locus"), pl.col("j_locus")
    from_calls = pl.coalesce(v_locus, j_locus)
    if "locus" not in frame.columns:
        return from_calls.fill_null("") != locus, pl.lit(False)
    wrong = pl.coalesce(pl.col("locus"), from_calls).fill_null("") != locus
    mismatch = (v_locus.is_not_null() & (v_locus != locus)) | (j_locus.is_not_null() & (j_locus != locus))
    return wrong, mismatch


def assign_fates(
    frame: pl.DataFrame, *, locus: str, productive_only: bool, min_junction_aa_length: int
) -> pl.DataFrame:
    """Add a ``fate`` column (:data:`FATES`): ``kept`` or the first drop reason that applies (in
    :data:`DROP_REASONS` order).

    ``frame`` carries typed ``productive`` (Boolean), ``junction_aa`` and ``count`` columns, and the columns
    of :func:`annotate_calls` (added here when ``v_locus`` is missing).
    """
    if "v_locus" not in frame.columns:
        frame = annotate_calls(frame)
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
    fate = pl.when(reasons["wrong_locus"]).then(pl.lit("wrong_locus", dtype=FATES))
    for name in DROP_REASONS[1:]:
        fate = fate.when(reasons[name]).then(pl.lit(name, dtype=FATES))
    return frame.with_columns(fate=fate.otherwise(pl.lit("kept", dtype=FATES)))


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


def define_clonotypes(kept: pl.DataFrame, *, definition: str, depth: float | None = None) -> pl.DataFrame:
    """Collapse kept rows into clonotypes.

    ``aa_vj``: junction_aa + V gene + J gene; ``aa``: junction_aa (the V and J shown are those of the
    largest contributing row); ``nt``: junction nucleotides + V gene + J gene. Single-cell input
    (a ``cell_id`` column) counts distinct cells per clonotype, not contigs. ``frequency`` is count / the
    kept total, or count / ``depth`` when given (a truncated file's whole-sample depth).
    """
    key = list(CLONOTYPE_DEFINITIONS[definition])
    if definition == "nt" and kept["junction"].is_null().any():
        raise ValueError("clonotype definition 'nt' needs a junction (nucleotide) on every kept row")
    single_cell = "cell_id" in kept.columns and kept["cell_id"].is_not_null().any()
    size = pl.col("cell_id").n_unique() if single_cell else pl.col("count").sum()
    ties = [name for name in ("junction_aa", "v_gene", "j_gene") if name not in key]
    largest_first = {"by": ["count", *ties], "descending": [True] + [False] * len(ties), "nulls_last": True}
    # groups in order of appearance: their strings stay in file order in memory, which makes the clone IDs
    # and their sort faster than from groups in hash order (same table: the sort below decides the order;
    # benchmarks/INGEST.md)
    clonotypes = kept.group_by(key, maintain_order=True).agg(  # sorting within groups: cheaper than all rows
        *(
            pl.col(name).sort_by(**largest_first).first()
            for name in ("junction_aa", "v_gene", "j_gene", "junction")
            if name not in key
        ),
        count=size.cast(pl.Int64),
        v_ambiguous=pl.col("v_ambiguous").any(),
        j_ambiguous=pl.col("j_ambiguous").any(),
    )
    clone_id = pl.concat_str([pl.col(k).fill_null("") for k in key], separator="|")
    order = _largest_first(clonotypes.with_columns(clone_id=clone_id))
    total = order["count"].sum() if depth is None else depth
    return (
        clonotypes.drop("count")[order["row"]]
        .with_columns(
            order["count"],
            order["clone_id"],
            frequency=order["count"] / total,
        )
        .select(CLONOTYPE_SCHEMA.keys())
        .cast(CLONOTYPE_SCHEMA)
    )


def _largest_first(clonotypes: pl.DataFrame) -> pl.DataFrame:
    """``row`` (positions in ``clonotypes``), ``count`` and ``clone_id`` in the table order: ``count``
    descending, then ``clone_id``.

    Polars' streaming engine sorts just these columns (in parallel); gathering the other columns once
    afterwards is faster than sorting the whole frame, which moves every column through the sort, and than
    the in-memory engine's sort of the same columns (timings in benchmarks/INGEST.md).
    """
    keys = clonotypes.lazy().select("count", "clone_id").with_row_index("row")
    return keys.sort(["count", "clone_id"], descending=[True, False]).collect(engine="streaming")


def ingest_airr(
    path: Path | str,
    *,
    locus: str = "TRB",
    productive_only: bool = True,
    min_junction_aa_length: int = 5,
    definition: str = "aa_vj",
) -> IngestResult:
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
    frame = read_airr_tsv(path, extra=(SOURCE_FREQUENCY, "consensus_ratio"))
    evidence = None
    if (
        SOURCE_FREQUENCY not in frame.columns
        and "consensus_ratio" in frame.columns
        and count_column(frame) == "consensus_count"
    ):  # Vidjil-algo's AIRR export: the clone's share of all reads with a recombination
        evidence = FrequencyEvidence(
            counts=_parse_counts(Path(path), frame, "consensus_count", airr_row_locator(Path(path))),
            frequencies=frame["consensus_ratio"].cast(pl.Float64, strict=False),
            source="consensus_ratio",
        )
    return ingest_frame(
        frame.drop("consensus_ratio", strict=False),
        path=path,
        locus=locus,
        productive_only=productive_only,
        min_junction_aa_length=min_junction_aa_length,
        definition=definition,
        frequency_evidence=evidence,
    )


def ingest_frame(
    raw: pl.DataFrame,
    *,
    path: Path | str,
    locate: RowLocator | None = None,
    count_source: str | None = None,
    locus: str = "TRB",
    productive_only: bool = True,
    min_junction_aa_length: int = 5,
    definition: str = "aa_vj",
    frequency_evidence: FrequencyEvidence | None = None,
) -> IngestResult:
    """Clonotypes and QC of rearrangements already read as AIRR-named string columns.

    ``path`` names the source in errors and ``locate`` the row (default: the line of the AIRR file);
    ``count_source`` overrides the QC label of the count column (converted vendor exports).
    ``frequency_evidence`` (the export's whole-sample frequencies; else a ``source_frequency`` column, as
    ``tcrtrack convert`` writes for a truncated file) is the evidence from which the QC row's
    ``implied_depth``, ``kept_share``, ``truncated`` and ``truncation_note`` are judged
    (:func:`tcrtrack.truncation.assess`; a truncated file's frequencies then use the whole sample's depth
    and a warning is logged). Other options as in :func:`ingest_airr`.
    """
    path = Path(path)
    locate = locate or airr_row_locator(path)
    source = count_column(raw)
    single_cell = "cell_id" in raw.columns and raw["cell_id"].is_not_null().any()
    typed = raw.select(  # only what the fates, the QC and the clonotypes need
        *(name for name in ("locus", "v_call", "j_call", "cell_id") if name in raw.columns),
        _parse_counts(path, raw, source, locate),
        _parse_productive(path, raw, locate),
        junction_aa=translate_junctions(raw),
        junction=pl.col("junction") if "junction" in raw.columns else pl.lit(None, dtype=pl.Utf8),
    )
    fated = assign_fates(
        annotate_calls(typed),
        locus=locus,
        productive_only=productive_only,
        min_junction_aa_length=min_junction_aa_length,
    )
    used = ["junction_aa", "v_gene", "j_gene", "junction", "count", "v_ambiguous", "j_ambiguous"]
    kept = (
        fated.lazy()
        .filter(pl.col("fate") == "kept")
        .select(*used, *(["cell_id"] if "cell_id" in fated.columns else []))
        .collect(engine="in-memory")
    )
    if kept.height == 0:
        raise InputFileError(
            path,
            f"no row is kept: {_fate_summary(fated)}",
            f"check that the file holds productive {locus} rearrangements, or set "
            "ingest.locus / ingest.productive_only in the config",
        )
    label = f"cells (distinct cell_id; QC counts are {source or 'rows'})" if single_cell else source
    label = count_source or label
    qc = qc_table(fated, count_source=label).with_columns(
        clonotype_definition=pl.lit(definition),
        clonotypes=pl.lit(0, dtype=pl.Int64),
        v_ambiguous_rows=pl.lit(int(kept["v_ambiguous"].sum()), dtype=pl.Int64),
        j_ambiguous_rows=pl.lit(int(kept["j_ambiguous"].sum()), dtype=pl.Int64),
        v_missing_rows=pl.lit(int((kept["v_gene"] == "").sum()), dtype=pl.Int64),
        j_missing_rows=pl.lit(int((kept["j_gene"] == "").sum()), dtype=pl.Int64),
    )
    evidence = frequency_evidence
    if evidence is None and SOURCE_FREQUENCY in raw.columns:
        evidence = FrequencyEvidence(
            counts=typed["count"],
            source=SOURCE_FREQUENCY,
            frequencies=raw[SOURCE_FREQUENCY].cast(pl.Float64, strict=False),
        )
    truncation = assess(typed["count"], evidence, single_cell=single_cell)
    if truncation.truncated:
        log.warning("%s: %s", path, truncation.note)
    clonotypes = define_clonotypes(kept, definition=definition, depth=truncation.full_depth)
    qc = qc.with_columns(clonotypes=pl.lit(clonotypes.height, dtype=pl.Int64), **truncation.qc_columns())
    return IngestResult(clonotypes=clonotypes, qc=qc, truncation=truncation)
