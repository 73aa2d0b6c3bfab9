"""Pieces every converter shares: the result type, reading, counts, productive flags and loci."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tcrtrack.airr_errors import more_rows
from tcrtrack.airr_reader import count_column
from tcrtrack.errors import InputFileError
from tcrtrack.formats._genes import standardise_calls
from tcrtrack.genes import LOCI
from tcrtrack.truncation import SOURCE_FREQUENCY, FrequencyEvidence, assess

BASE_COLUMNS: tuple[str, ...] = (
    "sequence_id",
    "locus",
    "productive",
    "v_call",
    "d_call",
    "j_call",
    "junction",
    "junction_aa",
    "duplicate_count",
)
"""Columns of every converted frame, in this order (AIRR Rearrangement names, all strings)."""


@dataclass(frozen=True)
class ConvertedRepertoire:
    """A vendor export in AIRR Rearrangement terms.

    Attributes
    ----------
    frame
        One row per input row (10x: per contig in a cell), AIRR-named string columns
        (:data:`BASE_COLUMNS`, plus ``cell_id``/``umi_count``/``consensus_count`` where the format has them).
        Empty values are null.
    count_source
        What the count column holds, e.g. ``templates``, ``reads (templates absent)``, ``cloneCount``,
        ``cells (distinct barcodes)``.
    gene_mapping
        How gene names were standardised, e.g. ``tidytcells (IMGT)``.
    unmapped_genes
        Rows whose V or J name tidytcells could not standardise (kept as given).
    notes
        One line per conversion decision a user should know about.
    fmt
        The format that was read.
    frequency
        The export's frequencies relative to the whole sample and the counts they refer to, when it has
        them: the evidence :mod:`tcrtrack.truncation` judges a truncated file by. When they show the file
        truncated, the frame also carries them as ``source_frequency``
        (:data:`tcrtrack.truncation.SOURCE_FREQUENCY`), so that its AIRR TSV is judged the same way.
    """

    frame: pl.DataFrame
    count_source: str
    gene_mapping: str
    unmapped_genes: int
    notes: tuple[str, ...] = ()
    fmt: str = ""
    frequency: FrequencyEvidence | None = None


def first_line(path: Path, skip: int = 0) -> str:
    """The header line of a plain or gzipped text file (BOM and line end removed), after ``skip`` lines."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as handle:
            for _ in range(skip):
                handle.readline()
            raw = handle.readline()
    except FileNotFoundError:
        raise InputFileError(path, "does not exist", "check the path") from None
    except (OSError, EOFError) as error:
        raise InputFileError(path, f"cannot be read ({error})", "re-export or re-download the file") from None
    line = raw.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not line.strip():
        raise InputFileError(path, "is empty (no header line)", "give the complete export, header included")
    return line


def header_columns(line: str) -> list[str]:
    """Column names of a header line: tab-separated if it has a tab, else comma-separated."""
    separator = "\t" if "\t" in line else ","
    return [name.strip().strip('"') for name in line.split(separator)]


def read_table(
    path: Path,
    *,
    separator: str,
    wanted: Sequence[str],
    null_values: Sequence[str],
    quote_char: str | None = None,
    rename: dict[str, str] | None = None,
    skip_rows: int = 0,
) -> pl.DataFrame:
    """Read the ``wanted`` columns present in ``path`` as strings (vendor null tokens -> null), the header
    being line ``skip_rows + 1``."""
    header = header_columns(first_line(path, skip_rows))
    present = [name for name in header if (rename or {}).get(name, name) in wanted]
    rename = {old: new for old, new in (rename or {}).items() if old in present}
    try:
        frame = pl.read_csv(
            path,
            separator=separator,
            columns=present,
            infer_schema=False,
            quote_char=quote_char,
            null_values=list(null_values),
            truncate_ragged_lines=False,
            skip_rows=skip_rows,
        )
    except (pl.exceptions.PolarsError, OSError, EOFError) as error:
        raise InputFileError(
            path,
            f"cannot be parsed ({str(error).splitlines()[0]})",
            "check for truncated content and rows with a wrong number of fields",
        ) from None
    frame = frame.rename(rename)
    return frame.with_columns(pl.col(pl.Utf8).str.strip_chars().replace("", None))


