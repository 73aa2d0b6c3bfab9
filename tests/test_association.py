"""Tests of tcrtrack.association: planted differences, calibration under the null, agreement with scipy."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tcrtrack.association import (
    _rank_sum_null,
    benjamini_hochberg,
    compare_groups,
    fisher_exact_groups,
    hodges_lehmann,
    hodges_lehmann_ci,
    logrank,
    mann_whitney,
    survival_association,
)


def _cohort(seed: int, *, n_per_group: int = 10, fold: float = 1.0) -> pl.DataFrame:
    """Simulated per-patient table: responders carry ``fold`` x more flagged clones (negative binomial,
    mean 8 in non-responders, dispersion 0.25) and a continuous tumour share (Beta)."""
    rng = np.random.default_rng([seed, 16])
    response = ["responder"] * n_per_group + ["non-responder"] * n_per_group
    mean = np.r_[np.full(n_per_group, 8.0 * fold), np.full(n_per_group, 8.0)]
    size = 4.0  # NB variance mu + mu^2 / 4
    flagged = rng.negative_binomial(size, size / (size + mean))
    share = rng.beta(2, 20, size=2 * n_per_group) * np.where(np.arange(2 * n_per_group) < n_per_group, fold, 1)
    return pl.DataFrame(
        {
            "patient": [f"P{i + 1:02d}" for i in range(2 * n_per_group)],
            "response": response,
            "flagged": flagged.astype(np.int64),
            "tumor_share": share,
            "any_flagged": flagged > 5,
        }
    )


def test_planted_threefold_difference():
    table = _cohort(1, fold=3.0)
    out = compare_groups(table, group="response", metrics=["flagged", "tumor_share"], seed=0)
    row = out.filter(pl.col("metric") == "flagged").row(0, named=True)
    assert row["groups"] == "non-responder|responder" and row["n_per_group"] == "10|10"
    assert row["effect"] > 0 and row["ci_low"] > 0  # responders higher; the interval excludes 0
    assert row["p"] < 0.01 and row["test"].startswith("mann_whitney")
    assert row["n_tests"] == 2 and row["q"] <= 2 * row["p"] + 1e-12
    med = [float(v) for v in row["medians"].split("|")]
    assert med[1] > 2 * med[0]
    # power over 20 seeds: the planted 3x difference is found (p < 0.05) nearly always
    hits = sum(
        compare_groups(_cohort(s, fold=3.0), group="response", metrics=["flagged"], n_boot=200)["p"][0] < 0.05
        for s in range(20)
    )
    assert hits >= 17


def test_uniform_pvalues_without_a_planted_difference():
    ps_count, ps_share = [], []
    for seed in range(60):
        out = compare_groups(
            _cohort(seed, n_per_group=8), group="response", metrics=["flagged", "tumor_share"], n_boot=50
        )
        ps_count.append(out["p"][0])
        ps_share.append(out["p"][1])
    assert stats.kstest(ps_share, "uniform").pvalue > 0.01  # continuous metric: exact U
    # counts with ties: permutation p-values are discrete and valid (never anti-conservative)
    assert stats.kstest(ps_count, "uniform").pvalue > 0.01
    assert np.mean(np.array(ps_count) < 0.05) <= 0.1


def test_null_p_values_are_exact_once_discreteness_is_accounted_for():
    """Nothing planted, 200 seeds of 8 vs 8 patients. Exact p-values are discrete (at 1,000 seeds a plain KS test
    rejects uniformity even for untied data and scipy's exact test), so the check is made on the data's own
    permutation null, enumerated by brute force over all C(16, 8) = 12,870 splits (independent of the module's
    dynamic programme): the stage's p equals the enumerated one; P(p <= a) <= a at every attainable a (never
    anti-conservative); and the randomised probability-integral transform W = F(p-) + U (F(p) - F(p-)) of the
    observed p-values under that null is uniform (Kolmogorov-Smirnov)."""
    splits = np.array(list(combinations(range(16), 8)))
    u_rng = np.random.default_rng(99)
    pits = {"flagged": [], "tumor_share": []}
    for seed in range(200):
        table = _cohort(seed, n_per_group=8)
        out = compare_groups(table, group="response", metrics=list(pits), n_boot=2)
        ref = table.filter(pl.col("response") == "non-responder")  # the reference group, listed first
        other = table.filter(pl.col("response") == "responder")
        for metric, p_stage in zip(pits, out["p"], strict=True):
            ranks = stats.rankdata(np.r_[ref[metric].to_numpy(), other[metric].to_numpy()].astype(float))
            sums = np.sort(ranks[splits].sum(axis=1))
            cdf = np.searchsorted(sums, sums + 1e-9, side="right") / sums.size
            sf = 1 - np.searchsorted(sums, sums - 1e-9, side="left") / sums.size
            p_all = np.minimum(1.0, 2 * np.minimum(cdf, sf))  # the p-value of every split
            observed = ranks[:8].sum()
            p_obs = min(1.0, 2 * min(np.mean(sums <= observed + 1e-9), np.mean(sums >= observed - 1e-9)))
            assert p_stage == pytest.approx(p_obs, rel=1e-9)
            atoms = np.unique(np.round(p_all, 12))
            assert all(np.mean(p_all <= a + 1e-12) <= a + 1e-12 for a in atoms)
            below, at = np.mean(p_all < p_obs - 1e-12), np.mean(np.abs(p_all - p_obs) <= 1e-12)
            pits[metric].append(below + u_rng.random() * at)
    for metric, w in pits.items():
        assert stats.kstest(w, "uniform").pvalue > 0.01, metric


@pytest.mark.parametrize("seed", range(5))
def test_exact_agreement_with_scipy(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=7), rng.normal(0.5, size=9)
    u, p, test = mann_whitney(x, y)
    ref = stats.mannwhitneyu(x, y, method="exact")
    assert test == "mann_whitney_exact" and u == ref.statistic and p == ref.pvalue
    table = pl.DataFrame({"patient": [f"p{i}" for i in range(16)], "g": ["a"] * 7 + ["b"] * 9, "m": np.r_[x, y]})
    assert compare_groups(table, group="g", n_boot=10)["p"][0] == ref.pvalue


@pytest.mark.parametrize("nx, ny", [(3, 4), (7, 9), (10, 10), (12, 5), (15, 14)])
def test_rank_sum_dynamic_programme_equals_scipy_exact_without_ties(nx, ny):
    """The permutation path (taken with ties) run on untied data gives scipy's exact p-value: checks the
    dynamic programme against scipy's own exact null, not scipy against itself."""
    rng = np.random.default_rng([nx, ny])
    x, y = rng.normal(size=nx), rng.normal(0.7, size=ny)
    doubled = np.rint(2 * stats.rankdata(np.r_[x, y])).astype(np.int64)
    dist = _rank_sum_null(doubled, nx)
    assert dist.sum() == pytest.approx(1.0) and np.all(dist >= 0)
    observed = int(doubled[:nx].sum())
    p = min(1.0, 2 * min(dist[: observed + 1].sum(), dist[observed:].sum()))
    assert p == pytest.approx(stats.mannwhitneyu(x, y, method="exact").pvalue, rel=1e-10, abs=1e-15)


