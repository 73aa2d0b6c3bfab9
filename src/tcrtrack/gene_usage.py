"""V and J gene usage, V-J pairing and CDR3 spectratype of repertoires, and divergence between them.

Input is a clonotype table (``results/clonotypes/{patient}/{sample}.parquet``: ``v_gene``, ``j_gene``,
``junction_aa``, ``count``, optionally ``junction``, ``v_ambiguous``, ``j_ambiguous``). Usage is weighted
two ways: by **clonotypes** (each clonotype counts 1: the diversity of rearrangements using a gene) and
by **templates** (each clonotype counts its ``count``: the share of cells/molecules). Shares are the
weights over their total, so they sum to 1 over the genes used.

Ambiguous calls. Ingest keeps the first gene of a multi-gene call and sets ``v_ambiguous`` /
``j_ambiguous`` (README, "gene calls"); tables from elsewhere may carry the comma-separated names
themselves (``TRBV6-2,TRBV6-3``). ``ambiguous=``

* ``"first"`` (default, the README's rule): the first named gene (allele stripped) takes the weight;
* ``"split"``: the weight is split equally over the distinct genes named (``1/k`` each); a call marked
  ambiguous but naming one gene (ingest already reduced it) stays whole;
* ``"exclude"``: ambiguous clonotypes (flag set or several genes named) are left out of the shares.

In every mode the ambiguous clonotypes and their templates are counted (:func:`usage_qc`), and calls
with no gene (empty or null) are left out of the shares and counted as missing.

Divergence: Jensen-Shannon, ``JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M)``, ``M = (P + Q) / 2``, base 2
(in [0, 1]; Lin 1991, IEEE Trans Inf Theory 37:145). ``scipy.spatial.distance.jensenshannon`` returns the
JS *distance* ``sqrt(JSD)``; both are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import polars as pl

Segment = Literal["v", "j", "vj"]
Ambiguity = Literal["first", "split", "exclude"]
Weight = Literal["clonotypes", "templates"]
#: Separator of the V and J genes in ``vj`` usage (``TRBV20-1|TRBJ2-7``); IMGT names may contain "/".
PAIR_SEPARATOR = "|"
_ALLELE = r"\*.*$"


def _genes(column: str) -> pl.Expr:
    """The distinct genes named in a call (comma-separated, alleles stripped, order kept)."""
    return (
        pl.col(column)
        .fill_null("")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().str.replace(_ALLELE, "").filter(pl.element() != ""))
        .list.unique(maintain_order=True)
    )


def _segment_long(table: pl.DataFrame, side: str, ambiguous: Ambiguity) -> pl.DataFrame:
    """One row per (clonotype index, gene) with its weight fraction; excluded/missing dropped."""
    flag = pl.col(f"{side}_ambiguous").fill_null(False) if f"{side}_ambiguous" in table.columns else pl.lit(False)
    frame = table.with_row_index("row").select("row", genes=_genes(f"{side}_gene"), flagged=flag)
    frame = frame.with_columns(ambiguous=pl.col("flagged") | (pl.col("genes").list.len() > 1))
    frame = frame.filter(pl.col("genes").list.len() > 0)
    if ambiguous == "exclude":
        frame = frame.filter(~pl.col("ambiguous"))
    if ambiguous in ("first", "exclude"):
        frame = frame.with_columns(pl.col("genes").list.first().alias("gene"), fraction=pl.lit(1.0))
    elif ambiguous == "split":
        frame = frame.with_columns(fraction=1.0 / pl.col("genes").list.len()).explode("genes").rename({"genes": "gene"})
    else:
        raise ValueError("ambiguous must be 'first', 'split' or 'exclude'")
    return frame.select("row", "gene", "fraction")


def gene_usage(clonotypes: pl.DataFrame, *, segment: Segment = "v", ambiguous: Ambiguity = "first") -> pl.DataFrame:
    """Usage of each gene (``segment="v"``/``"j"``) or V-J pair (``"vj"``).

    ``clonotypes_g = sum_i w_ig``, ``templates_g = sum_i w_ig c_i`` (``w_ig`` the clonotype's weight on
    gene ``g``: 1, or ``1/k`` when split), shares over the totals of the genes used; a V-J pair's
    weight is the product of its V and J weights.

    Returns
    -------
    polars.DataFrame
        ``gene``, ``clonotypes``, ``templates`` (Float64: split weights are fractional),
        ``clonotype_share``, ``template_share``; sorted by gene.
    """
    counts = clonotypes.with_row_index("row").select("row", pl.col("count").cast(pl.Float64))
    if segment in ("v", "j"):
        long = _segment_long(clonotypes, segment, ambiguous)
    elif segment == "vj":
        v, j = _segment_long(clonotypes, "v", ambiguous), _segment_long(clonotypes, "j", ambiguous)
        long = v.join(j, on="row", suffix="_j").select(
            "row",
            pl.concat_str("gene", "gene_j", separator=PAIR_SEPARATOR).alias("gene"),
            (pl.col("fraction") * pl.col("fraction_j")).alias("fraction"),
        )
    else:
        raise ValueError("segment must be 'v', 'j' or 'vj'")
    usage = (
        long.join(counts, on="row")
        .group_by("gene")
        .agg(clonotypes=pl.col("fraction").sum(), templates=(pl.col("fraction") * pl.col("count")).sum())
        .sort("gene")
    )
    return usage.with_columns(
        clonotype_share=pl.col("clonotypes") / pl.col("clonotypes").sum(),
        template_share=pl.col("templates") / pl.col("templates").sum(),
    )


def usage_qc(clonotypes: pl.DataFrame) -> pl.DataFrame:
    """Counts of ambiguous and missing gene calls: one row per segment (``v``, ``j``) with
    ``clonotypes``, ``templates``, ``ambiguous_clonotypes``, ``ambiguous_templates`` (flag set or several
    genes named), ``missing_clonotypes``, ``missing_templates`` (no gene)."""
    rows = []
    for side in ("v", "j"):
        flag = (
            pl.col(f"{side}_ambiguous").fill_null(False) if f"{side}_ambiguous" in clonotypes.columns else pl.lit(False)
        )
        frame = clonotypes.select(pl.col("count"), n=_genes(f"{side}_gene").list.len(), flag=flag)
        amb = frame.filter((pl.col("n") > 1) | (pl.col("flag") & (pl.col("n") > 0)))
        miss = frame.filter(pl.col("n") == 0)
        rows.append(
            {
                "segment": side,
                "clonotypes": frame.height,
                "templates": int(frame["count"].sum()),
                "ambiguous_clonotypes": amb.height,
                "ambiguous_templates": int(amb["count"].sum()),
                "missing_clonotypes": miss.height,
                "missing_templates": int(miss["count"].sum()),
            }
        )
    return pl.DataFrame(rows)


def spectratype(clonotypes: pl.DataFrame, *, unit: Literal["aa", "nt"] = "aa") -> pl.DataFrame:
    """Junction-length distribution (CDR3 spectratype; Pannetier et al. 1993, PNAS 90:4319).

    Length of ``junction_aa`` (``unit="aa"``; the IMGT junction, conserved C and F/W included, i.e.
    CDR3 + 2) or of ``junction`` (``"nt"``); clonotypes without one are left out.

    Returns
    -------
    polars.DataFrame
        ``length``, ``clonotypes``, ``templates``, ``clonotype_share``, ``template_share``, sorted by length.
    """
    column = "junction_aa" if unit == "aa" else "junction"
    frame = clonotypes.filter(pl.col(column).is_not_null() & (pl.col(column) != ""))
    out = (
        frame.group_by(pl.col(column).str.len_chars().cast(pl.Int64).alias("length"))
        .agg(clonotypes=pl.len().cast(pl.Int64), templates=pl.col("count").sum().cast(pl.Int64))
        .sort("length")
    )
    return out.with_columns(
        clonotype_share=pl.col("clonotypes") / pl.col("clonotypes").sum(),
        template_share=pl.col("templates") / pl.col("templates").sum(),
    )


def usage_matrix(
    tables: Mapping[str, pl.DataFrame],
    *,
    segment: Segment = "v",
    weight: Weight = "clonotypes",
    ambiguous: Ambiguity = "first",
) -> pl.DataFrame:
    """Shares of every gene (rows) in every sample (one column per sample, 0 where unused)."""
    share = "clonotype_share" if weight == "clonotypes" else "template_share"
    frames = [
        gene_usage(t, segment=segment, ambiguous=ambiguous).select("gene", pl.col(share).alias(name))
        for name, t in tables.items()
    ]
    if not frames:
        return pl.DataFrame({"gene": []}, schema={"gene": pl.Utf8})
    out = frames[0]
    for frame in frames[1:]:
        out = out.join(frame, on="gene", how="full", coalesce=True)
    return out.fill_null(0.0).sort("gene")


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits, ``jensenshannon(p, q, base=2) ** 2`` (inputs renormalised)."""
    from scipy.spatial.distance import jensenshannon  # scipy imported where used: the cohort step needs none

    return float(jensenshannon(np.asarray(p, dtype=float), np.asarray(q, dtype=float), base=2) ** 2)