def require(path: Path, frame: pl.DataFrame, fmt: str, *groups: Sequence[str]) -> None:
    """Each group names alternatives, one of which must be a column; else a clear error."""
    missing = [
        " or ".join(f"'{name}'" for name in group)
        for group in groups
        if not any(name in frame.columns for name in group)
    ]
    if missing:
        raise InputFileError(
            path,
            f"{fmt} export lacks column(s) {', '.join(missing)}",
            f"export the file again with these columns, or check that it is really {fmt}",
        )


def parse_counts(path: Path, frame: pl.DataFrame, column: str) -> tuple[pl.Series, int]:
    """Column -> whole non-negative counts (Int64) and how many fractional values were rounded.

    MiXCR distributes ambiguous reads fractionally (``cloneCount`` 12.5); fractions are rounded half
    up, and a positive count never rounds to 0. Anything that is not a number >= 0 is an error naming its row.
    """
    raw = frame[column]
    number = raw.cast(pl.Float64, strict=False)
    bad = raw.is_not_null() & (number.is_null() | number.is_nan() | number.is_infinite() | (number < 0))
    if bad.any():
        flagged = bad.arg_true()
        row = int(flagged[0])
        more = more_rows([f"row {int(i) + 2}" for i in flagged[1:6]], len(flagged) - 1)
        raise InputFileError(
            path,
            f"row {row + 2}, column '{column}': '{raw[row]}' is not a count >= 0{more}",
            f"{column} must hold non-negative numbers",
        )
    fractional = int((number != number.floor()).sum())
    whole = (number + 0.5).floor()
    whole = pl.select(pl.when((number > 0) & (whole < 1)).then(1.0).otherwise(whole)).to_series()
    return whole.cast(pl.Int64).alias(column), fractional


def frequency_column(frame: pl.DataFrame, column: str | None) -> str | None:
    """``column`` when ``frame`` has it and some value is a number (the export's whole-sample frequency)."""
    if column is None or column not in frame.columns:
        return None
    values = frame[column].str.strip_suffix("%").cast(pl.Float64, strict=False)
    return None if values.is_null().all() else column


def any_positive(counts: pl.Series) -> bool:
    """True when some count is > 0 (a count column of only 0/empty is treated as absent)."""
    return bool((counts.fill_null(0) > 0).any())


def productive_from_status(column: str) -> pl.Expr:
    """Adaptive ``In`` -> ``T``; ``Out``/``Stop`` -> ``F``; anything else -> null."""
    status = pl.col(column).str.to_lowercase()
    return (
        pl.when(status == "in")
        .then(pl.lit("T"))
        .when(status.is_in(["out", "stop"]))
        .then(pl.lit("F"))
        .otherwise(pl.lit(None, dtype=pl.Utf8))
    )


def productive_from_junction_aa(column: str = "junction_aa") -> pl.Expr:
    """From the CDR3 alone: a stop (``*``) or frameshift mark (``_ ~ ?``) -> ``F``; else ``T``; none -> null."""
    aa = pl.col(column)
    return (
        pl.when(aa.is_null())
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(aa.str.contains(r"[*_~?]"))
        .then(pl.lit("F"))
        .otherwise(pl.lit("T"))
    )


def truthy(column: str) -> pl.Expr:
    """``True``/``true``/``T``/``1`` -> True, anything else (``False``, ``None``, empty) -> False."""
    return pl.col(column).str.to_lowercase().is_in(["true", "t", "1"]).fill_null(False)


