"""The negative-binomial decay fit against independent computations: brute-force grid maxima of a
likelihood written with scipy.stats, profile-interval ends found by brentq on that likelihood, exact
series, and small seeded simulations near the detection limit (bias and interval coverage)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import optimize, stats

from tcrtrack.decay import fit_decay
from tcrtrack.nb_decay import CHI2_95, fit_nb_decay

X = np.array([7.0, 21.0, 35.0, 49.0, 63.0])
Y = np.array([14, 3, 6, 0, 2])
N = np.array([1.0e5, 2.0e5, 1.5e5, 1.0e5, 2.0e5])
OVERDISPERSED = np.array([40, 2, 25, 0, 6])  # far from Poisson: D > 0


def loglik(b0: float, b1: float, d: float, x=X, y=Y, n=N) -> float:
    """Independent NB2 log-likelihood (scipy's nbinom: size 1/D, p = 1 / (1 + D mu)); Poisson at D = 0."""
    mu = n * np.exp(b0 + b1 * x)
    if d == 0:
        return float(stats.poisson.logpmf(y, mu).sum())
    return float(stats.nbinom.logpmf(y, 1.0 / d, 1.0 / (1.0 + d * mu)).sum())


def grid_max(y, *, d_fixed: float | None = None):
    """Two-stage grid maximisation over (b0, b1, D): a coarse global grid, then a fine one around its best."""

    def search(b0s, b1s, ds):
        best = (-np.inf, None)
        for d in ds:
            mu = N[None, None, :] * np.exp(b0s[:, None, None] + b1s[None, :, None] * X[None, None, :])
            ll = (stats.poisson.logpmf(y, mu) if d == 0 else stats.nbinom.logpmf(y, 1.0 / d, 1.0 / (1.0 + d * mu))).sum(
                -1
            )
            i, j = np.unravel_index(np.argmax(ll), ll.shape)
            if ll[i, j] > best[0]:
                best = (ll[i, j], (b0s[i], b1s[j], d))
        return best

    ds = [d_fixed] if d_fixed is not None else [0.0, *np.geomspace(1e-3, 10, 41)]
    _, (b0, b1, d) = search(np.linspace(-14, -6, 161), np.linspace(-0.2, 0.1, 151), ds)
    fine_d = (
        [d_fixed] if d_fixed is not None else sorted({0.0, *np.geomspace(max(d, 1e-3) / 1.5, max(d, 1e-3) * 1.5, 21)})
    )
    return search(np.linspace(b0 - 0.1, b0 + 0.1, 201), np.linspace(b1 - 0.004, b1 + 0.004, 161), fine_d)


def fit_one(y, **kw):
    return fit_nb_decay(X[None, :], np.asarray(y, dtype=float)[None, :], N[None, :], **kw)


@pytest.mark.parametrize("counts", [Y, OVERDISPERSED])
def test_ml_estimate_equals_a_brute_force_grid_maximum(counts):
    fit = fit_one(counts, adjust=False, interval=False)
    best, (b0, b1, d) = grid_max(counts)
    ours = loglik(fit.b0[0], fit.b1[0], fit.dispersion[0], y=counts)
    assert ours == pytest.approx(fit.loglik[0], abs=1e-8)  # our likelihood is scipy's
    assert ours >= best - 1e-6  # at least as high as every grid point
    assert ours - best < 1e-3
    assert fit.b1[0] == pytest.approx(b1, abs=1e-4) and fit.b0[0] == pytest.approx(b0, abs=5e-3)
    assert fit.dispersion[0] == pytest.approx(d, rel=0.05) and d > 0.1


def test_fixed_dispersion_equals_a_brute_force_grid_maximum():
    fit = fit_one(OVERDISPERSED, dispersion=0.3, interval=False)
    best, (_, b1, _) = grid_max(OVERDISPERSED, d_fixed=0.3)
    assert fit.dispersion[0] == 0.3
    assert loglik(fit.b0[0], fit.b1[0], 0.3, y=OVERDISPERSED) >= best - 1e-6
    assert fit.b1[0] == pytest.approx(b1, abs=1e-4)


def independent_profile(b1: float, y, d_fixed: float | None) -> float:
    """max over b0 (and D >= 0 unless fixed) of the independent log-likelihood at fixed b1."""

    def neg(p):
        return -loglik(p[0], b1, d_fixed if d_fixed is not None else math.exp(p[1]), y=y)

    start = math.log(y.sum() / (N * np.exp(b1 * X)).sum())
    if d_fixed is not None:
        return -optimize.minimize_scalar(lambda a: neg([a]), bracket=(start - 1, start + 1)).fun
    best = -optimize.minimize_scalar(lambda a: -loglik(a, b1, 0.0, y=y), bracket=(start - 1, start + 1)).fun
    for u0 in (-4.0, -1.0, 1.0):
        res = optimize.minimize(
            neg, [start, u0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}
        )
        best = max(best, -res.fun if res.x[1] < math.log(10.0) else -np.inf)
    return best


@pytest.mark.parametrize(("counts", "d_fixed"), [(Y, None), (OVERDISPERSED, None), (OVERDISPERSED, 0.3)])
def test_profile_interval_ends_have_deviance_chi2_and_match_brentq(counts, d_fixed):
    fit = fit_one(counts, adjust=False, dispersion=d_fixed)
    top = loglik(fit.b0[0], fit.b1[0], fit.dispersion[0], y=counts)

    def dev(b1):
        return 2 * (top - independent_profile(b1, counts, d_fixed)) - CHI2_95

    assert CHI2_95 == stats.chi2.ppf(0.95, 1)  # the written-out constant is scipy's, to the last bit
    assert dev(fit.b1_low[0]) == pytest.approx(0.0, abs=2e-3)
    low = optimize.brentq(dev, fit.b1[0] - 1.0, fit.b1[0], xtol=1e-9)
    assert fit.b1_low[0] == pytest.approx(low, abs=2e-5)
    if np.isfinite(fit.b1_high[0]):
        assert dev(fit.b1_high[0]) == pytest.approx(0.0, abs=2e-3)
        high = optimize.brentq(dev, fit.b1[0], 0.0, xtol=1e-9)
        assert fit.b1_high[0] == pytest.approx(high, abs=2e-5)
    else:  # the interval reaches b1 = 0 (no decay): infinite half-life bound
        assert dev(0.0) <= 0


def test_interval_reaches_no_decay_gives_an_infinite_upper_bound():
    fit = fit_decay(
        pl.DataFrame(
            {
                "clone_id": "A",
                "day": [7, 14, 28, 42, 56],
                "count": [30, 3, 1, 2, 1],
                "depth": 10**5,
                "frequency": [c / 1e5 for c in (30, 3, 1, 2, 1)],
            }
        )
    ).row(0, named=True)
    assert fit["half_life_days"] is not None and fit["half_life_ci_high"] == math.inf
    assert 0 < fit["half_life_ci_low"] < fit["half_life_days"]


def test_noiseless_exponential_with_unequal_depths_gives_the_exact_half_life():
    # f = 0.008 * 2**(-x / 10) at x = 10..40, sequenced at different depths: integer counts on the curve
    x, depth = np.array([[10.0, 20, 30, 40]]), np.array([[1e6, 5e5, 2e6, 1e6]])
    y = depth * 0.008 * 2.0 ** (-x / 10)
    assert y.tolist() == [[4000, 1000, 2000, 500]]
    for kw in ({}, {"adjust": False}, {"dispersion": 0.0}):
        fit = fit_nb_decay(x, y, depth, **kw)
        assert fit.dispersion[0] == 0  # the curve fits exactly: the Poisson boundary
        assert math.log(2) / -fit.b1[0] == pytest.approx(10.0, rel=1e-9)
        assert math.exp(fit.b0[0]) == pytest.approx(0.008, rel=1e-9)
        assert fit.b1_low[0] < fit.b1[0] < fit.b1_high[0] < 0


def near_limit(n: int, *, dispersion: float, seed: int) -> pl.DataFrame:
    """Clones with a clear expansion peak at day 7 (count 60), then 5 post-peak days (14-70) whose expected
    counts fall from 3.5-5 to 0.5-0.7 with a half-life of 20 days; depth 1e5; Gamma(1/D, D) noise."""
    rng = np.random.default_rng(seed)
    days = np.array([14, 28, 42, 56, 70])
    mu = rng.uniform(3.5, 5.0, n)[:, None] * 2.0 ** (-(days[None, :] - 14) / 20.0)
    if dispersion > 0:
        mu = mu * rng.gamma(1 / dispersion, dispersion, size=mu.shape)
    counts = np.column_stack([np.full(n, 60), rng.poisson(mu)])
    return pl.DataFrame(
        {
            "clone_id": np.repeat([f"C{i:04d}" for i in range(n)], 6),
            "day": np.tile(np.r_[7, days], n),
            "count": counts.ravel(),
            "depth": 10**5,
            "frequency": counts.ravel() / 1e5,
        }
    )


@pytest.mark.parametrize("dispersion", [0.0, 0.2])
def test_half_life_near_the_detection_limit_is_not_biased(dispersion):
    fits = fit_decay(near_limit(300, dispersion=dispersion, seed=11))
    assert (fits["n_post_peak_points"] == 5).all()
    est = fits["half_life_days"]
    assert est.drop_nulls().len() >= 0.8 * fits.height
    assert est.drop_nulls().median() == pytest.approx(20.0, rel=0.15)
    # counting "no decline" as an infinite half-life (the ones left out above) keeps the median close
    with_none = est.fill_null(np.inf).filter(~fits["half_life_note"].str.contains("detected on 1|after the peak$"))
    assert with_none.median() == pytest.approx(20.0, rel=0.15)


def test_profile_interval_coverage_near_the_detection_limit():
    frame = near_limit(200, dispersion=0.2, seed=5).filter(pl.col("day") > 7)
    y = frame["count"].to_numpy().reshape(200, 5).astype(float)
    x = np.tile(np.array([7.0, 21, 35, 49, 63]), (200, 1))
    ok = (y > 0).sum(1) >= 2
    fit = fit_nb_decay(x[ok], y[ok], np.full(y[ok].shape, 1e5))
    truth = -math.log(2) / 20
    coverage = np.mean((fit.b1_low <= truth) & (truth <= fit.b1_high))
    assert 0.85 <= coverage <= 1.0


def test_dispersion_must_be_non_negative():
    with pytest.raises(ValueError, match="dispersion"):
        fit_one(Y, dispersion=-1.0)
    with pytest.raises(ValueError, match="dispersion"):
        fit_decay(near_limit(2, dispersion=0, seed=0), dispersion=-0.1)
