"""Tests of tcrtrack.diversity against independent computations.

Expected values are hand-worked (arithmetic in comments), from scipy, or from the
defining formula written out here -- never from the skbio function the module calls.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import entropy

from tcrtrack.diversity import METRIC_NAMES, OUTPUT_SCHEMA, diversity_metrics, sample_diversity
from tcrtrack.rarefaction import common_depth, common_depths, rarefy

HAND = np.array([1, 1, 2, 4])  # N = 8, S = 4, p = 1/8, 1/8, 1/4, 1/2


def _random_counts(seed: int, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.floor(rng.pareto(1.0, n) + 1).astype(np.int64)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# --------------------------------------------------------------------- hand example
def test_hand_example_1124() -> None:
    m = diversity_metrics(HAND)
    assert list(m) == list(METRIC_NAMES)
    assert m["total_count"] == 8 and m["richness"] == 4
    # H2 = 2*(1/8*log2 8) + 1/4*log2 4 + 1/2*log2 2 = 0.75 + 0.5 + 0.5 = 1.75 bits
    assert m["shannon_bits"] == pytest.approx(1.75)
    assert m["shannon_nats"] == pytest.approx(1.75 * math.log(2))
    # Pielou = 1.75 / log2(4) = 0.875 ; clonality = 0.125
    assert m["pielou_evenness"] == pytest.approx(0.875)
    assert m["clonality"] == pytest.approx(0.125)
    # lambda = 2*(1/64) + 1/16 + 1/4 = 22/64 = 0.34375
    assert m["simpson"] == pytest.approx(0.34375)
    assert m["inverse_simpson"] == pytest.approx(64 / 22)
    assert m["gini_simpson"] == pytest.approx(0.65625)
    assert m["berger_parker"] == pytest.approx(0.5)
    # Gini: ascending 1,1,2,4, weights (2i-5) = -3,-1,1,3 -> (-3-1+2+12)/(4*8) = 10/32
    # (check: unordered |diffs| 0+1+3+1+3+2 = 10 -> 2*10 / (2 * 4^2 * mean 2) = 20/64)
    assert m["gini_coefficient"] == pytest.approx(0.3125)
    # Chao1 bias-corrected: F1 = 2, F2 = 1 -> 4 + 2*1/(2*2) = 4.5
    assert m["chao1"] == pytest.approx(4.5)
    # var (EstimateS eq 6) = 2*1/(2*2) + 2*3^2/(4*2^2) + 2^2*1*1^2/(4*2^4)
    #                      = 0.5 + 1.125 + 0.0625 = 1.6875 ; T = 0.5
    k = math.exp(1.96 * math.sqrt(math.log(1 + 1.6875 / 0.25)))  # = 16.522...
    assert m["chao1_ci_low"] == pytest.approx(4 + 0.5 / k)  # 4.0303
    assert m["chao1_ci_high"] == pytest.approx(4 + 0.5 * k)  # 12.261
    # ACE: all rare; S_rare 4, F1 2, N_rare 8, C = 1 - 2/8 = 0.75
    # sum k(k-1)F_k = 2*1 + 4*3 = 14 ; gamma2 = 4/0.75 * 14/(8*7) - 1 = 1/3
    # ACE = 4/0.75 + 2/0.75 * 1/3 = 5.333 + 0.889 = 6.222
    assert m["ace"] == pytest.approx(4 / 0.75 + 2 / 0.75 / 3)
    assert m["hill_0"] == 4
    # hill_0.5 = (2*sqrt(1/8) + sqrt(1/4) + sqrt(1/2))^2 = (0.7071 + 0.5 + 0.7071)^2
    assert m["hill_0.5"] == pytest.approx((2 * math.sqrt(1 / 8) + 0.5 + math.sqrt(0.5)) ** 2)
    assert m["hill_1"] == pytest.approx(2**1.75)  # exp(H) = 2^(H in bits)
    assert m["hill_2"] == pytest.approx(64 / 22)
    # hill_4 = (2/8^4 + 1/4^4 + 1/2^4)^(-1/3)
    assert m["hill_4"] == pytest.approx((2 / 4096 + 1 / 256 + 1 / 16) ** (-1 / 3))
    assert m["hill_inf"] == pytest.approx(2.0)
    # D50: top clone 4 >= 8/2 -> 1 clone = 25 % of 4 clones
    assert m["d50"] == 1 and m["d50_percent"] == pytest.approx(25.0)
    # fewer than 10 (100) clones: the top-N hold everything
    assert m["top10_fraction"] == 1.0 and m["top100_fraction"] == 1.0


# ----------------------------------------------------------------- entropy & Hill
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shannon_and_simpson_against_scipy_and_definition(seed: int) -> None:
    x = _random_counts(seed)
    m = diversity_metrics(x)
    p = x / x.sum()
    assert m["shannon_nats"] == pytest.approx(entropy(x))
    assert m["shannon_bits"] == pytest.approx(entropy(x, base=2))
    assert m["pielou_evenness"] == pytest.approx(entropy(x) / math.log(x.size))
    assert m["clonality"] == pytest.approx(1 - entropy(x) / math.log(x.size))
    assert m["simpson"] == pytest.approx(float(np.sum(p * p)))
    assert m["inverse_simpson"] == pytest.approx(1 / float(np.sum(p * p)))
    assert m["gini_simpson"] == pytest.approx(1 - float(np.sum(p * p)))
    assert m["berger_parker"] == pytest.approx(x.max() / x.sum())


@pytest.mark.parametrize("seed", [3, 4])
def test_hill_numbers_equal_their_named_limits(seed: int) -> None:
    x = _random_counts(seed)
    m = diversity_metrics(x)
    p = x / x.sum()
    assert m["hill_0"] == x.size  # richness
    assert m["hill_1"] == pytest.approx(math.exp(entropy(x)))  # exp(Shannon)
    assert m["hill_2"] == pytest.approx(1 / np.sum(p**2))  # inverse Simpson
    assert m["hill_inf"] == pytest.approx(1 / p.max())  # 1 / max p
    for key, q in (("hill_0.5", 0.5), ("hill_4", 4.0)):
        assert m[key] == pytest.approx(np.sum(p**q) ** (1 / (1 - q)))
    # q -> 1 and q -> inf are the limits of the general formula
    assert m["hill_1"] == pytest.approx(np.sum(p ** (1 + 1e-7)) ** (-1e7), rel=1e-4)
    assert m["hill_inf"] == pytest.approx(np.sum(p**200.0) ** (1 / (1 - 200.0)), rel=0.05)
    profile = [m[k] for k in ("hill_0", "hill_0.5", "hill_1", "hill_2", "hill_4", "hill_inf")]
    assert all(a >= b for a, b in itertools.pairwise(profile))  # Hill profile is non-increasing


# --------------------------------------------------------------------- Chao1 / ACE
def test_chao1_with_doubletons_is_bias_corrected() -> None:
    # [1,1,1,2,2,5]: S 6, F1 3, F2 2 -> 6 + 3*2/(2*3) = 7 (classic F1^2/2F2 would be 8.25)
    m = diversity_metrics(np.array([1, 1, 1, 2, 2, 5]))
    assert m["chao1"] == pytest.approx(7.0)
    assert m["chao1_ci_low"] < 7.0 < m["chao1_ci_high"]


def test_chao1_without_doubletons() -> None:
    # [1,1,1,3,5]: S 5, F1 3, F2 0 -> 5 + 3*2/(2*1) = 8
    m = diversity_metrics(np.array([1, 1, 1, 3, 5]))
    assert m["chao1"] == pytest.approx(8.0)
    # EstimateS eq 7: var = 3*2/2 + 3*5^2/4 - 3^4/(4*8) = 3 + 18.75 - 2.53125 = 19.21875
    k = math.exp(1.96 * math.sqrt(math.log(1 + 19.21875 / 3**2)))  # T = 8 - 5 = 3
    assert m["chao1_ci_low"] == pytest.approx(5 + 3 / k)  # 5.369
    assert m["chao1_ci_high"] == pytest.approx(5 + 3 * k)  # 29.38


def test_chao1_without_singletons() -> None:
    # [2,2,3]: F1 0 -> Chao1 = S = 3 ; CI (eq 14) with P = exp(-7/3)
    m = diversity_metrics(np.array([2, 2, 3]))
    assert m["chao1"] == 3.0
    p = math.exp(-7 / 3)
    half = 1.96 * math.sqrt(3 * p / (1 - p))
    assert m["chao1_ci_low"] == pytest.approx(max(3.0, 3 / (1 - p) - half))
    assert m["chao1_ci_high"] == pytest.approx(3 / (1 - p) + half)


def test_chao1_ci_large_singleton_counts_do_not_overflow() -> None:
    # 200k singletons, 50k doubletons: int64 evaluation of F1^2 F2 (F1-1)^2 overflows
    x = np.concatenate([np.ones(200_000, int), np.full(50_000, 2), np.full(1000, 30)])
    m = diversity_metrics(x)
    s, f1, f2 = 251_000.0, 200_000.0, 50_000.0
    chao = s + f1 * (f1 - 1) / (2 * (f2 + 1))
    var = (
        f1 * (f1 - 1) / (2 * (f2 + 1))
        + f1 * (2 * f1 - 1) ** 2 / (4 * (f2 + 1) ** 2)
        + f1**2 * f2 * (f1 - 1) ** 2 / (4 * (f2 + 1) ** 4)
    )
    k = math.exp(1.96 * math.sqrt(math.log(1 + var / (chao - s) ** 2)))
    assert m["chao1"] == pytest.approx(chao)
    assert m["chao1_ci_low"] == pytest.approx(s + (chao - s) / k)
    assert m["chao1_ci_high"] == pytest.approx(s + (chao - s) * k)


def test_ace_rare_and_abundant_clones() -> None:
    # rare (<=10): 1,1,2,3,5 -> S_rare 5, F1 2, N_rare 12 ; abundant: 12, 20 -> S_abund 2
    # C = 1 - 2/12 = 5/6 ; sum k(k-1)F_k = 2 + 6 + 20 = 28
    # gamma2 = (5 / (5/6)) * 28 / (12*11) - 1 = 168/132 - 1 = 0.2727
    # ACE = 2 + 6 + (2 / (5/6)) * 0.2727 = 8.6545
    expected = 2 + 6 + 2.4 * (168 / 132 - 1)
    assert diversity_metrics(np.array([1, 1, 2, 3, 5, 12, 20]))["ace"] == pytest.approx(expected)
    # abundant clone sizes do not matter, however large
    assert diversity_metrics(np.array([1, 1, 2, 3, 5, 12, 10**8]))["ace"] == pytest.approx(expected)


def test_ace_undefined_when_all_rare_clones_are_singletons() -> None:
    assert math.isnan(diversity_metrics(np.array([1, 1, 1, 50]))["ace"])
    assert diversity_metrics(np.array([50, 60]))["ace"] == 2.0  # no rare clone: S_abund


# ------------------------------------------------------------------ Gini, D50, top-N
def test_gini_zero_for_equal_clones_and_matches_mean_abs_difference() -> None:
    assert diversity_metrics(np.full(7, 5))["gini_coefficient"] == pytest.approx(0.0, abs=1e-12)
    x = _random_counts(5, 200).astype(float)
    mad = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean())
    assert diversity_metrics(x)["gini_coefficient"] == pytest.approx(mad)


@pytest.mark.parametrize(
    ("counts", "d50"),
    [([1, 1, 2, 4], 1), ([3, 3, 3, 3], 2), ([5, 4, 1], 1), ([1, 2, 3, 4], 2), ([1] * 9, 5)],
)
def test_d50_examples(counts: list[int], d50: int) -> None:
    # [3,3,3,3]: N 12, 3 < 6, 6 >= 6 -> 2 ; [4,3,2,1]: 4 < 5, 7 >= 5 -> 2 ; nine 1s: 5 >= 4.5
    m = diversity_metrics(np.array(counts))
    assert m["d50"] == d50
    assert m["d50_percent"] == pytest.approx(100 * d50 / len(counts))


def test_d50_and_top_fractions_against_loop() -> None:
    x = _random_counts(6, 250)
    ordered = sorted(x.tolist(), reverse=True)
    running, d50 = 0, 0
    while 2 * running < sum(ordered):
        running += ordered[d50]
        d50 += 1
    m = diversity_metrics(x)
    assert m["d50"] == d50
    assert m["top10_fraction"] == pytest.approx(sum(ordered[:10]) / sum(ordered))
    assert m["top100_fraction"] == pytest.approx(sum(ordered[:100]) / sum(ordered))
    assert diversity_metrics(x[:50])["top100_fraction"] == 1.0  # fewer than 100 clones


# ------------------------------------------------------------------ edge cases
def test_zeros_are_ignored() -> None:
    with_zeros = diversity_metrics(np.array([0, 1, 0, 1, 2, 0, 4, 0]))
    plain = diversity_metrics(HAND)
    assert all(_same(with_zeros[k], plain[k]) for k in METRIC_NAMES)


def test_single_clone_sample() -> None:
    m = diversity_metrics(np.array([0, 7]))
    assert (m["richness"], m["shannon_nats"], m["simpson"], m["berger_parker"]) == (1, 0, 1, 1)
    assert math.isnan(m["pielou_evenness"]) and math.isnan(m["clonality"])
    assert m["gini_coefficient"] == 0 and m["chao1"] == 1 and m["d50"] == 1
    assert m["d50_percent"] == 100 and m["top10_fraction"] == 1
    # ACE: S_rare 1, F1 0, C 1, gamma2 = 1 * 7*6 / (7*6) - 1 = 0 -> 1
    assert m["ace"] == 1
    assert all(m[k] == pytest.approx(1) for k in METRIC_NAMES if k.startswith("hill_"))
    assert math.isnan(diversity_metrics(np.array([1]))["ace"])  # lone singleton


def test_empty_sample_is_nan() -> None:
    m = diversity_metrics(np.array([0, 0]))
    assert m["total_count"] == 0 and m["richness"] == 0
    assert all(math.isnan(m[k]) for k in METRIC_NAMES[2:])


@pytest.mark.parametrize("bad", [np.array([1, -1]), np.array([[1, 2]]), np.array([1.5, 2.0])])
def test_invalid_counts_raise(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        diversity_metrics(bad)


# ------------------------------------------------------------------ rarefaction
@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=1, max_size=40),
    fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_rarefy_exact_depth_within_counts(counts: list[int], fraction: float, seed: int) -> None:
    x = np.array(counts)
    depth = int(fraction * x.sum())
    sub = rarefy(x, depth=depth, rng=np.random.default_rng(seed))
    assert sub.shape == x.shape
    assert int(sub.sum()) == depth
    assert np.all(sub >= 0) and np.all(sub <= x)


@pytest.mark.parametrize("depth", [40, 100, 170])  # numpy's "count" method, "marginals", "count" again
def test_rarefy_is_unbiased_subsampling(depth: int) -> None:
    x = np.array([1, 3, 10, 50, 136])  # N = 200; each marginal is hypergeometric(N, x_i, depth)
    rng = np.random.default_rng(11)
    draws = np.array([rarefy(x, depth=depth, rng=rng) for _ in range(4000)])
    assert np.all(draws.sum(axis=1) == depth)
    assert draws.mean(axis=0) == pytest.approx(stats.hypergeom.mean(200, x, depth), abs=0.35)
    assert draws.var(axis=0) == pytest.approx(stats.hypergeom.var(200, x, depth), rel=0.12, abs=0.05)
    assert np.array_equal(rarefy(x, depth=200, rng=rng), x)


def test_rarefy_depth_above_total_raises() -> None:
    with pytest.raises(ValueError, match="depth 9.*total is only 8"):
        rarefy(HAND, depth=9, rng=np.random.default_rng(0))


# ------------------------------------------------------------------ sample table
def test_sample_diversity_is_deterministic_for_a_seed() -> None:
    x = _random_counts(7, 400)
    a = sample_diversity(x, depth=300, n_iterations=5, seed=42)
    b = sample_diversity(x, depth=300, n_iterations=5, seed=42)
    c = sample_diversity(x, depth=300, n_iterations=5, seed=43)
    assert a.equals(b)
    assert a["richness"][1] != c["richness"][1]


def test_rarefied_row_is_mean_and_sd_of_manual_loop() -> None:
    x = _random_counts(8, 400)
    depth, n_iter, seed = 250, 6, 3
    total = int(x.sum())
    method = "count" if min(depth, total - depth) <= total // 4 else "marginals"  # the rule of rarefy()
    runs = []
    for i in range(n_iter):
        sub = np.random.default_rng([seed, i]).multivariate_hypergeometric(x, depth, method=method)
        runs.append([diversity_metrics(sub)[k] for k in METRIC_NAMES])
    arr = np.array(runs)
    df = sample_diversity(x, depth=depth, n_iterations=n_iter, seed=seed)
    assert df.columns == list(OUTPUT_SCHEMA)
    full, rare = df.row(0, named=True), df.row(1, named=True)
    assert (full["depth_type"], full["depth"], rare["depth_type"], rare["depth"]) == (
        "full",
        int(x.sum()),
        "rarefied",
        depth,
    )
    assert full["note"] is None and rare["note"] is None
    assert all(full[f"{k}_subsampling_sd"] is None for k in METRIC_NAMES)
    assert _same(full["chao1"], diversity_metrics(x)["chao1"])
    for j, k in enumerate(METRIC_NAMES):
        mean = float(np.sum(arr[:, j]) / n_iter)
        sd = math.sqrt(float(np.sum((arr[:, j] - mean) ** 2)) / (n_iter - 1))
        assert rare[k] == pytest.approx(mean, nan_ok=True), k
        assert rare[f"{k}_subsampling_sd"] == pytest.approx(sd, nan_ok=True, abs=1e-9), k
    assert rare["total_count"] == depth and rare["total_count_subsampling_sd"] == 0


def test_below_depth_row_is_reported_with_note() -> None:
    df = sample_diversity(HAND, depth=100)
    assert df.height == 2
    rare = df.row(1, named=True)
    assert rare["depth_type"] == "rarefied" and rare["depth"] == 100
    assert rare["note"] == "below common depth (8 < 100)"
    assert all(rare[k] is None and rare[f"{k}_subsampling_sd"] is None for k in METRIC_NAMES)
    assert df.row(0, named=True)["richness"] == 4


def test_no_depth_gives_full_row_only_with_stable_schema() -> None:
    df = sample_diversity(HAND, depth=None)
    assert df.height == 1 and df.schema == pl.Schema(OUTPUT_SCHEMA)
    assert "hill_0.5" in df.columns and df["depth"][0] == 8


def test_depth_equal_total_and_single_iteration() -> None:
    df = sample_diversity(HAND, depth=8, n_iterations=3)
    full, rare = df.row(0, named=True), df.row(1, named=True)
    assert all(_same(full[k], rare[k]) for k in METRIC_NAMES)  # subsample of everything
    assert rare["shannon_nats_subsampling_sd"] == 0
    single = sample_diversity(HAND, depth=4, n_iterations=1).row(1, named=True)
    assert single["richness"] is not None and single["richness_subsampling_sd"] is None


def test_common_depths_per_compartment_or_cohort() -> None:
    totals = pl.DataFrame(
        {
            "sample": ["b1", "b2", "t1", "t2", "p"],
            "compartment": ["blood", "blood", "tumor", "tumor", "product"],
            "total": [5000, 3000, 400, 900, 7000],
        }
    )
    by = common_depths(totals)
    assert by["depth"].to_list() == [3000, 3000, 400, 400, 7000]
    assert by["basis"].to_list()[:3] == ["smallest blood sample"] * 2 + ["smallest tumor sample"]
    assert common_depths(totals, by_compartment=False)["depth"].to_list() == [400] * 5
    assert common_depths(totals, configured=1000)["depth"].to_list() == [1000] * 5
    mapped = common_depths(
        totals.with_columns(total=None), configured={"blood": 2000, "tumor": 300, "product": 50}, by_compartment=False
    )
    assert mapped["depth"].to_list() == [2000, 2000, 300, 300, 50] and set(mapped["basis"]) == {"configured"}
    with pytest.raises(ValueError, match="no depth for compartment 'product'"):
        common_depths(totals, configured={"blood": 2000, "tumor": 300})


def test_common_depth() -> None:
    assert common_depth([500, 120, 900], configured=None) == 120
    assert common_depth([500, 120, 900], configured=1000) == 1000
    with pytest.raises(ValueError):
        common_depth([], configured=None)
    with pytest.raises(ValueError):
        common_depth([5], configured=0)
