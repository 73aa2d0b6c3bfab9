"""Specificity groups: the TCRdist CDR3 distance, planted cross-patient groups, and the random grouping rate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tcrtrack.olga_source import generate_clonotypes
from tcrtrack.specificity import group_summary, neighbour_pairs, specificity_groups, tcrdist_cdr3
from tcrtrack.specificity.groups import BLOSUM62, MISMATCH


def test_blosum62_and_mismatch_table():
    assert (BLOSUM62 == BLOSUM62.T).all() and BLOSUM62[17, 17] == 11 and BLOSUM62[4, 4] == 9  # W-W, C-C
    assert MISMATCH[0, 0] == 0 and MISMATCH[0, 15] == 3 and MISMATCH[17, 6] == 4  # A=A, A-S: 4-1, W-E capped


def test_distance_hand_computed():
    d = tcrdist_cdr3(["CASSIRSSYEQYF", "CASSIRASYEQYF", "CASSIRSSYEQYF", "CASSIRSYEQYF", "CASSIWSSYEQYF"])
    assert d[0, 0] == 0 and d[0, 2] == 0
    assert d[0, 1] == 3 * (4 - 1)  # S->A, BLOSUM62 1
    assert d[0, 4] == 3 * 4  # R->W, BLOSUM62 -3: capped at 4
    assert d[0, 3] == 3 * 4  # one deletion: gap penalty 4, rest identical
    # trimmed ends (first 3, last 2) do not count
    assert tcrdist_cdr3(["CASSIRSSYEQYF"], ["CAWSIRSSYEQFF"])[0, 0] == 0
    assert (d == d.T).all()


def test_vectorised_pairs_equal_brute_force():
    clones = generate_clonotypes(400, seed=5).select("junction_aa", "v_gene")
    # plant near neighbours so that every kind of pair occurs
    seqs = clones["junction_aa"].to_list()
    extra = [s[:5] + "G" + s[6:] for s in seqs[:40]] + [s[:6] + s[7:] for s in seqs[40:60]]
    clones = pl.concat([clones, pl.DataFrame({"junction_aa": extra, "v_gene": clones["v_gene"][:60]})])
    pairs = neighbour_pairs(clones, max_distance=24, same_v=True)
    full = tcrdist_cdr3(clones["junction_aa"].to_list())
    v = clones["v_gene"].to_numpy()
    i, j = np.nonzero(np.triu((full <= 24) & (v[:, None] == v[None, :]), k=1))
    assert sorted(zip(pairs["i"].to_list(), pairs["j"].to_list(), strict=False)) == sorted(
        zip(i.tolist(), j.tolist(), strict=False)
    )
    assert (pairs["distance"].to_numpy() == full[pairs["i"].to_numpy(), pairs["j"].to_numpy()]).all()
    assert pairs.height >= 60


def _planted_cohort() -> pl.DataFrame:
    """Two patients of random OLGA clones; the same CMV-like motif planted as one-mismatch variants in both."""
    background = generate_clonotypes(1_200, seed=21).select("junction_aa", "v_gene", "j_gene")
    patients = pl.Series(["P1"] * 600 + ["P2"] * 600)
    base = background.with_columns(patient=patients, flagged=pl.lit(False))
    planted = pl.DataFrame(
        {
            "junction_aa": ["CASSLAPGATNEKLFF", "CASSLAPGTTNEKLFF", "CASSLSPGATNEKLFF", "CASSLAPGANNEKLFF"],
            "v_gene": ["TRBV7-6"] * 4,
            "j_gene": ["TRBJ1-4"] * 4,
            "patient": ["P1", "P1", "P2", "P2"],
            "flagged": [True, False, True, True],
        }
    )
    return pl.concat([base, planted]).with_columns(
        clone_id=pl.concat_str("patient", pl.lit(":"), "junction_aa"), tumour_frequency=pl.lit(1e-3)
    )


def test_planted_variants_form_one_cross_patient_group():
    grouped, edges = specificity_groups(_planted_cohort())
    planted = grouped.filter(
        pl.col("junction_aa").str.starts_with("CASSL")
        & (pl.col("v_gene") == "TRBV7-6")
        & pl.col("junction_aa").str.ends_with("NEKLFF")
    )
    assert planted["specificity_group"].n_unique() == 1 and planted["specificity_group"][0] is not None
    summary = group_summary(grouped, tumour_frequency="tumour_frequency")
    group = summary.filter(pl.col("specificity_group") == planted["specificity_group"][0]).row(0, named=True)
    assert group["patients"] == "P1,P2" and group["n_patients"] == 2 and group["n_flagged"] == 3 and group["report"]
    assert group["v_genes"].startswith("TRBV7-6:4") and group["motif"] == "CASSL.PG..NEKLFF"
    assert edges["distance"].max() <= 12


def test_random_olga_clones_rarely_group():
    """Measured: 0.2% of 2,000 random OLGA clones (seed 7) fall in a group (2 pairs), all of size 2."""
    clones = generate_clonotypes(2_000, seed=7).select("junction_aa", "v_gene")
    grouped, _ = specificity_groups(clones)
    share = grouped["specificity_group"].is_not_null().mean()
    assert share < 0.01
    assert (grouped["group_size"].drop_nulls() <= 3).all()


def test_clones_without_v_do_not_group():
    clones = pl.DataFrame(
        {"junction_aa": ["CASSIRSSYEQYF", "CASSIRSSYEQYF"], "v_gene": [None, None]},
        schema={"junction_aa": pl.Utf8, "v_gene": pl.Utf8},
    )
    grouped, edges = specificity_groups(clones)
    assert edges.height == 0 and grouped["specificity_group"].null_count() == 2
    loose, _ = specificity_groups(clones, same_v=False)
    assert loose["specificity_group"].to_list() == ["SG1", "SG1"]


@pytest.mark.parametrize("max_distance", [0, 12, 24])
def test_threshold_monotone(max_distance):
    clones = _planted_cohort()
    pairs = neighbour_pairs(clones, max_distance=max_distance)
    assert (pairs["distance"] <= max_distance).all()


def test_distance_equals_tcrdist_rs_when_installed():
    """Cross-check against tcrdist-rs (MIT; not a dependency: skipped unless installed)."""
    tcrdist_rs = pytest.importorskip("tcrdist_rs")
    seqs = generate_clonotypes(120, seed=9)["junction_aa"].to_list()
    theirs = np.array([[tcrdist_rs.tcrdist(a, b, 3, 12, 3, 2, True) for b in seqs] for a in seqs])
    assert (tcrdist_cdr3(seqs) == theirs).all()
