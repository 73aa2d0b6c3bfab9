"""The empirical null of b | n: p-values against quadrature, calibration against brute-force simulation of
noise laws other than the model's own, power in the far tail, robustness to expansions and broad change."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, special, stats

from tcrtrack.empirical_null import NULL_SCALES, EmpiricalNull, poisson_null
from tcrtrack.null_fit import fit_empirical_null, pooling_weight


def one_scale(sd: float, *, center: float = 0.0, beta: float = 0.0) -> EmpiricalNull:
    """A null with all its weight on the grid scale closest to ``sd``."""
    k = int(np.argmin(np.abs(np.asarray(NULL_SCALES) - sd)))
    weights = np.zeros(len(NULL_SCALES))
    weights[k] = 1.0
    return EmpiricalNull(source="bulk", center=center, beta=beta, weights=tuple(weights))


def quad_tail(b: int, n: int, *, theta: float, sd: float) -> float:
    """P(X >= b), X | pi ~ Binomial(n, pi), logit(pi) ~ N(theta, sd^2), by adaptive quadrature (scipy)."""

    def integrand(z):
        return stats.binom.sf(b - 1, n, special.expit(theta + sd * z)) * stats.norm.pdf(z)

    # the integrand peaks where the binomial tail turns on; give quad that point
    turn = (special.logit(min(max(b / n, 1e-9), 1 - 1e-9)) - theta) / sd
    points = sorted({-8.0, 0.0, float(np.clip(turn, -30, 30)), 38.0})
    return sum(
        integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-10, limit=200)[0] for lo, hi in itertools.pairwise(points)
    )


@pytest.mark.parametrize(
    ("b", "n", "theta", "sd"),
    [
        (5, 8, 0.0, 0.32),
        (40, 60, 0.2, 0.45),
        (30, 30, 0.0, 0.45),
        (160, 160, 0.0, 0.32),
        (300, 400, -0.5, 0.15),
        (2, 2, 1.6, 0.9),
        (1500, 2000, 0.0, 0.1),
        (12, 40, -1.6, 0.65),
    ],
)
def test_pvalue_equals_quadrature_of_its_definition(b, n, theta, sd):
    model = one_scale(sd)
    sd_grid = model.component_sd([1e-5])[0][int(np.argmax(model.weights))]
    expected = quad_tail(b, n, theta=theta, sd=sd_grid)
    got = model.pvalues(b, n, offset=theta, total_depth=1e5)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-300)


def test_mixture_pvalue_is_the_weighted_sum_of_its_components():
    weights = np.zeros(len(NULL_SCALES))
    weights[[3, 8]] = (0.7, 0.3)
    model = EmpiricalNull(source="bulk", weights=tuple(weights))
    expected = sum(w * quad_tail(25, 30, theta=0.0, sd=NULL_SCALES[k]) for k, w in ((3, 0.7), (8, 0.3)))
    assert model.pvalues(25, 30, offset=0.0, total_depth=1e5) == pytest.approx(expected, rel=1e-4)


def test_zero_sd_is_the_binomial_test():
    model = poisson_null()
    for b, n, theta in ((3, 10, 0.0), (9, 10, 0.4), (50, 50, -1.0)):
        assert model.pvalues(b, n, offset=theta, total_depth=1e5) == pytest.approx(
            stats.binom.sf(b - 1, n, special.expit(theta)), rel=1e-9
        )


def test_no_template_later_gives_p_one_and_minimum_is_all_later():
    model = one_scale(0.3)
    assert model.pvalues(0, 12, offset=0.0, total_depth=1e5) == 1.0
    assert model.min_pvalues(7, offset=0.0, total_depth=1e5) == pytest.approx(
        model.pvalues(7, 7, offset=0.0, total_depth=1e5)
    )


def lognormal_pair(rng, *, n_clones=60_000, depth_a=150_000, depth_b=150_000, sd=0.3):
    """Two draws of one repertoire: frequencies x exp(N(0, sd^2)) each, then Poisson sampling."""
    f = rng.pareto(1.2, n_clones) + 1
    f /= f.sum()
    a = rng.poisson(f * np.exp(rng.normal(0, sd, n_clones)) * depth_a)
    b = rng.poisson(f * np.exp(rng.normal(0, sd, n_clones)) * depth_b)
    return a, b


def null_tail_share(model, a, b, threshold):
    n = a + b
    p = model.pvalues(b, n, offset=float(np.log(b.sum() / a.sum())), total_depth=float(a.sum() + b.sum()))
    keep = n >= 5
    return float((p[keep] < threshold).mean())


@pytest.mark.parametrize(("depth_a", "depth_b"), [(150_000, 150_000), (150_000, 30_000), (30_000, 150_000)])
def test_calibrated_on_lognormal_draws_at_unequal_depths(depth_a, depth_b):
    """Brute-force null: no clone changes, so P(p < t) must not exceed t (beyond Monte Carlo error)."""
    rng = np.random.default_rng(7)
    a, b = lognormal_pair(rng, depth_a=depth_a, depth_b=depth_b, sd=0.3)
    model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()))
    assert model.sd([1e-4])[0] == pytest.approx(0.3 * np.sqrt(2), rel=0.2)
    for threshold in (0.01, 0.001):
        assert null_tail_share(model, a, b, threshold) <= 1.6 * threshold + 3 / np.sum(a + b >= 5)


def test_calibrated_on_gamma_library_noise_and_negative_binomial_power_law():
    """Noise laws the model does not assume: Gamma multiplicative noise (the beta-binomial's world) and
    NoisET's negative binomial with variance m + 0.7 m^1.1."""
    rng = np.random.default_rng(3)
    f = rng.pareto(1.2, 60_000) + 1
    f /= f.sum()
    gamma = [rng.poisson(f * rng.gamma(10, 0.1, f.size) * d) for d in (150_000, 50_000)]
    m = [f * 150_000, f * 150_000]
    nb = []
    for mean in m:
        var = mean + 0.7 * mean**1.1
        p = mean / var
        nb.append(rng.negative_binomial(mean * p / (1 - p), p))
    for a, b in (gamma, nb):
        model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()))
        assert null_tail_share(model, a, b, 0.001) <= 0.002