def _locus_from_calls() -> pl.Expr:
    def prefix(column: str) -> pl.Expr:
        head = pl.col(column).str.slice(0, 3)
        return pl.when(head.is_in(LOCI)).then(head)

    return pl.coalesce(prefix("v_call"), prefix("j_call"))


def counts_to_text(counts: pl.Series | None, height: int) -> pl.Series:
    """Int64 counts (or none) as the string column the frame carries."""
    if counts is None:
        return pl.Series([None] * height, dtype=pl.Utf8)
    return counts.cast(pl.Utf8)


def _evidence(frame: pl.DataFrame, source: pl.DataFrame | None, column: str | None) -> FrequencyEvidence | None:
    """The export's whole-sample frequencies (``column`` of ``source``) with the counts ingest will use."""
    if source is None or frequency_column(source, column) is None:
        return None
    count = count_column(frame)
    if count is None:
        return None
    values = source[column].str.strip_suffix("%").cast(pl.Float64, strict=False)
    return FrequencyEvidence(counts=frame[count].cast(pl.Int64, strict=False), frequencies=values, source=column)


def finish(
    frame: pl.DataFrame,
    *,
    fmt: str,
    locus: str,
    species: str,
    count_source: str,
    notes: list[str],
    extra_columns: Sequence[str] = (),
    single_locus_file: bool = True,
    frequency: str | None = None,
    source: pl.DataFrame | None = None,
) -> ConvertedRepertoire:
    """Standardise gene names, fill ``locus`` and ``sequence_id``, and cast to the AIRR string frame.

    ``locus`` comes from the vendor's own per-row locus/chain where the converter set one, else from
    the first V (then J) call's IMGT prefix. In a single-locus export (immunoSEQ, MiXCR, VDJtools) a
    row with neither gets the file's most common locus (or ``locus`` when no row has one); 10x
    contigs without one stay empty so that ingest counts them as ``wrong_locus``. ``frequency`` names the
    export's whole-sample frequency column (of ``source``, the raw rows aligned with ``frame``), written
    as ``source_frequency``.
    """
    for name in (*BASE_COLUMNS, *extra_columns):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))
    frame, unmapped, family_rows = standardise_calls(frame, species=species)
    frame = frame.with_columns(locus=pl.coalesce(pl.col("locus"), _locus_from_calls()))
    missing = int(frame["locus"].is_null().sum())
    if single_locus_file and missing:
        known = frame["locus"].drop_nulls()
        fill = str(known.mode().sort()[0]) if known.len() else locus
        frame = frame.with_columns(pl.col("locus").fill_null(fill))
        notes.append(f"{missing} rows had no locus and no recognisable V/J call: given the file's locus {fill}")
    if family_rows:
        notes.append(
            f"{family_rows} rows name a V/D/J only to family level (Adaptive 'TCRBV03'); written as "
            "the IMGT subgroup (TRBV3), which no gene-level call equals"
        )
    if unmapped:
        notes.append(f"{unmapped} rows have a V or J name tidytcells could not standardise (kept as given)")
    row_number = pl.int_range(1, pl.len() + 1).cast(pl.Utf8)
    frame = frame.with_columns(sequence_id=pl.coalesce(pl.col("sequence_id"), row_number))
    columns = [*BASE_COLUMNS, *(name for name in extra_columns if name not in BASE_COLUMNS)]
    evidence = _evidence(frame, source, frequency)
    if evidence is not None and assess(evidence.counts, evidence).full_depth is not None:
        assert source is not None and frequency is not None
        frame = frame.with_columns(source[frequency].str.strip_suffix("%").alias(SOURCE_FREQUENCY))
        columns.append(SOURCE_FREQUENCY)
    out = frame.select(pl.col(name).cast(pl.Utf8) for name in columns)
    return ConvertedRepertoire(
        frame=out,
        count_source=count_source,
        gene_mapping="tidytcells (IMGT)",
        unmapped_genes=unmapped,
        notes=tuple(notes),
        fmt=fmt,
        frequency=evidence,
    )
