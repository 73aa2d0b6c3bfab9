"""Exports with one row per sequence or without a header: IMGT/HighV-QUEST and IMSEQ -> AIRR columns.

* ``imgt`` - IMGT/HighV-QUEST result files ``1_Summary.txt``, ``3_Nt-sequences.txt`` and
  ``5_AA-sequences.txt`` (one row per submitted sequence, so each row counts 1, as in VDJtools'
  ``ImgtHighVQuestParser.groovy``, ``mikessh/vdjtools``, which reads ``3_Nt-sequences``: column 3
  ``V-GENE and allele``, 4 ``J-GENE and allele``, 5 ``D-GENE and allele``, 15 ``JUNCTION``; the same
  order is in bcRep's description of ``5_AA-sequences``: ``Sequence number``, ``Sequence ID``,
  ``Functionality``/``V-DOMAIN Functionality``, V, J, D, ``V-D-J-REGION``, ..., ``CDR3-IMGT``,
  ``JUNCTION``). IMGT's JUNCTION runs from the 2nd-CDR3 anchor Cys to the J-Trp/Phe inclusive (the AIRR
  junction). Nucleotide files carry it in ``JUNCTION``; ``5_AA-sequences`` carries the amino acids in
  ``JUNCTION`` and ``1_Summary`` in ``AA JUNCTION``: nucleotides or amino acids are told apart by their
  letters. Gene cells read ``Homsap TRBV5-1*01 F`` or ``Homsap TRBV6-5*01 F, or Homsap TRBV6-6*01 F``:
  the species word and the functionality are dropped, the ``or`` alternatives kept as ties.
  ``V-DOMAIN Functionality`` ``productive`` -> T, ``unproductive`` -> F, ``No results``/empty -> empty
  (the productive flag is then judged from the junction's translation).
* ``imseq`` - IMSEQ clonotype output (no header): ``V:CDR3nt:J<TAB>count`` per line, the layout
  VDJtools' ``ImSeqParser.groovy`` splits on ``[: \\t]`` (fields 0 V, 1 CDR3 nt, 2 J, 3 count; no D and
  no frequency, "incomplete V/J names" per ``misc/Software.groovy``). The junction is translated.
  VDJtools' ``VidjilParser.groovy`` reads Vidjil's clone lines the same way (``V:CDR3nt:J count``, a space
  before the count): they are read here too.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from tcrtrack.errors import InputFileError
from tcrtrack.formats._common import (
    ConvertedRepertoire,
    counts_to_text,
    finish,
    first_line,
    parse_counts,
    productive_from_junction_aa,
    read_table,
    require,
)
from tcrtrack.genes import translate_junctions

IMGT_GENES = {"v_call": "V-GENE and allele", "j_call": "J-GENE and allele", "d_call": "D-GENE and allele"}
IMGT_FUNCTIONALITY = ("V-DOMAIN Functionality", "Functionality")
IMSEQ_LINE = re.compile(r"^[^\t :]+:[ACGTNacgtn]+:[^\t :]+[\t ]+\d+(\.\d+)?$")
# one clonotype line: VDJtools splits IMSEQ and Vidjil lines on [: \t] (a tab or a space before the count)
_IMSEQ_FIELDS = r"^([^\t :]*):([^\t :]*):([^\t :]*)[\t ]+(\S+)$"
_NUCLEOTIDES = r"^[ACGTNacgtn]+$"


def _imgt_gene(column: str) -> pl.Expr:
    """``Homsap TRBV6-5*01 F, or Homsap TRBV6-6*01 F`` -> ``TRBV6-5*01,TRBV6-6*01``."""
    parts = (
        pl.col(column)
        .str.split(" or ")
        .list.eval(pl.element().str.strip_chars(" ,").str.extract(r"((?:TR|IG)[A-Z0-9/\-]+(?:\*\d+)?)", 1))
    )
    joined = parts.list.drop_nulls().list.unique(maintain_order=True).list.join(",")
    return pl.when(joined == "").then(pl.lit(None, dtype=pl.Utf8)).otherwise(joined)


def convert_imgt(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert an IMGT/HighV-QUEST ``1_Summary``/``3_Nt-sequences``/``5_AA-sequences`` file."""
    wanted = ["Sequence ID", *IMGT_GENES.values(), *IMGT_FUNCTIONALITY, "JUNCTION", "AA JUNCTION"]
    raw = read_table(path, separator="\t", wanted=wanted, null_values=("", "null", "No results"))
    require(path, raw, "imgt", ["V-GENE and allele"], ["J-GENE and allele"], ["JUNCTION", "AA JUNCTION"])
    junction = pl.col("JUNCTION") if "JUNCTION" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    is_nt = junction.str.contains(_NUCLEOTIDES)
    aa = pl.col("AA JUNCTION") if "AA JUNCTION" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    frame = raw.select(
        sequence_id=pl.col("Sequence ID") if "Sequence ID" in raw.columns else pl.lit(None, dtype=pl.Utf8),
        **{
            target: _imgt_gene(name) if name in raw.columns else pl.lit(None, dtype=pl.Utf8)
            for target, name in IMGT_GENES.items()
        },
        junction=pl.when(is_nt).then(junction.str.to_uppercase()),
        junction_aa=pl.coalesce(aa, pl.when(~is_nt).then(junction)).str.to_uppercase(),
        duplicate_count=pl.lit("1"),
    )
    frame = frame.with_columns(junction_aa=translate_junctions(frame))
    functionality = next((name for name in IMGT_FUNCTIONALITY if name in raw.columns), None)
    judged = productive_from_junction_aa()
    if functionality is not None:
        status = raw[functionality].str.to_lowercase()
        frame = (
            frame.with_columns(status.alias("_status"))
            .with_columns(
                productive=pl.when(pl.col("_status").str.starts_with("productive"))
                .then(pl.lit("T"))
                .when(pl.col("_status").str.starts_with("unproductive"))
                .then(pl.lit("F"))
                .otherwise(judged)
            )
            .drop("_status")
        )
    else:
        frame = frame.with_columns(productive=judged)
    return finish(
        frame,
        fmt="imgt",
        locus=locus,
        species=species,
        count_source="rows (IMGT/HighV-QUEST: one sequence per row, 1 each)",
        notes=[],
    )


