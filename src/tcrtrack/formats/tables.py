"""Clonotype tables with a count, a CDR3 and V/D/J columns: MiTCR, MiGEC, MiGMAP, IgBlastWrapper, TRUST4, RTCR.

Every layout below is one row per clonotype, tab-separated, with its count and (except RTCR) a frequency
relative to the whole sample (kept as evidence of truncation, :mod:`tcrtrack.truncation`). The CDR3 of all of them
runs from the conserved Cys to the Phe/Trp inclusive (VDJtools' convention for these inputs, and
TRUST4's own AIRR export writes its report's ``CDR3nt`` as ``junction``), i.e. it is the AIRR junction.
Ties are comma-separated and kept (ingest marks them ambiguous). Sources of each layout:

* ``mitcr`` - MiTCR ``-pset`` exports. VDJtools (``mikessh/vdjtools``, ``misc/Software.groovy`` MiTcr
  and ``io/parser/MiTcrParser.groovy``) reads column 0 count, 1 frequency, 2 CDR3 nt, 5 CDR3 aa, 7 V,
  9 J, 11 D, after 2 header lines; the header names are MiTCR's (``Read count``, ``Percentage``,
  ``CDR3 nucleotide sequence``, ``CDR3 nucleotide quality``, ``Min quality``, ``CDR3 amino acid
  sequence``, ``V alleles``, ``V segments``, ``J alleles``, ``J segments``, ``D alleles``, ``D segments``,
  ...). A first line before the header (MiTCR's run line) is skipped. ``~`` marks a frameshift, ``*`` a stop.
* ``migec`` - MiGEC ``CdrBlast`` output; the column names are listed in VDJtools' ``MiGecParser.groovy``:
  ``Count``, ``Percentage``, ``CDR3 nucleotide sequence``, ``CDR3 amino acid sequence``, ``V segments``,
  ``J segments``, ``D segments``, ..., ``Good events``, ``Total events``, ``Good reads``, ``Total reads``.
  ``Count`` is the UMI (event) count of assembled data; ``?`` marks a frameshift.
* ``migmap`` - MiGMAP (the IgBLAST wrapper) clonotype table, columns as documented in its README
  (``mikessh/migmap``, "Output format"): ``freq``, ``count`` (reads), ``v``, ``d``, ``j``, ``cdr3nt``,
  ``cdr3aa``, ..., ``in.frame``, ``no.stop``, ``complete``; productive = in.frame and no.stop.
* ``igblast`` - IgBlastWrapper (MiGMAP's predecessor) table, columns as in VDJtools'
  ``IgBlastParser.groovy``: ``#reads_count reads_percent events_count events_percent cdr1nt cdr2nt cdr3nt
  cdr1aa cdr2aa cdr3aa inFrame noStop complete vSegment dSegment jSegment ...``; VDJtools counts
  ``events_count`` (UMIs, reads without them) with ``events_percent``; productive = inFrame and noStop.
  (IgBLAST's own ``-outfmt 19`` is AIRR and goes through the AIRR reader.)
* ``trust4`` - TRUST4 ``*_report.tsv`` (``liulab-dfci/TRUST4``, ``trust-simplerep.pl``): ``#count
  frequency CDR3nt CDR3aa V D J C cid cid_full_length``. ``count`` is reads (cells in single-cell
  pseudo-bulk), fractional counts are rounded; ``CDR3aa`` is ``partial`` (no complete CDR3) or
  ``out_of_frame`` for non-productive rows, ``_`` is a stop and ``?`` an ambiguous codon; ``*`` is a
  missing gene. ``frequency`` is relative to the rows of the same receptor class (TR and IG apart), so
  only the TR rows serve as truncation evidence. TRUST4's ``*_airr.tsv`` is AIRR (junction, junction_aa,
  consensus_count) and goes through the AIRR reader.
* ``rtcr`` - RTCR ``results.tsv``: the header is RTCR's ``output_hdr`` (``uubram/RTCR``, ``rtcr/config.ini``):
  ``Number of reads``, ``Amino acid sequence``, ``V gene``, ``J gene``, ``Junction nucleotide sequence``,
  ``V gene end position``, ``J gene start position``, ``Frame``, ``Number of stop codons``, ...; with
  RTCR's default ``include_cysphe = true`` the junction includes the Cys and Phe. As VDJtools'
  ``RtcrParser.groovy`` does ("have no idea how OOF are represented in RTCR, lets play safe"), the
  amino acids are translated from the junction, which decides productivity; there is no frequency.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tcrtrack.errors import InputFileError
from tcrtrack.formats._common import (
    ConvertedRepertoire,
    counts_to_text,
    finish,
    first_line,
    header_columns,
    parse_counts,
    productive_from_junction_aa,
    read_table,
    require,
    truthy,
)
from tcrtrack.genes import translate_junctions

NULL_VALUES = ("", ".", "NA", "*", "null")


@dataclass(frozen=True)
class Layout:
    """Where one tool writes each field (header names, ``#`` prefix removed)."""

    fmt: str
    count: str
    count_label: str
    frequency: str | None
    cdr3nt: str | None
    cdr3aa: str | None
    v: str
    d: str | None
    j: str
    flags: tuple[str, ...] = ()  # boolean columns that must all be true for a productive row
    positions: tuple[int, ...] = ()  # read by position (MiTCR): count, freq, cdr3nt, cdr3aa, v, j, d


LAYOUTS: dict[str, Layout] = {
    "mitcr": Layout(
        "mitcr",
        "Read count",
        "Read count (reads)",
        "Percentage",
        "CDR3 nucleotide sequence",
        "CDR3 amino acid sequence",
        "V segments",
        "D segments",
        "J segments",
        positions=(0, 1, 2, 5, 7, 9, 11),
    ),
    "migec": Layout(
        "migec",
        "Count",
        "Count (MiGEC: UMIs of assembled data, else reads)",
        "Percentage",
        "CDR3 nucleotide sequence",
        "CDR3 amino acid sequence",
        "V segments",
        "D segments",
        "J segments",
    ),
    "migmap": Layout(
        "migmap",
        "count",
        "count (MiGMAP: reads)",
        "freq",
        "cdr3nt",
        "cdr3aa",
        "v",
        "d",
        "j",
        flags=("in.frame", "no.stop"),
    ),
    "igblast": Layout(
        "igblast",
        "events_count",
        "events_count (IgBlastWrapper: UMIs, else reads)",
        "events_percent",
        "cdr3nt",
        "cdr3aa",
        "vSegment",
        "dSegment",
        "jSegment",
        flags=("inFrame", "noStop"),
    ),
    "trust4": Layout("trust4", "count", "count (TRUST4: reads)", "frequency", "CDR3nt", "CDR3aa", "V", "D", "J"),
    "rtcr": Layout(
        "rtcr",
        "Number of reads",
        "Number of reads (RTCR)",
        None,
        "Junction nucleotide sequence",
        None,
        "V gene",
        None,
        "J gene",
    ),
}


def mitcr_preamble(path: Path) -> int:
    """Lines before MiTCR's header: 1 when the first line is not the header (MiTCR's run line), else 0."""
    return 0 if "CDR3 nucleotide sequence" in header_columns(first_line(path)) else 1


def _read(path: Path, layout: Layout) -> pl.DataFrame:
    skip = mitcr_preamble(path) if layout.fmt == "mitcr" else 0
    header = header_columns(first_line(path, skip))
    fields = [layout.count, layout.frequency, layout.cdr3nt, layout.cdr3aa, layout.v, layout.j, layout.d]
    rename = {name: name.lstrip("#") for name in header if name.startswith("#")}
    if layout.positions:  # MiTCR: VDJtools reads by position, whatever the header calls them
        if len(header) <= max(layout.positions):
            raise InputFileError(
                path,
                f"mitcr export has {len(header)} columns, fewer than MiTCR's 12",
                "export the sample again from MiTCR, or check that it is really MiTCR",
            )
        rename = {
            header[position]: name for position, name in zip(layout.positions, fields, strict=True) if name is not None
        }
    wanted = [name for name in (*fields, *layout.flags) if name is not None]
    return read_table(path, separator="\t", wanted=wanted, null_values=NULL_VALUES, rename=rename, skip_rows=skip)


def convert_table(path: Path, *, fmt: str, locus: str, species: str) -> ConvertedRepertoire:
    """Convert a MiTCR, MiGEC, MiGMAP, IgBlastWrapper, TRUST4 or RTCR clonotype table (``fmt``)."""
    layout = LAYOUTS[fmt]
    raw = _read(path, layout)
    require(
        path,
        raw,
        fmt,
        [layout.count],
        [name for name in (layout.cdr3aa, layout.cdr3nt) if name],
        [layout.v],
        [layout.j],
    )
    counts, rounded = parse_counts(path, raw, layout.count)
    notes = [f"{rounded} fractional counts rounded to whole numbers"] if rounded else []

    def column(name: str | None) -> pl.Expr:
        return pl.col(name) if name and name in raw.columns else pl.lit(None, dtype=pl.Utf8)

    aa = column(layout.cdr3aa)
    if fmt == "trust4":  # 'partial'/'out_of_frame' are flags, not sequences; '_' is TRUST4's stop codon
        flagged = aa.is_in(["partial", "out_of_frame"])
        aa = pl.when(flagged).then(pl.lit(None, dtype=pl.Utf8)).otherwise(aa.str.replace_all("_", "*", literal=True))
    frame = raw.select(
        v_call=column(layout.v),
        d_call=column(layout.d),
        j_call=column(layout.j),
        junction=column(layout.cdr3nt).str.to_uppercase(),
        junction_aa=aa,
        duplicate_count=counts_to_text(counts, raw.height),
    )
    if layout.cdr3aa is None:  # RTCR: translate the junction (VDJtools does the same)
        frame = frame.with_columns(junction_aa=translate_junctions(frame))
    frame = frame.with_columns(productive=productive_from_junction_aa())
    if fmt == "trust4" and layout.cdr3aa in raw.columns:
        frame = frame.with_columns(
            productive=pl.when(raw[layout.cdr3aa].is_in(["partial", "out_of_frame"]))
            .then(pl.lit("F"))
            .otherwise(pl.col("productive"))
        )
    flags = [name for name in layout.flags if name in raw.columns]
    if flags:
        judged = raw.select(
            every=pl.all_horizontal(truthy(name) for name in flags),
            known=pl.all_horizontal(pl.col(name).is_not_null() for name in flags),
        )
        frame = frame.with_columns(
            productive=pl.when(~judged["known"])
            .then(pl.col("productive"))
            .when(judged["every"])
            .then(pl.lit("T"))
            .otherwise(pl.lit("F"))
        )
    source = raw
    if fmt == "trust4" and layout.frequency in raw.columns:  # frequencies are per receptor class: TR rows only
        tcr = pl.coalesce(column(layout.v), column(layout.j)).str.starts_with("TR").fill_null(False)
        source = raw.with_columns(pl.when(tcr).then(pl.col(layout.frequency)).alias(layout.frequency))
    return finish(
        frame,
        fmt=fmt,
        locus=locus,
        species=species,
        count_source=layout.count_label,
        notes=notes,
        frequency=layout.frequency,
        source=source,
    )
