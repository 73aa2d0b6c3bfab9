"""Expansion tests: exact p-values against scipy, BH, the result table, calibration, edge cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import tcrtrack.expansion as ex  # module import: pytest must not collect the deprecated ex.test_expansion
import tcrtrack.noise as nz
import tcrtrack.noise_fit as nf


def constant_rho(rho: float) -> nz.NoiseModel:
    return nz.NoiseModel(
        source="replicates", log10_freq=(-4.0,), rho_bins=(rho,), n_clones=(1000,), p_null=(float("nan"),)
    )


def bb_pair(rng, freqs, depth_a, depth_b, rho, expanded=None, fold=None):
    """``n ~ Poisson``, ``b | n ~ BetaBinomial(n, p0, rho)`` exactly; expanded clones' odds x ``fold``."""
    n = rng.poisson(freqs * (depth_a + depth_b))
    p0 = depth_b / (depth_a + depth_b)
    s = 1.0 / rho - 1.0
    p = rng.beta(p0 * s, (1.0 - p0) * s, freqs.size)
    if expanded is not None:
        odds = p / (1.0 - p) * fold
        p = np.where(expanded, odds / (1.0 + odds), p)
    b = rng.binomial(n, p)
    return n - b, b


def null_scenario(seed: int, rho: float = 0.02, n_clones: int = 20_000):
    """20k clones of ~10-1000 templates (log-uniform frequencies, no dominant clone): a replicate
    pair and a later sample drawn under the overdispersed null."""
    rng = np.random.default_rng(seed)
    f = 10 ** rng.uniform(-5.0, -3.0, n_clones)
    f /= f.sum()
    r1, r2 = bb_pair(rng, f, 2_500_000, 2_500_000, rho)
    a, b = bb_pair(rng, f, 2_500_000, 2_000_000, rho)
    return rng, f, (r1, r2), a, b


# --------------------------------------------------------------------------- log2 fold change


def test_log2_fold_change_by_hand():
    got = ex.log2_fold_change([3, 0, 7, 0], [7, 15, 3, 0], n_a=100, n_b=200, pseudocount=1.0)
    # (8/200)/(4/100) = 1; (16/200)/(1/100) = 8; (4/200)/(8/100) = 1/4; (1/200)/(1/100) = 1/2
    np.testing.assert_allclose(got, [0.0, 3.0, -2.0, -1.0])
    half = ex.log2_fold_change([0], [1], n_a=10, n_b=10, pseudocount=0.5)
    np.testing.assert_allclose(half, [np.log2(1.5 / 0.5)])
    with pytest.raises(ValueError, match="pseudocount"):
        ex.log2_fold_change([1], [1], n_a=10, n_b=10, pseudocount=0.0)


# --------------------------------------------------------------------------- Fisher


TABLES = [  # (a, b, n_a, n_b)
    (0, 5, 1000, 800),  # new clone
    (5, 0, 1000, 800),  # gone: p = 1
    (0, 0, 1000, 800),  # untested: p = 1
    (3, 40, 5000, 20000),
    (12, 12, 3000, 3000),
    (2, 800, 1000, 800),  # b = n_b
    (1000, 800, 1000, 800),  # a = n_a and b = n_b
    (40, 3, 20000, 5000),
    (0, 3, 50_000, 7_000),  # shallow biopsy
    (120, 900, 2_000_000, 1_500_000),
]