def is_imseq(line: str) -> bool:
    """The first line of an IMSEQ clonotype file (``V:CDR3nt:J<TAB>count``)."""
    return bool(IMSEQ_LINE.match(line.strip()))


def convert_imseq(path: Path, *, locus: str, species: str) -> ConvertedRepertoire:
    """Convert an IMSEQ clonotype file (headerless ``V:CDR3nt:J<TAB>count``)."""
    first_line(path)  # missing or empty file: the usual one-line error
    try:
        lines = pl.read_csv(
            path,
            separator="\x1f",
            has_header=False,
            new_columns=["line"],
            quote_char=None,
            infer_schema=False,
            truncate_ragged_lines=False,
        )["line"].str.strip_chars()
    except (pl.exceptions.PolarsError, OSError, EOFError) as error:
        raise InputFileError(
            path,
            f"cannot be parsed as IMSEQ ({str(error).splitlines()[0]})",
            "IMSEQ clonotype lines are V:CDR3nt:J, a tab (or a space), and the count",
        ) from None
    raw = pl.DataFrame({"line": lines}).with_row_index("number", offset=1).filter(pl.col("line").fill_null("") != "")
    fields = raw["line"].str.extract_groups(_IMSEQ_FIELDS).struct.rename_fields(["v", "junction", "j", "count"])
    raw = raw.with_columns(fields.alias("fields")).unnest("fields")
    bad = raw["v"].is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        line = raw["line"][row][:80]
        raise InputFileError(
            path,
            f"line {raw['number'][row]}: '{line}' is not V:CDR3nt:J and a count",
            "IMSEQ clonotype lines are V:CDR3nt:J, a tab (or a space), and the count",
        )
    raw = raw.with_columns(pl.col("junction").str.to_uppercase()).with_columns(
        pl.col(pl.Utf8).str.strip_chars().replace("", None)
    )
    counts, rounded = parse_counts(path, raw, "count")
    frame = raw.select(v_call="v", j_call="j", junction="junction", duplicate_count=counts_to_text(counts, raw.height))
    frame = frame.with_columns(junction_aa=translate_junctions(frame))
    frame = frame.with_columns(productive=productive_from_junction_aa())
    notes = [f"{rounded} fractional counts rounded to whole numbers"] if rounded else []
    return finish(frame, fmt="imseq", locus=locus, species=species, count_source="count (IMSEQ: reads)", notes=notes)
