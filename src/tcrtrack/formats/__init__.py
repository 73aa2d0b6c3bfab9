"""Read what labs actually have: vendor repertoire exports -> AIRR Rearrangement columns.

Each converter turns one export format into a polars frame of AIRR-named string columns (those
:mod:`tcrtrack.ingest` reads, plus ``sequence_id`` and ``d_call``), so that ingest's fates, QC
identity and clonotype definitions apply unchanged. Gene names are standardised to IMGT with
tidytcells, once per distinct name. Per-format decisions are documented in each module
(:mod:`~tcrtrack.formats.immunoseq`, :mod:`~tcrtrack.formats.mixcr`, :mod:`~tcrtrack.formats.tenx`,
:mod:`~tcrtrack.formats.vdjtools`, :mod:`~tcrtrack.formats.tables` for MiTCR, MiGEC, MiGMAP,
IgBlastWrapper, TRUST4 and RTCR, :mod:`~tcrtrack.formats.per_sequence` for IMGT/HighV-QUEST and IMSEQ).

>>> result = to_airr("sample.tsv")            # doctest: +SKIP
>>> result.count_source, result.notes         # doctest: +SKIP
>>> write_airr_tsv(result.frame, "sample.airr.tsv")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import gzip
import io
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tcrtrack.errors import InputFileError
from tcrtrack.format_names import FORMATS
from tcrtrack.formats._common import ConvertedRepertoire, first_line, header_columns
from tcrtrack.formats.immunoseq import convert_immunoseq
from tcrtrack.formats.mixcr import OLD_HEADERS as _MIXCR_OLD_HEADERS
from tcrtrack.formats.mixcr import convert_mixcr
from tcrtrack.formats.per_sequence import convert_imgt, convert_imseq, is_imseq
from tcrtrack.formats.tables import convert_table, mitcr_preamble
from tcrtrack.formats.tenx import convert_10x_contigs
from tcrtrack.formats.vdjtools import convert_vdjtools
from tcrtrack.genes import LOCI
from tcrtrack.truncation import SOURCE_FREQUENCY

if TYPE_CHECKING:
    from tcrtrack.ingest import IngestResult

__all__ = [
    "FORMATS",
    "ConvertedRepertoire",
    "convert",
    "detect_format",
    "ingest_converted",
    "to_airr",
    "write_airr_tsv",
]


_CONVERTERS: dict[str, Callable[..., ConvertedRepertoire]] = {
    "immunoseq_v2": functools.partial(convert_immunoseq, version=2),
    "immunoseq_v3": functools.partial(convert_immunoseq, version=3),
    "mixcr": convert_mixcr,
    "10x_contigs": convert_10x_contigs,
    "vdjtools": convert_vdjtools,
    **{
        name: functools.partial(convert_table, fmt=name)
        for name in ("mitcr", "migec", "migmap", "igblast", "trust4", "rtcr")
    },
    "imgt": convert_imgt,
    "imseq": convert_imseq,
}


def _known_formats() -> str:
    return "; ".join(f"{name}: {description}" for name, description in FORMATS.items())


def detect_format(path: Path | str) -> str:
    """Recognise a repertoire export from its header line.

    Parameters
    ----------
    path
        The export, plain or gzipped.

    Returns
    -------
    str
        One of :data:`FORMATS` (:mod:`tcrtrack.format_names`).

    Raises
    ------
    InputFileError
        The file is missing or empty, or its header matches no known format (the message lists them).
    """
    path = Path(path)
    line = first_line(path)
    columns = {_MIXCR_OLD_HEADERS.get(name, name) for name in header_columns(line)}
    columns |= {name.lstrip("#") for name in columns}
    tabbed = "\t" in line
    if {"barcode", "contig_id", "chain"} <= columns and columns & {"cdr3", "cdr3_nt"}:
        return "10x_contigs"
    if tabbed and "sequence_id" in columns and columns & {"v_call", "junction", "junction_aa"}:
        return "airr"
    if tabbed and {"nucleotide", "aminoAcid"} <= columns:
        return "immunoseq_v2"
    if tabbed and ("rearrangement" in columns or ("amino_acid" in columns and columns & {"templates", "reads"})):
        return "immunoseq_v3"
    if (
        tabbed
        and columns & {"aaSeqCDR3", "nSeqCDR3"}
        and columns & {"cloneId", "cloneCount", "readCount", "uniqueMoleculeCount"}
    ):
        return "mixcr"
    if tabbed and {"count", "frequency", "CDR3nt", "CDR3aa", "V", "J"} <= columns:
        return "trust4"
    if tabbed and {"cdr3nt", "cdr3aa", "v", "j"} <= columns and columns & {"in.frame", "no.stop", "v.end.in.cdr3"}:
        return "migmap"
    if tabbed and {"events_count", "cdr3nt", "vSegment"} <= columns:
        return "igblast"
    if tabbed and (
        {"count", "cdr3nt", "cdr3aa", "v", "j"} <= columns or {"Seq. Count", "N Sequence", "AA Sequence"} <= columns
    ):
        return "vdjtools"
    if tabbed and {"Count", "CDR3 nucleotide sequence", "V segments"} <= columns:
        return "migec"
    if tabbed and "CDR3 nucleotide sequence" in columns and "Read count" in columns:
        return "mitcr"
    if tabbed and {"Number of reads", "Junction nucleotide sequence", "V gene"} <= columns:
        return "rtcr"
    if tabbed and {"Sequence ID", "V-GENE and allele"} <= columns:
        return "imgt"
    if is_imseq(line):
        return "imseq"
    if mitcr_preamble(path) == 1 and _has_second_line(path):  # MiTCR: a run line before the header
        if {"Read count", "CDR3 nucleotide sequence"} <= set(header_columns(first_line(path, 1))):
            return "mitcr"
    if "\ufffd" in line or any(unicodedata.category(c) == "Cc" and c != "\t" for c in line):
        kind = " (a ZIP archive: an Excel .xlsx workbook?)" if line.startswith("PK\x03\x04") else ""
        raise InputFileError(
            path,
            f"is not a text table: its first line holds binary data{kind}",
            "export the repertoire as tab-separated text (plain, or gzipped as .gz)",
        )
    shown = ", ".join(header_columns(line)[:6])
    raise InputFileError(
        path,
        f"unknown repertoire format (header starts: {shown})",
        f"give one of the known formats ({_known_formats()}), or name the format explicitly",
    )


def _has_second_line(path: Path) -> bool:
    try:
        first_line(path, 1)
    except InputFileError:
        return False
    return True


def _read_airr(path: Path) -> ConvertedRepertoire:
    from tcrtrack.airr_reader import COUNT_FIELDS, read_airr_tsv

    frame = read_airr_tsv(path, extra=("sequence_id", "d_call", SOURCE_FREQUENCY))
    source = next(
        (name for name in COUNT_FIELDS if name in frame.columns and frame[name].is_not_null().any()),
        "rows (no count column: 1 per row)",
    )
    return ConvertedRepertoire(
        frame=frame,
        count_source=source,
        gene_mapping="as given (AIRR input is IMGT)",
        unmapped_genes=0,
        notes=(),
        fmt="airr",
    )


def to_airr(
    path: Path | str, *, fmt: str = "auto", locus: str = "TRB", species: str = "homosapiens"
) -> ConvertedRepertoire:
    """Convert one repertoire export to AIRR Rearrangement columns.

    Parameters
    ----------
    path
        The export (plain or gzipped).
    fmt
        One of :data:`FORMATS`, or ``auto`` to :func:`detect_format` it.
    locus
        The locus the run analyses: used for the 10x two-chain note, and as the locus of rows
        that name none in a single-locus export whose other rows name none either.
    species
        tidytcells species for gene names (``homosapiens`` or ``musmusculus``).

    Returns
    -------
    ConvertedRepertoire
        The AIRR frame (one row per input row; rows of other loci and non-productive rows are kept
        for ingest to count) with count source, gene mapping and notes.
    """
    path = Path(path)
    if locus not in LOCI:
        raise ValueError(f"locus must be one of {', '.join(LOCI)}, not {locus!r}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "airr":
        return _read_airr(path)
    if fmt not in _CONVERTERS:
        raise InputFileError(path, f"format '{fmt}' is not known", f"use auto or one of {', '.join(FORMATS)}")
    return _CONVERTERS[fmt](path, locus=locus, species=species)


def write_airr_tsv(frame: pl.DataFrame, out: Path | str) -> Path:
    """Write ``frame`` as an AIRR Rearrangement TSV (gzipped when ``out`` ends in ``.gz``).

    Every AIRR required field is written, empty where the frame lacks it (``sequence``,
    ``rev_comp``, alignments, CIGARs); the frame's own columns follow. Nulls are empty fields.
    """
    out = Path(out)
    from tcrtrack.airr_reader import airr_rearrangement_schema

    required = tuple(airr_rearrangement_schema()["required"])
    missing = [pl.lit(None, dtype=pl.Utf8).alias(name) for name in required if name not in frame.columns]
    ordered = frame.with_columns(missing).select(*required, *(c for c in frame.columns if c not in required))
    buffer = io.BytesIO()
    ordered.write_csv(buffer, separator="\t", null_value="", quote_style="necessary")
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(data) if out.suffix == ".gz" else data)
    return out


def convert(
    path: Path | str, out: Path | str, *, fmt: str = "auto", locus: str = "TRB", species: str = "homosapiens"
) -> ConvertedRepertoire:
    """:func:`to_airr` then :func:`write_airr_tsv` (``tcrtrack convert --from FORMAT IN OUT.tsv``)."""
    result = to_airr(path, fmt=fmt, locus=locus, species=species)
    write_airr_tsv(result.frame, out)
    return result


def ingest_converted(
    path: Path | str,
    *,
    fmt: str = "auto",
    locus: str = "TRB",
    productive_only: bool = True,
    min_junction_aa_length: int = 5,
    definition: str = "aa_vj",
    species: str = "homosapiens",
) -> IngestResult:
    """Read any known format and ingest it: the reader behind every sample-sheet ``format``.

    AIRR files go straight to :func:`tcrtrack.ingest.ingest_airr`; other exports are converted
    (:func:`to_airr`) and enter :func:`tcrtrack.ingest.ingest_frame`. The QC row gains the format read,
    the gene-name mapping, the rows with unmapped gene names and the conversion notes; its
    ``count_source`` is the converter's (e.g. ``templates``).
    """
    from tcrtrack.ingest import ingest_airr, ingest_frame

    path = Path(path)
    options = dict(
        locus=locus,
        productive_only=productive_only,
        min_junction_aa_length=min_junction_aa_length,
        definition=definition,
    )
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "airr":
        ingested = ingest_airr(path, **options)
        converted = ConvertedRepertoire(
            frame=pl.DataFrame(),
            count_source="",
            unmapped_genes=0,
            notes=(),
            gene_mapping="as given (AIRR input is IMGT)",
            fmt="airr",
        )
    else:
        converted = to_airr(path, fmt=fmt, locus=locus, species=species)
        label = converted.count_source + ("; QC counts are UMIs" if fmt == "10x_contigs" else "")
        ingested = ingest_frame(
            converted.frame,
            path=path,
            count_source=label,
            locate=lambda index: f"record {index + 1} (converted from {fmt})",
            frequency_evidence=converted.frequency,
            **options,
        )
    qc = ingested.qc.with_columns(
        format=pl.lit(converted.fmt),
        gene_mapping=pl.lit(converted.gene_mapping),
        unmapped_gene_rows=pl.lit(converted.unmapped_genes, dtype=pl.Int64),
        conversion_notes=pl.lit("; ".join(converted.notes) or None, dtype=pl.Utf8),
    )
    return type(ingested)(clonotypes=ingested.clonotypes, qc=qc, truncation=ingested.truncation)