@pytest.mark.parametrize(("a", "b", "n_a", "n_b"), TABLES)
def test_fisher_equals_scipy_fisher_exact(a, b, n_a, n_b):
    expected = stats.fisher_exact([[b, n_b - b], [a, n_a - a]], alternative="greater").pvalue
    got = ex.fisher_pvalues([a], [b], n_a=n_a, n_b=n_b)[0]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_fisher_vectorised_equals_per_table():
    a = np.array([t[0] for t in TABLES[:5]])
    b = np.array([t[1] for t in TABLES[:5]])
    got = ex.fisher_pvalues(a, b, n_a=5000, n_b=20000)
    expected = [
        stats.fisher_exact([[bi, 20000 - bi], [ai, 5000 - ai]], alternative="greater").pvalue
        for ai, bi in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert got[1] == 1.0 and got[2] == 1.0


@settings(max_examples=50, deadline=None)
@given(a=st.integers(0, 60), b=st.integers(0, 60), extra_a=st.integers(0, 300), extra_b=st.integers(0, 300))
def test_fisher_property_matches_scipy(a, b, extra_a, extra_b):
    n_a, n_b = a + extra_a + 1, b + extra_b + 1
    expected = stats.fisher_exact([[b, n_b - b], [a, n_a - a]], alternative="greater").pvalue
    assert ex.fisher_pvalues([a], [b], n_a=n_a, n_b=n_b)[0] == pytest.approx(expected, rel=1e-9, abs=1e-300)


# --------------------------------------------------------------------------- beta-binomial


def test_betabinomial_equals_scipy_betabinom():
    a = np.array([0, 1, 3, 10, 40, 0, 25, 7])
    b = np.array([4, 0, 9, 30, 35, 1, 60, 7])
    n_a, n_b, rho = 60_000, 45_000, 0.03
    got = ex.betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=constant_rho(rho))
    p0 = n_b / (n_a + n_b)
    alpha, beta = p0 * (1 / rho - 1), (1 - p0) * (1 / rho - 1)  # computed here, independently
    expected = stats.betabinom.sf(b - 1, a + b, alpha, beta)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_betabinomial_uses_frequency_dependent_rho():
    model = nz.NoiseModel(
        source="bulk", log10_freq=(-5.0, -3.0), rho_bins=(0.05, 0.01), n_clones=(500, 500), p_null=(0.5, 0.5)
    )
    n_a = n_b = 500_000  # n = 20 -> f = 2e-5; n = 2000 -> f = 2e-3
    a, b = np.array([5, 700]), np.array([15, 1300])
    got = ex.betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=model)
    rho = model.rho((a + b) / (n_a + n_b))
    expected = [
        stats.betabinom.sf(bi - 1, ai + bi, 0.5 * (1 / r - 1), 0.5 * (1 / r - 1))
        for ai, bi, r in zip(a, b, rho, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    assert 0.01 < rho[0] < 0.05 and rho[1] == 0.01


@pytest.mark.parametrize("noise", [nz.poisson_noise(), constant_rho(1e-12)])
def test_betabinomial_reduces_to_binomial_test(noise):
    a = np.array([0, 2, 5, 30, 100, 0])
    b = np.array([3, 2, 20, 40, 150, 0])
    n_a, n_b = 70_000, 30_000
    got = ex.betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=noise)
    p0 = n_b / (n_a + n_b)
    expected = [
        stats.binomtest(int(bi), int(ai + bi), p0, alternative="greater").pvalue if ai + bi else 1.0
        for ai, bi in zip(a, b, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_overdispersion_makes_pvalues_larger_in_the_tail():
    a, b = np.array([10, 50]), np.array([40, 150])
    binomial = ex.betabinomial_pvalues(a, b, n_a=10_000, n_b=10_000, noise=nz.poisson_noise())
    overdispersed = ex.betabinomial_pvalues(a, b, n_a=10_000, n_b=10_000, noise=constant_rho(0.05))
    assert np.all(overdispersed > 10 * binomial)


# --------------------------------------------------------------------------- Benjamini-Hochberg


def test_bh_by_hand():
    # sorted 0.01, 0.04, 0.045, 0.2 -> 4p/rank = 0.04, 0.08, 0.06, 0.2 -> step-up minimum:
    # 0.04, 0.06, 0.06, 0.2
    np.testing.assert_allclose(ex.bh_qvalues([0.04, 0.01, 0.045, 0.2]), [0.06, 0.04, 0.06, 0.2])
    np.testing.assert_allclose(ex.bh_qvalues([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(ex.bh_qvalues([0.9]), [0.9])
    assert ex.bh_qvalues([]).size == 0


def test_bh_matches_a_plain_implementation():
    p = np.random.default_rng(5).beta(0.3, 1.0, 500)
    order = np.argsort(p)
    raw = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.empty_like(p)
    q[order] = np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1.0)
    np.testing.assert_allclose(ex.bh_qvalues(p), q)


def test_bh_rejects_invalid():
    with pytest.raises(ValueError):
        ex.bh_qvalues([0.1, np.nan])
    with pytest.raises(ValueError):
        ex.bh_qvalues([1.2])


def test_bh_of_repeated_p_values_is_bit_identical():
    """q-values from the distinct (a, b) pairs equal scipy's on every clone, bit for bit, ties included."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        k = int(rng.integers(1, 40))
        p = rng.choice(np.r_[rng.random(k), 0.0, 0.5, 1.0], size=k)  # repeated values across entries too
        p = np.round(p, 2) if trial % 2 else p
        repeats = rng.integers(1, 6, size=k)
        expected = ex.bh_qvalues(np.repeat(p, repeats))
        np.testing.assert_array_equal(np.repeat(ex._bh_qvalues_of_repeated(p, repeats), repeats), expected)
    with pytest.raises(ValueError):
        ex._bh_qvalues_of_repeated(np.array([0.1, np.nan]), np.array([2, 1]))


def test_pvalues_and_qvalues_equal_the_per_clone_computation_exactly():
    a, b = null_scenario(9, n_clones=4_000)[3:]
    out = ex.expansion_arrays(a, b, n_a=a.sum(), n_b=b.sum(), model="fisher")
    tested = (a + b) > 0
    p = ex.fisher_pvalues(a[tested], b[tested], n_a=a.sum(), n_b=b.sum())
    np.testing.assert_array_equal(out["pvalue"][tested], p)
    np.testing.assert_array_equal(out["qvalue"][tested], ex.bh_qvalues(p))
    assert np.isnan(out["pvalue"][~tested]).all() and not out["significant"][~tested].any()


# --------------------------------------------------------------------------- the result table


def test_result_table_columns_nulls_and_rule():
    a = np.array([0, 0, 1, 50, 2, 0])
    b = np.array([0, 60, 1, 40, 30, 2])
    out = ex.expansion_table(a, b, n_a=10_000, n_b=10_000, model="fisher", fdr=0.05, min_log2fc=1.0, min_count=5)
    assert out.schema == pl.Schema(ex.RESULT_SCHEMA)
    assert out.height == a.size
    assert out["count_ref"].to_list() == a.tolist() and out["count_post"].to_list() == b.tolist()
    np.testing.assert_allclose(out["freq_post"].to_numpy(), b / 10_000)
    assert out["pvalue"][0] is None and out["qvalue"][0] is None and not out["significant"][0]
    tested = (a + b) > 0
    p = ex.fisher_pvalues(a[tested], b[tested], n_a=10_000, n_b=10_000)
    np.testing.assert_allclose(out["pvalue"].drop_nulls().to_numpy(), p)
    np.testing.assert_allclose(out["qvalue"].drop_nulls().to_numpy(), ex.bh_qvalues(p))  # tested only
    q = out["qvalue"].fill_null(1.0).to_numpy()
    rule = (q < 0.05) & (out["log2fc"].to_numpy() >= 1.0) & (b >= 5)
    assert out["significant"].to_list() == rule.tolist()
    assert out["significant"].to_list() == [False, True, False, False, True, False]


def test_arrays_are_the_table_columns():
    a, b = np.array([0, 0, 1, 50, 2, 0]), np.array([0, 60, 1, 40, 30, 2])
    table = ex.expansion_table(a, b, n_a=10_000, n_b=10_000, noise=constant_rho(0.01))
    arrays = ex.expansion_arrays(a, b, n_a=10_000, n_b=10_000, noise=constant_rho(0.01))
    assert list(arrays) == table.columns
    assert (
        pl.DataFrame(arrays, schema=ex.RESULT_SCHEMA)
        .with_columns(pl.col("pvalue", "qvalue").fill_nan(None))
        .equals(table)
    )


def test_result_table_does_not_share_the_callers_arrays():
    a, b = np.array([3, 0, 5]), np.array([1, 4, 5])
    out = ex.expansion_table(a, b, n_a=100, n_b=100, model="fisher")
    a[0], b[0] = 7, 7
    assert out["count_ref"][0] == 3 and out["count_post"][0] == 1


def test_overdispersed_without_noise_fits_the_bulk():
    _, _, _, a, b = null_scenario(3, n_clones=5_000)
    noise = nf.fit_noise_from_bulk(a, b, n_a=a.sum(), n_b=b.sum())
    inline = ex.expansion_table(a, b, n_a=a.sum(), n_b=b.sum())
    given_ = ex.expansion_table(a, b, n_a=a.sum(), n_b=b.sum(), noise=noise)
    assert inline.equals(given_)


def test_argument_validation():
    with pytest.raises(ValueError, match="model"):
        ex.expansion_table([1], [2], n_a=10, n_b=10, model="poisson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise"):
        ex.expansion_table([1], [2], n_a=10, n_b=10, model="fisher", noise=nz.poisson_noise())
    with pytest.raises(ValueError, match="fdr"):
        ex.expansion_table([1], [2], n_a=10, n_b=10, fdr=0.0)
    with pytest.raises(ValueError, match="aligned"):
        ex.expansion_table([1, 2], [2], n_a=10, n_b=10)
    with pytest.raises(ValueError, match="exceed"):
        ex.expansion_table([11], [2], n_a=10, n_b=10)
    with pytest.raises(ValueError, match="non-negative"):
        ex.expansion_table([-1], [2], n_a=10, n_b=10)
    with pytest.raises(ValueError, match="non-negative"):
        ex.expansion_table([1.5], [2], n_a=10, n_b=10)


def test_deprecated_alias_warns_and_is_not_collected_by_pytest():
    assert ex.test_expansion.__test__ is False
    with pytest.warns(DeprecationWarning, match="expansion_table"):
        old = ex.test_expansion([1, 0, 5], [2, 3, 40], n_a=100, n_b=100, model="fisher")
    assert old.equals(ex.expansion_table([1, 0, 5], [2, 3, 40], n_a=100, n_b=100, model="fisher"))


# --------------------------------------------------------------------------- calibration


def test_null_calibration_overdispersed_uniform_fisher_anticonservative():
    """The key claim: under a null with beta-binomial overdispersion (rho = 0.02), the
    overdispersed model's p-values are ~uniform while Fisher's are anti-conservative."""
    _, _, (r1, r2), a, b = null_scenario(2024)
    n_a, n_b = int(a.sum()), int(b.sum())
    replicates = nf.fit_noise_from_replicates([r1, r2])
    bulk = nf.fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b)
    p_rep = ex.betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=replicates)
    p_bulk = ex.betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=bulk)
    p_fisher = ex.fisher_pvalues(a, b, n_a=n_a, n_b=n_b)
    assert 0.03 <= np.mean(p_rep < 0.05) <= 0.07
    assert 0.03 <= np.mean(p_bulk < 0.05) <= 0.07
    assert 0.004 <= np.mean(p_rep < 0.01) <= 0.016  # discreteness makes it a little conservative
    assert np.mean(p_fisher < 0.05) > 0.15
    assert np.mean(p_fisher < 0.01) > 0.08


def test_realised_fdr_near_nominal_with_planted_expansions():
    rng = np.random.default_rng(77)
    f = 10 ** rng.uniform(-5.0, -3.0, 20_000)
    f /= f.sum()
    expanded = rng.random(f.size) < 0.05
    fold = np.exp(rng.uniform(np.log(1.5), np.log(8.0), f.size))
    a, b = bb_pair(rng, f, 1_000_000, 800_000, 0.02, expanded=expanded, fold=fold)
    n_a, n_b = int(a.sum()), int(b.sum())

    strong = expanded & (fold > 4.0) & (a + b >= 50)

    def realised(table: pl.DataFrame) -> tuple[float, float]:
        sig = table["significant"].to_numpy()
        return float((sig & ~expanded).sum() / max(sig.sum(), 1)), float((sig & strong).sum() / strong.sum())

    # the default: overdispersed model, noise fitted on this comparison's bulk
    fdr_bulk, power_bulk = realised(ex.expansion_table(a, b, n_a=n_a, n_b=n_b, min_log2fc=0.0, min_count=0))
    fdr_fisher, _ = realised(ex.expansion_table(a, b, n_a=n_a, n_b=n_b, model="fisher", min_log2fc=0.0, min_count=0))
    assert fdr_bulk <= 0.075  # nominal 0.05 (measured ~0.01: discreteness is conservative)
    assert power_bulk > 0.6  # and it still finds the clear expansions
    assert fdr_fisher > 0.2  # measured ~0.5


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("model", ["fisher", "betabinomial"])
def test_reference_empty_everywhere(model):
    b = np.random.default_rng(1).poisson(4, 3000)
    a = np.zeros_like(b)
    out = ex.expansion_table(a, b, n_a=20_000, n_b=int(b.sum()), model=model)
    p = out["pvalue"].drop_nulls().to_numpy()
    assert p.size == int((b > 0).sum()) and np.all((p >= 0) & (p <= 1))
    assert np.all(np.isfinite(out["log2fc"].to_numpy()))


@pytest.mark.parametrize("model", ["fisher", "betabinomial"])
def test_later_sample_empty_gives_p_one(model):
    a = np.array([5, 1, 0, 30])
    out = ex.expansion_table(a, np.zeros(4, int), n_a=100, n_b=50, model=model)
    assert out["pvalue"].drop_nulls().to_list() == [1.0, 1.0, 1.0]
    assert not out["significant"].any()


def test_single_clone_falls_back_to_binomial():
    out = ex.expansion_table([3], [10], n_a=100, n_b=100)
    expected = stats.binomtest(10, 13, 0.5, alternative="greater").pvalue
    assert out["pvalue"][0] == pytest.approx(expected)
    assert out["qvalue"][0] == pytest.approx(expected)


@pytest.mark.parametrize(("n_a", "n_b"), [(0, 10), (10, 0), (-5, 10), (float("nan"), 10)])
def test_zero_depth_is_a_clear_error(n_a, n_b):
    with pytest.raises(ValueError, match="depth n_"):
        ex.expansion_table([0], [0], n_a=n_a, n_b=n_b)
    with pytest.raises(ValueError, match="depth n_"):
        ex.fisher_pvalues([0], [0], n_a=n_a, n_b=n_b)


@pytest.mark.parametrize("model", ["fisher", "betabinomial"])
def test_empty_arrays(model):
    out = ex.expansion_table(np.array([], int), np.array([], int), n_a=10, n_b=10, model=model)
    assert out.height == 0 and out.schema == pl.Schema(ex.RESULT_SCHEMA)
    assert ex.fisher_pvalues([], [], n_a=10, n_b=10).size == 0
    assert ex.betabinomial_pvalues([], [], n_a=10, n_b=10, noise=nz.poisson_noise()).size == 0


# --------------------------------------------------------------------------- pooling


def test_pool_replicates():
    counts, depth = ex.pool_replicates([[1, 0, 4], [2, 3, 0]])
    assert counts.tolist() == [3, 3, 4] and depth == 10
    counts, depth = ex.pool_replicates([[1, 0, 4], [2, 3, 0]], depths=[100, 50])
    assert depth == 150
    with pytest.raises(ValueError, match="aligned"):
        ex.pool_replicates([[1, 0], [2, 3, 0]])
    with pytest.raises(ValueError, match="exceed"):
        ex.pool_replicates([[1, 0, 4], [2, 3, 0]], depths=[3, 50])
    with pytest.raises(ValueError):
        ex.pool_replicates([])