def test_ties_use_the_permutation_distribution():
    x, y = np.array([0, 0, 1, 2, 2, 3]), np.array([2, 3, 3, 4, 5, 5, 6])
    u, p, test = mann_whitney(x, y)
    assert test == "mann_whitney_permutation"
    # the same by brute force over all C(13, 6) = 1716 splits of the mid-ranks
    ranks = stats.rankdata(np.r_[x, y].astype(float))
    us = np.array([ranks[list(c)].sum() - 21 for c in combinations(range(13), 6)])
    obs = ranks[:6].sum() - 21
    brute = min(1.0, 2 * min(np.mean(us <= obs + 1e-9), np.mean(us >= obs - 1e-9)))
    assert u == obs == stats.mannwhitneyu(x, y).statistic and p == pytest.approx(brute, rel=1e-12)
    # and scipy's own permutation version (it enumerates all splits here)
    ref = stats.mannwhitneyu(x, y, method=stats.PermutationMethod(n_resamples=5000))
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_hodges_lehmann_and_interval():
    assert hodges_lehmann([1, 2, 3], [4, 5]) == 2.5  # differences 3, 2, 1, 4, 3, 2 -> median 2.5
    low, high = hodges_lehmann_ci([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], n_boot=500, seed=1)
    assert low <= 5 <= high and low > 0
    assert hodges_lehmann_ci([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], n_boot=500, seed=1) == (low, high)


