"""Gene calls and junction translation.

AIRR ``v_call``/``j_call`` hold IMGT names with alleles, possibly several comma-separated
equally good calls (``TRBV6-2*01,TRBV6-3*01``). A clonotype keeps the gene of the first
call without its allele; the row is *ambiguous* when the calls name more than one gene
(alleles of one gene are not ambiguous at gene level).
"""

from __future__ import annotations

import polars as pl

LOCI: tuple[str, ...] = ("TRA", "TRB", "TRG", "TRD", "IGH", "IGK", "IGL")
"""AIRR ``locus`` values (the AIRR controlled vocabulary, without IGI); a V/J call's first three letters
name its locus (``TRBV5-1`` -> ``TRB``)."""

_ALLELE = r"\*.*$"


def _first_gene(column: str) -> pl.Expr:
    return pl.col(column).fill_null("").str.split(",").list.first().str.strip_chars().str.replace(_ALLELE, "")


def _is_ambiguous(column: str) -> pl.Expr:
    genes = (
        pl.col(column)
        .fill_null("")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().str.replace(_ALLELE, ""))
        .list.unique()
    )
    return genes.list.len() > 1


def normalise_gene_calls(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``v_gene``, ``j_gene`` (first call, allele stripped; ``""`` when empty) and ``v/j_ambiguous``."""
    return frame.with_columns(
        v_gene=_first_gene("v_call"),
        j_gene=_first_gene("j_call"),
        v_ambiguous=_is_ambiguous("v_call"),
        j_ambiguous=_is_ambiguous("j_call"),
    )


def translate(junction: str) -> str | None:
    """Translate a junction in frame 1 with the standard genetic code (NCBI table 1).

    A length that is not a multiple of 3 is out of frame and gives ``_`` at the end, the
    convention of IgBLAST/AIRR for frameshifted junctions; stops are ``*``; a codon with a degenerate
    base (``N``) is ``X``.
    """
    if not junction:
        return None
    from skbio import DNA  # deferred: scikit-bio is slow to import

    usable = len(junction) - len(junction) % 3
    try:
        protein = str(DNA(junction[:usable].upper()).translate(1))
    except ValueError:  # characters that are not IUPAC nucleotides
        return None
    except NotImplementedError:  # degenerate bases (N, R, ...), which scikit-bio does not translate: codon -> X
        codons = (junction[i : i + 3].upper() for i in range(0, usable, 3))
        protein = "".join("X" if set(codon) - set("ACGT") else str(DNA(codon).translate(1)) for codon in codons)
    return protein + ("_" if usable != len(junction) else "")


def translate_junctions(frame: pl.DataFrame) -> pl.Expr:
    """``junction_aa``, translated from ``junction`` only where ``junction_aa`` is empty."""
    given = pl.col("junction_aa") if "junction_aa" in frame.columns else pl.lit(None, dtype=pl.Utf8)
    if "junction" not in frame.columns:
        return given
    needs = frame.filter(given.is_null() & pl.col("junction").is_not_null())["junction"].unique()
    if needs.len() == 0:
        return given
    lookup = pl.DataFrame({"junction": needs, "aa": [translate(seq) for seq in needs]})
    mapping = dict(lookup.iter_rows())
    return pl.coalesce(given, pl.col("junction").replace_strict(mapping, default=None, return_dtype=pl.Utf8))
