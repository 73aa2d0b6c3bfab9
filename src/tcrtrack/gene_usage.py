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


# --- Workflow steps (workflow/rules/gene_usage.smk, scripts/gene_usage*.py): files in, files out -------------

_CLONOTYPE_COLUMNS = ("clone_id", "junction_aa", "junction", "v_gene", "j_gene", "v_ambiguous", "j_ambiguous", "count")
#: Sample classes of the cohort V-usage heatmap (:func:`sample_class`), in row order.
SAMPLE_CLASSES = ("baseline blood", "product", "post-infusion blood", "pre-treatment tumour", "post-treatment tumour")


def pool_clonotypes(tables: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Several clonotype tables (replicates, days) as one: counts summed per ``clone_id``."""
    frames = [t for t in tables if t.height]
    if not frames:
        return tables[0] if tables else pl.DataFrame(schema={"clone_id": pl.Utf8, "count": pl.Int64})
    both = pl.concat(frames, how="diagonal_relaxed")
    return both.group_by("clone_id", maintain_order=True).agg(
        pl.exclude("clone_id", "count").first(), pl.col("count").sum()
    )


def sample_class(compartment: str, day: int, last_blood_day: int | None, last_biopsy_day: int | None) -> str | None:
    """The heatmap class of a sample: baseline blood (day <= 0), product, post-infusion blood (the last
    blood day), pre-treatment tumour (day <= 0), post-treatment tumour (the last biopsy); else None."""
    if compartment == "product":
        return "product"
    if compartment == "blood":
        return "baseline blood" if day <= 0 else ("post-infusion blood" if day == last_blood_day else None)
    if compartment == "tumor":
        return "pre-treatment tumour" if day <= 0 else ("post-treatment tumour" if day == last_biopsy_day else None)
    return None


def _long_usage(name: str, table: pl.DataFrame, ambiguous: Ambiguity) -> pl.DataFrame:
    frames = []
    for segment in ("v", "j", "vj"):
        usage = gene_usage(table, segment=segment, ambiguous=ambiguous)
        for weight, (count, share) in {
            "clonotypes": ("clonotypes", "clonotype_share"),
            "templates": ("templates", "template_share"),
        }.items():
            frames.append(
                usage.select(
                    pl.lit(name).alias("sample"),
                    pl.lit(segment).alias("segment"),
                    pl.lit(weight).alias("weight"),
                    "gene",
                    pl.col(count).alias("count"),
                    pl.col(share).alias("share"),
                )
            )
    return pl.concat(frames)


def _comparison(
    name: str,
    reference: tuple[str, pl.DataFrame],
    test: tuple[str, pl.DataFrame],
    *,
    weights: Sequence[Weight],
    ambiguous: Ambiguity,
) -> list[pl.DataFrame]:
    out = []
    if reference[1].height == 0 or test[1].height == 0:
        return out
    for weight in weights:
        table = compare_usage(
            reference[1], test[1], segment="v", weight=weight, ambiguous=ambiguous, labels=("reference", "test")
        )
        out.append(
            table.select(
                pl.lit(name).alias("comparison"),
                pl.lit(reference[0]).alias("reference"),
                pl.lit(test[0]).alias("test"),
                pl.lit("v").alias("segment"),
                pl.all(),
            )
        )
    return out


def gene_usage_step(
    *,
    patient: str,
    clonotypes: Sequence[str],
    clones: str,
    sheet: str,
    ambiguous: Ambiguity = "first",
    baseline_day: int | None = None,
    usage_out: str,
    spectratype_out: str,
    divergence_out: str,
    comparisons_out: str,
    qc_out: str,
    heatmap_png: str,
    spectratype_png: str,
) -> None:
    """One patient's clonotype tables and ``clones.parquet`` -> V, J and V-J usage (both weightings),
    spectratype (every sample and the flagged clones), pairwise Jensen-Shannon divergence of V usage,
    the three comparisons (flagged vs background, product vs baseline blood, last post vs pre biopsy),
    the ambiguous/missing-call counts, and the two figures."""
    import logging
    from pathlib import Path

    from tcrtrack.design import baseline_timepoint, timepoints
    from tcrtrack.io import write_tsv
    from tcrtrack.plots.gene_usage import spectratype_panels, usage_heatmap
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_patient_sheet

    samples = read_patient_sheet(sheet, patient)
    tables = {}
    for path in clonotypes:
        names = pl.read_parquet_schema(path)
        tables[Path(path).name.removesuffix(".parquet")] = pl.read_parquet(
            path, columns=[c for c in _CLONOTYPE_COLUMNS if c in names]
        )
    meta = samples.select("sample", "compartment", "day", "replicate")
    usage = pl.concat([_long_usage(name, table, ambiguous) for name, table in tables.items()])
    usage = meta.join(usage, on="sample", how="inner", maintain_order="right")
    wide = pl.read_parquet(clones)
    flagged, background = split_by_flag(wide, flag="flagged")
    spectra = [spectratype(t).select(pl.lit(n).alias("sample"), pl.all()) for n, t in tables.items()]
    if flagged.height:
        spectra.append(spectratype(flagged).select(pl.lit("flagged_clones").alias("sample"), pl.all()))
    spectra_table = pl.concat(spectra)
    divergence = pl.concat(
        [
            pairwise_divergence(tables, segment="v", weight=w, ambiguous=ambiguous).select(
                pl.lit("v").alias("segment"), pl.lit(w).alias("weight"), pl.all()
            )
            for w in ("clonotypes", "templates")
        ]
    )
    blood, tumor = timepoints(samples, "blood"), timepoints(samples, "tumor")
    base = baseline_timepoint(blood, day=baseline_day)
    pre = baseline_timepoint(tumor)
    post = [p for p in tumor if p.day > 0]
    product = samples.filter(pl.col("compartment") == "product")["sample"].to_list()
    pool = lambda point: pool_clonotypes([tables[s] for s in point.samples if s in tables])  # noqa: E731
    comparisons = _comparison(
        "flagged_vs_background",
        ("background", background),
        ("flagged", flagged),
        weights=("clonotypes",),
        ambiguous=ambiguous,
    )
    if base is not None and product:
        comparisons += _comparison(
            "product_vs_baseline_blood",
            ("baseline blood", pool(base)),
            ("product", pool_clonotypes([tables[s] for s in product if s in tables])),
            weights=("clonotypes", "templates"),
            ambiguous=ambiguous,
        )
    if pre is not None and post:
        comparisons += _comparison(
            "post_vs_pre_biopsy",
            (f"tumour day {pre.day}", pool(pre)),
            (f"tumour day {post[-1].day}", pool(post[-1])),
            weights=("clonotypes",),
            ambiguous=ambiguous,
        )
    schema = {
        "comparison": pl.Utf8,
        "reference": pl.Utf8,
        "test": pl.Utf8,
        "segment": pl.Utf8,
        "gene": pl.Utf8,
        "clonotypes_reference": pl.Float64,
        "clonotypes_test": pl.Float64,
        "share_reference": pl.Float64,
        "share_test": pl.Float64,
        "log2_ratio": pl.Float64,
        "p": pl.Float64,
        "q": pl.Float64,
        "js_divergence": pl.Float64,
        "weight": pl.Utf8,
    }
    compared = pl.concat(comparisons) if comparisons else pl.DataFrame(schema=schema)
    qc = pl.concat([usage_qc(t).select(pl.lit(n).alias("sample"), pl.all()) for n, t in tables.items()])
    lead = pl.lit(patient).alias("patient")
    write_tsv(usage.select(lead, pl.all()), usage_out)
    write_tsv(spectra_table.select(lead, pl.all()), spectratype_out)
    write_tsv(divergence.select(lead, pl.all()), divergence_out)
    write_tsv(compared.select(lead, pl.all()), comparisons_out)
    write_tsv(qc.select(lead, pl.all()), qc_out)
    save_figure(usage_heatmap(usage, samples, patient=patient), heatmap_png)
    save_figure(spectratype_panels(spectra_table, samples, patient=patient), spectratype_png)
    logging.getLogger(__name__).info(
        "%s: gene usage of %d samples, %d comparisons",
        patient,
        len(tables),
        compared["comparison"].n_unique() if compared.height else 0,
    )


def gene_usage_cohort_step(
    *, usage: Sequence[str], qc: Sequence[str], sheet: str, out: str, qc_out: str, heatmap_png: str, top_n: int = 30
) -> None:
    """Every patient's ``gene_usage.tsv`` -> the cohort V usage (both weightings, with each sample's class
    for the heatmap) and the cohort QC of ambiguous and missing calls; the cohort V-usage heatmap."""
    from tcrtrack.cohort_tables import patient_metadata
    from tcrtrack.io import read_tsv, write_tsv
    from tcrtrack.plots.gene_usage import cohort_usage_heatmap
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_sample_sheet

    samples = read_sample_sheet(sheet, check_files=False)
    v = pl.concat([read_tsv(p).filter(pl.col("segment") == "v") for p in usage], how="vertical_relaxed")
    last = samples.group_by("patient").agg(
        last_blood=pl.col("day").filter((pl.col("compartment") == "blood") & (pl.col("day") > 0)).max(),
        last_biopsy=pl.col("day").filter((pl.col("compartment") == "tumor") & (pl.col("day") > 0)).max(),
    )
    v = (
        v.join(last, on="patient", how="left")
        .with_columns(
            sample_class=pl.struct("compartment", "day", "last_blood", "last_biopsy").map_elements(
                lambda r: sample_class(r["compartment"], r["day"], r["last_blood"], r["last_biopsy"]),
                return_dtype=pl.Utf8,
            )
        )
        .drop("last_blood", "last_biopsy")
    )
    meta = patient_metadata(samples)
    write_tsv(v.join(meta, on="patient", how="left", maintain_order="left"), out)
    write_tsv(pl.concat([read_tsv(p) for p in qc], how="vertical_relaxed"), qc_out)
    save_figure(cohort_usage_heatmap(v, top_n=top_n), heatmap_png)