def pairwise_divergence(
    tables: Mapping[str, pl.DataFrame],
    *,
    segment: Segment = "v",
    weight: Weight = "clonotypes",
    ambiguous: Ambiguity = "first",
) -> pl.DataFrame:
    """``sample_a``, ``sample_b``, ``js_distance`` (scipy's, base 2) and ``js_divergence`` (its square) for
    every pair of samples, on the aligned usage of :func:`usage_matrix`."""
    from scipy.spatial.distance import jensenshannon

    matrix = usage_matrix(tables, segment=segment, weight=weight, ambiguous=ambiguous)
    rows = []
    for a, b in combinations(list(tables), 2):
        d = float(jensenshannon(matrix[a].to_numpy(), matrix[b].to_numpy(), base=2))
        rows.append({"sample_a": a, "sample_b": b, "js_distance": d, "js_divergence": d * d})
    return pl.DataFrame(
        rows, schema={"sample_a": pl.Utf8, "sample_b": pl.Utf8, "js_distance": pl.Float64, "js_divergence": pl.Float64}
    )


def compare_usage(
    first: pl.DataFrame,
    second: pl.DataFrame,
    *,
    segment: Segment = "v",
    weight: Weight = "clonotypes",
    ambiguous: Ambiguity = "first",
    labels: tuple[str, str] = ("first", "second"),
) -> pl.DataFrame:
    """Gene-by-gene comparison of two repertoires (flagged vs background, product vs baseline blood,
    post vs pre biopsy).

    Per gene: both shares, ``log2_ratio = log2((s_2 + e) / (s_1 + e))`` with ``e = 1e-4``, and a two-sided
    Fisher exact test on **clonotype** counts (gene vs the other genes, first vs second; rounded when
    split), BH over genes (``q``). Template counts are not tested: templates of a clone are not
    independent draws. ``js_divergence`` of the two usage vectors (``weight``) is repeated on every row.
    """
    from scipy import stats

    from tcrtrack.association import benjamini_hochberg

    share = "clonotype_share" if weight == "clonotypes" else "template_share"
    u1 = gene_usage(first, segment=segment, ambiguous=ambiguous)
    u2 = gene_usage(second, segment=segment, ambiguous=ambiguous)
    n1, n2 = float(u1["clonotypes"].sum()), float(u2["clonotypes"].sum())
    both = (
        u1.select("gene", pl.col("clonotypes").alias("c1"), pl.col(share).alias("s1"))
        .join(
            u2.select("gene", pl.col("clonotypes").alias("c2"), pl.col(share).alias("s2")),
            on="gene",
            how="full",
            coalesce=True,
        )
        .fill_null(0.0)
        .sort("gene")
    )
    p = [
        stats.fisher_exact([[round(c1), round(n1 - c1)], [round(c2), round(n2 - c2)]]).pvalue
        for c1, c2 in zip(both["c1"], both["c2"], strict=True)
    ]
    jsd = js_divergence(both["s1"].to_numpy(), both["s2"].to_numpy()) if both.height else float("nan")
    return both.select(
        "gene",
        pl.col("c1").alias(f"clonotypes_{labels[0]}"),
        pl.col("c2").alias(f"clonotypes_{labels[1]}"),
        pl.col("s1").alias(f"share_{labels[0]}"),
        pl.col("s2").alias(f"share_{labels[1]}"),
        ((pl.col("s2") + 1e-4) / (pl.col("s1") + 1e-4)).log(2).alias("log2_ratio"),
        pl.Series("p", p, dtype=pl.Float64),
        pl.Series("q", benjamini_hochberg(p), dtype=pl.Float64),
        pl.lit(jsd).alias("js_divergence"),
        pl.lit(weight).alias("weight"),
    )


def split_by_flag(
    clones: pl.DataFrame, *, flag: str = "flagged", count: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The flagged clones and the rest (the patient's background) of a wide clone table, as two
    clonotype tables: ``count`` is the given column (e.g. ``count_<post biopsy>``) or, by default, the
    sum of every ``count_<sample>`` column; clones with count 0 are dropped."""
    if count is None:
        total = pl.sum_horizontal(pl.col(c) for c in clones.columns if c.startswith("count_"))
    else:
        total = pl.col(count)
    keep = [
        c
        for c in ("clone_id", "junction_aa", "junction", "v_gene", "j_gene", "v_ambiguous", "j_ambiguous")
        if c in clones.columns
    ]
    frame = clones.select(*keep, total.alias("count"), pl.col(flag).fill_null(False).alias("_flag"))
    frame = frame.filter(pl.col("count") > 0)
    return frame.filter(pl.col("_flag")).drop("_flag"), frame.filter(~pl.col("_flag")).drop("_flag")
