"""Tests of tcrtrack.gene_usage on a 10-clonotype hand-made table (values worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tcrtrack.gene_usage import (
    compare_usage,
    gene_usage,
    js_divergence,
    pairwise_divergence,
    spectratype,
    split_by_flag,
    usage_matrix,
    usage_qc,
)

# 10 clonotypes, 100 templates. c09 names two V genes (commas), c10 is flagged ambiguous by ingest,
# c08 has no J call.
TEN = pl.DataFrame(
    {
        "clone_id": [f"c{i:02d}" for i in range(1, 11)],
        "junction_aa": [
            "CASSLGF",
            "CASSPGQF",
            "CASSQETQYF",
            "CASRLGF",
            "CASSLAGEQFF",
            "CASSGF",
            "CASSPRQF",
            "CASSYSTDTQYF",
            "CASTGF",
            None,
        ],
        "v_gene": [
            "TRBV20-1",
            "TRBV20-1",
            "TRBV5-1",
            "TRBV5-1",
            "TRBV20-1",
            "TRBV7-9",
            "TRBV7-9",
            "TRBV20-1",
            "TRBV6-2*01,TRBV6-3*01",
            "TRBV12-3",
        ],
        "j_gene": [
            "TRBJ2-7",
            "TRBJ1-1",
            "TRBJ2-5",
            "TRBJ2-7",
            "TRBJ2-1",
            "TRBJ2-7",
            "TRBJ1-1",
            "",
            "TRBJ2-7",
            "TRBJ2-1",
        ],
        "count": [40, 10, 10, 5, 5, 5, 5, 10, 6, 4],
        "v_ambiguous": [False] * 9 + [True],
        "j_ambiguous": [False] * 10,
    }
)


def _as_dict(frame: pl.DataFrame, column: str) -> dict:
    return dict(zip(frame["gene"], frame[column], strict=True))


def test_v_usage_by_clonotypes_and_templates():
    v = gene_usage(TEN, segment="v")
    # first-gene rule: TRBV20-1 c01 c02 c05 c08 = 4 clonotypes, 40+10+5+10 = 65 templates
    assert _as_dict(v, "clonotypes") == {"TRBV12-3": 1, "TRBV20-1": 4, "TRBV5-1": 2, "TRBV6-2": 1, "TRBV7-9": 2}
    assert _as_dict(v, "templates") == {"TRBV12-3": 4, "TRBV20-1": 65, "TRBV5-1": 15, "TRBV6-2": 6, "TRBV7-9": 10}
    assert _as_dict(v, "clonotype_share")["TRBV20-1"] == pytest.approx(0.4)
    assert _as_dict(v, "template_share")["TRBV20-1"] == pytest.approx(0.65)
    assert v["clonotype_share"].sum() == pytest.approx(1) and v["template_share"].sum() == pytest.approx(1)


def test_ambiguity_modes_and_counts():
    split = gene_usage(TEN, segment="v", ambiguous="split")
    assert _as_dict(split, "clonotypes")["TRBV6-2"] == 0.5 and _as_dict(split, "templates")["TRBV6-3"] == 3
    assert split["clonotypes"].sum() == pytest.approx(10) and split["template_share"].sum() == pytest.approx(1)
    excl = gene_usage(TEN, segment="v", ambiguous="exclude")  # c09 (two genes) and c10 (flag) left out
    assert "TRBV6-2" not in excl["gene"].to_list() and "TRBV12-3" not in excl["gene"].to_list()
    assert excl["templates"].sum() == 90 and _as_dict(excl, "template_share")["TRBV20-1"] == pytest.approx(65 / 90)
    qc = usage_qc(TEN).rows_by_key("segment", named=True, unique=True)
    assert qc["v"]["ambiguous_clonotypes"] == 2 and qc["v"]["ambiguous_templates"] == 10
    assert qc["j"]["missing_clonotypes"] == 1 and qc["j"]["missing_templates"] == 10


def test_j_and_vj_usage():
    j = gene_usage(TEN, segment="j")  # c08 has no J: 9 clonotypes, 90 templates
    assert _as_dict(j, "clonotypes") == {"TRBJ1-1": 2, "TRBJ2-1": 2, "TRBJ2-5": 1, "TRBJ2-7": 4}
    assert _as_dict(j, "template_share") == pytest.approx(
        {"TRBJ1-1": 15 / 90, "TRBJ2-1": 9 / 90, "TRBJ2-5": 10 / 90, "TRBJ2-7": 56 / 90}
    )
    vj = gene_usage(TEN, segment="vj")
    assert _as_dict(vj, "templates")["TRBV20-1|TRBJ2-7"] == 40
    assert _as_dict(vj, "clonotypes")["TRBV7-9|TRBJ1-1"] == 1
    assert vj["clonotypes"].sum() == 9 and vj["clonotype_share"].sum() == pytest.approx(1)


def test_spectratype():
    aa = spectratype(TEN)  # lengths 7, 8, 10, 7, 11, 6, 8, 12, 6; c10 has no junction
    assert aa["length"].to_list() == [6, 7, 8, 10, 11, 12]
    assert aa["clonotypes"].to_list() == [2, 2, 2, 1, 1, 1]
    assert aa["templates"].to_list() == [11, 45, 15, 10, 5, 10]
    assert aa["clonotype_share"].sum() == pytest.approx(1) and aa["template_share"][1] == pytest.approx(45 / 96)


def test_divergence_and_comparisons():
    other = TEN.with_columns(count=pl.Series([5, 5, 40, 10, 5, 10, 10, 5, 6, 4]))
    p = gene_usage(TEN, segment="v")["template_share"].to_numpy()
    q = gene_usage(other, segment="v")["template_share"].to_numpy()
    m = (p + q) / 2
    kl_p = sum(a * math.log2(a / b) for a, b in zip(p, m, strict=False))
    kl_q = sum(a * math.log2(a / b) for a, b in zip(q, m, strict=False))
    by_hand = 0.5 * kl_p + 0.5 * kl_q
    assert js_divergence(p, q) == pytest.approx(by_hand, rel=1e-12)
    pair = pairwise_divergence({"a": TEN, "b": other, "c": TEN}, weight="templates")
    assert pair.height == 3 and pair["js_divergence"][0] == pytest.approx(by_hand, rel=1e-12)
    same = pair.filter((pl.col("sample_a") == "a") & (pl.col("sample_b") == "c"))
    assert same["js_divergence"][0] == pytest.approx(0)
    assert pair["js_distance"][0] == pytest.approx(math.sqrt(by_hand))
    matrix = usage_matrix({"a": TEN, "b": other}, weight="templates")
    assert matrix.columns == ["gene", "a", "b"] and np.allclose(matrix.select("a", "b").sum().row(0), 1)
    cmp = compare_usage(TEN, other, weight="templates", labels=("pre", "post"))
    assert cmp["js_divergence"][0] == pytest.approx(by_hand) and "share_post" in cmp.columns
    assert (cmp["p"] <= cmp["q"] + 1e-12).all()


def test_split_by_flag():
    wide = TEN.select(
        "clone_id",
        "junction_aa",
        "v_gene",
        "j_gene",
        count_A=pl.col("count"),
        count_B=pl.col("count") * 0 + 1,
        flagged=pl.Series([True, False, True] + [False] * 7),
    )
    flagged, background = split_by_flag(wide)
    assert flagged["clone_id"].to_list() == ["c01", "c03"] and flagged["count"].to_list() == [41, 11]
    assert background.height == 8
    flagged_a, _ = split_by_flag(wide, count="count_A")
    assert gene_usage(flagged_a)["template_share"].to_list() == pytest.approx([0.8, 0.2])