def test_fisher_and_three_groups():
    # 2 x 2 equals scipy's two-sided Fisher exact test
    for pos, tot in [((3, 8), (10, 10)), ((0, 5), (6, 7)), ((2, 2), (9, 4))]:
        ref = stats.fisher_exact([[pos[0], tot[0] - pos[0]], [pos[1], tot[1] - pos[1]]]).pvalue
        assert fisher_exact_groups(pos, tot) == pytest.approx(ref, rel=1e-9)
    table = _cohort(3, fold=3.0)
    out = compare_groups(table, group="response", metrics=["any_flagged"])
    row = out.row(0, named=True)
    assert row["test"] == "fisher_exact" and row["effect_type"] == "odds_ratio" and row["effect"] > 1
    three = table.with_columns(arm=pl.Series(["a", "b", "c", "d"] * 5).replace({"d": "a"}))
    k = compare_groups(three, group="arm", metrics=["flagged", "any_flagged"]).row(0, named=True)
    ref = stats.kruskal(*[three.filter(pl.col("arm") == g)["flagged"].to_numpy() for g in "abc"])
    assert k["test"] == "kruskal_wallis" and k["p"] == pytest.approx(ref.pvalue)
    assert k["effect"] == pytest.approx(ref.statistic / 19)


def test_missing_metrics_are_counted():
    table = _cohort(2).with_columns(
        tumor_share=pl.when(pl.col("patient").is_in(["P01", "P12"])).then(None).otherwise(pl.col("tumor_share")),
        response=pl.when(pl.col("patient") == "P20").then(None).otherwise(pl.col("response")),
    )
    table = table.with_columns(pl.col("tumor_share").fill_null(float("nan")).alias("nan_share"))
    out = compare_groups(table, group="response", metrics=["tumor_share", "nan_share", "flagged"])
    for metric in ("tumor_share", "nan_share"):
        row = out.filter(pl.col("metric") == metric).row(0, named=True)
        assert row["n_missing"] == 2 and row["missing_patients"] == "P01,P12"
        assert row["n_per_group"] == "8|9" and row["n_ungrouped"] == 1
    assert out.filter(pl.col("metric") == "flagged")["n_per_group"][0] == "9|10"


def test_single_group_is_not_tested():
    table = _cohort(0).filter(pl.col("response") == "responder")
    row = compare_groups(table, group="response", metrics=["flagged"]).row(0, named=True)
    assert row["test"] == "not_tested" and row["p"] is None and row["n_tests"] == 0


def test_benjamini_hochberg():
    q = benjamini_hochberg([0.01, 0.04, 0.03, np.nan, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): 4p/rank = 0.04, 0.06, 0.0533, 0.2, then running minima from the top
    assert np.allclose(q[[0, 1, 2, 4]], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert math.isnan(q[3])


def test_logrank_matches_scipy_and_survival_split():
    rng = np.random.default_rng(4)
    t1, t2 = rng.exponential(100, 12).round(), rng.exponential(250, 11).round()
    e1, e2 = rng.random(12) < 0.8, rng.random(11) < 0.7
    chi2, df, p = logrank(np.r_[t1, t2], np.r_[e1, e2], np.r_[["a"] * 12, ["b"] * 11])
    ref = stats.logrank(
        stats.CensoredData(uncensored=t1[e1], right=t1[~e1]), stats.CensoredData(uncensored=t2[e2], right=t2[~e2])
    )
    assert df == 1 and chi2 == pytest.approx(ref.statistic**2, rel=1e-9) and p == pytest.approx(ref.pvalue)
    table = pl.DataFrame(
        {
            "patient": [f"p{i}" for i in range(23)],
            "pfs_days": np.r_[t1, t2],
            "pfs_event": np.r_[e1, e2].astype(int),
            "flagged": np.r_[np.zeros(12), np.ones(11)],
        }
    )
    row = survival_association(table, time="pfs_days", event="pfs_event", by="flagged", threshold=0.5).row(
        0, named=True
    )
    assert row["groups"] == "high|low" and row["n_per_group"] == "11|12" and row["p"] == pytest.approx(p)
