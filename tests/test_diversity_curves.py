"""Tests of tcrtrack.diversity_curves: iNEXT interpolation/extrapolation, coverage, equal-coverage comparison.

Expected extrapolated values are written out from Chao et al. 2014 (Ecol Monogr 84:45) and Chao & Jost
2012 (Ecology 93:2533) with the math module, independently of the module's numpy code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tcrtrack.diversity_curves import (
    at_equal_coverage,
    bootstrap_assemblage,
    coverage_at,
    depth_for_coverage,
    hill_at,
    inext_curve,
)

SMALL = [5, 3, 2, 2, 1, 1, 1]  # n = 15, S = 7, f1 = 3, f2 = 2


def _hand_small(m: int) -> tuple[float, float, float, float]:
    n, s, f1, f2 = 15, 7, 3, 2
    extra = m - n
    f0 = (n - 1) / n * f1**2 / (2 * f2)  # 14/15 * 9/4 = 2.1
    d0 = s + f0 * (1 - (1 - f1 / (n * f0 + f1)) ** extra)
    h_obs = -sum(x / n * math.log(x / n) for x in SMALL)
    first = 0.0  # sum_k 1/k sum_i X_i/n C(n-X_i,k)/C(n-1,k)
    for k in range(1, n):
        first += sum(x / n * math.comb(n - x, k) / math.comb(n - 1, k) for x in SMALL) / k
    a = 2 * f2 / ((n - 1) * f1 + 2 * f2)  # 4/46
    tail = -math.log(a) - sum((1 - a) ** r / r for r in range(1, n))
    h_est = first + f1 / n * (1 - a) ** (1 - n) * tail
    d1 = math.exp(n / m * h_obs + extra / m * h_est)
    lam = sum(x * (x - 1) for x in SMALL) / (n * (n - 1))  # (20+6+2+2)/210 = 1/7
    d2 = 1 / (1 / m + (1 - 1 / m) * lam)
    cov = 1 - f1 / n * ((n - 1) * f1 / ((n - 1) * f1 + 2 * f2)) ** (extra + 1)
    return d0, d1, d2, cov


def test_full_depth_equals_observed():
    rng = np.random.default_rng(3)
    x = rng.negative_binomial(0.4, 0.1, size=300)
    x = x[x > 0]
    row = hill_at(x, [int(x.sum())]).row(0, named=True)
    p = x / x.sum()
    assert row["method"] == "observed"
    assert row["hill_0"] == x.size
    assert row["hill_1"] == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert row["hill_2"] == pytest.approx(1 / np.sum(p**2), rel=1e-12)
    # the interpolation formula one template short of n approaches the observed value
    below = hill_at(x, [int(x.sum()) - 1]).row(0, named=True)
    assert x.size - 1 <= below["hill_0"] <= x.size


@pytest.mark.parametrize("m", [16, 20, 30, 60])
def test_extrapolation_matches_hand_formulas(m):
    d0, d1, d2, cov = _hand_small(m)
    row = hill_at(SMALL, [m]).row(0, named=True)
    assert row["method"] == "extrapolated"
    assert row["hill_0"] == pytest.approx(d0, rel=1e-12)
    assert row["hill_1"] == pytest.approx(d1, rel=1e-10)
    assert row["hill_2"] == pytest.approx(d2, rel=1e-12)
    assert row["coverage"] == pytest.approx(cov, rel=1e-12)


def test_hand_numbers_small_vector():
    # written-out values: f0 = 2.1; D0(30) = 7 + 2.1 (1 - (1 - 3/34.5)^15); C(15) = 1 - 3/15 * 42/46
    assert hill_at(SMALL, [30])["hill_0"][0] == pytest.approx(7 + 2.1 * (1 - (1 - 3 / 34.5) ** 15))
    assert coverage_at(SMALL, [15])[0] == pytest.approx(1 - 0.2 * 42 / 46)
    assert hill_at(SMALL, [15])["hill_2"][0] == pytest.approx(225 / 45)  # n^2 / sum X^2


def test_interpolation_is_the_mean_of_rarefactions():
    rng = np.random.default_rng(11)
    x = rng.negative_binomial(0.5, 0.15, size=400)
    x = x[x > 0]
    n = int(x.sum())
    for m in (n // 10, n // 3, (3 * n) // 4):
        draws = np.stack([np.random.default_rng([7, i]).multivariate_hypergeometric(x, m) for i in range(200)])
        rich = (draws > 0).sum(axis=1)
        ps = draws / m
        with np.errstate(divide="ignore", invalid="ignore"):
            shannon = -np.nansum(np.where(ps > 0, ps * np.log(ps), 0.0), axis=1)
        simpson = (draws * (draws - 1.0)).sum(axis=1) / (m * (m - 1.0))
        row = hill_at(x, [m]).row(0, named=True)

        def se(v):
            return v.std(ddof=1) / math.sqrt(v.size)

        assert abs(row["hill_0"] - rich.mean()) < 4 * se(rich) + 1e-9
        assert abs(math.log(row["hill_1"]) - shannon.mean()) < 4 * se(shannon) + 1e-9
        # D2(m) = 1 / E[sum k(k-1) / (m(m-1))] exactly; 1/m + (1-1/m) lambda is that expectation
        lam = 1 / row["hill_2"]
        assert abs(lam - (1 / m + (1 - 1 / m) * simpson.mean())) < 4 * (1 - 1 / m) * se(simpson) + 1e-12
        # and the spread: the expectation lies within the rarefactions' own range
        assert rich.min() <= row["hill_0"] <= rich.max()


@pytest.mark.parametrize("fraction", [0.1, 0.4])
def test_interpolation_matches_the_stages_seeded_rarefactions(fraction):
    """The diversity stage's own rarefied rows (``sample_diversity``: mean and ``*_subsampling_sd`` over seeded
    subsamplings) against the iNEXT expectation at the same depth: richness and Shannon within 4 standard
    errors of the mean and within one spread; E[sum p^2] of a subsample is exactly 1 / D2(m)."""
    from tcrtrack.diversity import sample_diversity

    x = np.random.default_rng(21).negative_binomial(0.5, 0.1, size=500)
    x = x[x > 0]
    depth, iterations = int(fraction * x.sum()), 60
    rare = sample_diversity(x, depth=depth, n_iterations=iterations, seed=4).row(1, named=True)
    expected = hill_at(x, [depth]).row(0, named=True)
    assert rare["depth_type"] == "rarefied" and expected["method"] == "interpolated"
    for metric, value in (
        ("richness", expected["hill_0"]),
        ("shannon_nats", math.log(expected["hill_1"])),
        ("simpson", 1 / expected["hill_2"]),
    ):
        spread = rare[f"{metric}_subsampling_sd"]
        assert spread > 0
        assert abs(rare[metric] - value) < 4 * spread / math.sqrt(iterations), metric
        assert abs(rare[metric] - value) < spread, metric


def test_coverage_monotone_and_inversion():
    x = np.array([40, 12, 8, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1])
    n = int(x.sum())
    sizes = [1, 5, 20, 50, n, 2 * n, 4 * n]
    cov = coverage_at(x, sizes)
    assert np.all(np.diff(cov) > 0) and cov[-1] < 1
    # C(1) = 1 - sum X/n (n-X)/(n-1) = sum X(X-1) / (n(n-1)): the chance a second template repeats a clone
    assert cov[0] == pytest.approx(np.sum(x * (x - 1.0)) / (n * (n - 1.0)), rel=1e-12)
    for target in (0.6, float(cov[4]), 0.97):
        m = depth_for_coverage(x, target)
        assert coverage_at(x, [int(m)])[0] >= target - 1e-9
        if m > 1:
            assert coverage_at(x, [int(m) - 1])[0] < target + 1e-9


def test_bootstrap_assemblage_and_curve_intervals():
    x = np.array([40, 12, 8, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1])
    prob = bootstrap_assemblage(x)
    assert prob.sum() == pytest.approx(1) and prob.size == x.size + math.ceil(14 / 15 * 36 / 6)
    # the unseen clones carry 1 - C(n)
    assert prob[x.size :].sum() == pytest.approx(1 - coverage_at(x, [int(x.sum())])[0], rel=1e-9)
    curve = inext_curve(x, knots=10, n_boot=30, seed=1)
    again = inext_curve(x, knots=10, n_boot=30, seed=1)
    assert curve.equals(again)
    assert set(curve["method"]) == {"interpolated", "observed", "extrapolated"}
    assert (curve["ci_low"] <= curve["estimate"]).all() and (curve["estimate"] <= curve["ci_high"]).all()
    obs = curve.filter((curve["q"] == 0) & (curve["method"] == "observed"))
    assert obs["estimate"][0] == x.size


def test_equal_coverage_comparison():
    rng = np.random.default_rng(5)
    deep = rng.negative_binomial(0.5, 0.05, size=500)
    shallow = np.random.default_rng(6).binomial(deep, 0.1)  # the same repertoire, 10% of the depth
    out = at_equal_coverage({"deep": deep, "shallow": shallow}, n_boot=20, seed=0)
    assert out.height == 6 and out["coverage"].n_unique() == 1
    m = dict(zip(out.filter(out["q"] == 0)["sample"], out.filter(out["q"] == 0)["m"], strict=True))
    assert m["deep"] > m["shallow"]
    q2 = dict(zip(out.filter(out["q"] == 2)["sample"], out.filter(out["q"] == 2)["estimate"], strict=True))
    assert q2["shallow"] == pytest.approx(q2["deep"], rel=0.35)