def test_jump_from_zero_reaches_genome_wide_significance():
    """0 -> 100 templates at 150k depth where the fitted draw-to-draw sd is ~0.4: p far below 5e-8."""
    rng = np.random.default_rng(11)
    a, b = lognormal_pair(rng, sd=0.3)
    model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()))
    p = model.pvalues(100, 100, offset=float(np.log(b.sum() / a.sum())), total_depth=float(a.sum() + b.sum()))
    assert p < 5e-8


def test_expansions_go_to_the_expansion_component_not_the_null():
    rng = np.random.default_rng(5)
    a, b = lognormal_pair(rng, sd=0.25)
    planted = rng.choice(a.size, 600, replace=False)  # 1% of clones expand 4-50 fold
    b[planted] = rng.poisson((a[planted] + 1) * rng.uniform(4, 50, planted.size))
    clean = fit_empirical_null(*lognormal_pair(np.random.default_rng(5), sd=0.25), n_a=150_000, n_b=150_000)
    model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()))
    assert model.sd([1e-4])[0] == pytest.approx(clean.sd([1e-4])[0], rel=0.15)
    assert model.null_share < 0.995


def test_heavy_tailed_mixture_is_learned():
    """epsilon from 0.8 N(0, 0.15^2) + 0.2 N(0, 1): the fitted 97.5% quantile follows the mixture's."""
    rng = np.random.default_rng(2)
    n_clones = 80_000
    f = rng.pareto(1.0, n_clones) + 1
    f /= f.sum()
    wide = rng.random(n_clones) < 0.2
    eps = np.where(wide, rng.normal(0, 1.0, n_clones), rng.normal(0, 0.15, n_clones))
    a = rng.poisson(f * 300_000)
    b = rng.poisson(f * np.exp(eps) * 300_000)
    model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()), expansion=False)
    grid = np.linspace(-3, 3, 20001)
    cdf = 0.8 * stats.norm.cdf(grid / 0.15) + 0.2 * stats.norm.cdf(grid)
    truth = grid[np.searchsorted(cdf, 0.975)]
    assert model.quantile([1e-4], 0.975)[0] == pytest.approx(truth, rel=0.3)
    assert null_tail_share(model, a, b, 0.001) <= 0.002


def test_too_few_clones_falls_back_with_a_note():
    a = np.array([3, 0, 1, 0])
    b = np.array([0, 2, 1, 5])
    plain = fit_empirical_null(a, b, n_a=10, n_b=10)
    assert plain.source == "poisson" and "binomial (Poisson) null" in plain.note
    shape = one_scale(0.45)
    borrowed = fit_empirical_null(a, b, n_a=10, n_b=10, fallback=shape)
    assert borrowed.source == "fallback" and borrowed.weights == shape.weights and "borrowed" in borrowed.note


def test_floor_raises_every_component():
    model = one_scale(0.03).with_floor([-7.0, -1.0], [0.5, 0.5])
    assert np.all(model.component_sd([1e-5, 1e-3]) >= 0.5)
    assert model.sd([1e-4])[0] == pytest.approx(0.5)


def test_pooling_weight_is_the_variance_of_a_pooled_lognormal_factor():
    """Brute force: the log of a depth-weighted mean of log-normal factors has variance s^2 sum d^2/(sum d)^2
    to first order (what carries a replicate fit over to pooled libraries of unequal depth)."""
    rng = np.random.default_rng(0)
    s = 0.1
    for depths in ([1.0, 1.0], [2.0, 1.0], [4.0, 1.0], [3.0, 2.0, 1.0]):
        d = np.asarray(depths)
        factors = np.exp(rng.normal(0, s, (400_000, d.size)))
        pooled = np.log(factors @ (d / d.sum()))
        assert pooled.var() == pytest.approx(s**2 * pooling_weight(d), rel=0.03)


def test_note_reports_broad_change():
    """Half the clones change 10-fold either way: the null widens and the fit says so."""
    rng = np.random.default_rng(4)
    a, b = lognormal_pair(rng, sd=0.1)
    change = rng.random(a.size) < 0.5
    b = np.where(change, rng.poisson(b * np.exp(rng.choice([-1, 1], a.size) * np.log(10))), b)
    model = fit_empirical_null(a, b, n_a=int(a.sum()), n_b=int(b.sum()))
    assert "broad change" in model.note
