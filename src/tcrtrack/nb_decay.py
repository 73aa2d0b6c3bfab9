"""Post-peak decay of a clone's blood counts: a negative-binomial log-linear model with a depth offset
that keeps the days the clone is not detected, and profile-likelihood intervals for its rate.

Model, for the post-peak blood days ``t_j`` of one clone (days after the peak day ``t_p``, detected or
not), with counts ``y_j`` and depths ``N_j`` (replicates pooled)::

    y_j ~ NB2(mu_j, D),   log mu_j = log N_j + b0 + b1 (t_j - t_p),   Var y_j = mu_j + D mu_j**2

a generalised linear model with log link and offset ``log N_j`` (McCullagh & Nelder 1989, Generalized
Linear Models, 2nd ed., sections 6.2 and 11.3), negative-binomial regression with the NB2 variance
(Lawless 1987, Can J Stat 15:209; Cameron & Trivedi 2013, Regression Analysis of Count Data, ch. 3).
``D`` is the Gamma-mixing variance of the frequency, the same ``dispersion`` as the simulator's and as
:func:`tcrtrack.kinetics.detection_probability`; ``D = 0`` is Poisson. The half-life is
``ln 2 / (-b1)`` when ``b1 < 0``; ``exp(b0)`` is the fitted frequency extrapolated to the peak day.

Log-likelihood of one clone (``r = 1 / D``)::

    l = sum_j [ y_j log mu_j - (y_j + r) log(1 + D mu_j) + lgamma(y_j + r) - lgamma(r) - y_j log r
                - lgamma(y_j + 1) ]          (D > 0)
    l = sum_j [ y_j log mu_j - mu_j - lgamma(y_j + 1) ]                               (D = 0)

For fixed ``D`` it is concave in ``(b0, b1)`` (``d2 l / d eta2 = -(1 + D y) mu / (1 + D mu)**2``), so
Newton's method with step halving finds the maximum; ``D`` is either fixed or estimated jointly:
golden-section search over ``log D`` in ``[log D_MIN, log D_MAX]`` of the profile ``max_(b0, b1) l``
(``adjust=False``: plain maximum likelihood) or, by default, of the Cox-Reid adjusted profile
``max_(b0, b1) l - 1/2 log det I(b0, b1)`` (expected information, weights ``mu / (1 + D mu)``; Cox &
Reid 1987, J R Stat Soc B 49:1; the dispersion estimate of edgeR, McCarthy et al. 2012, Nucleic Acids
Res 40:4288), which corrects the downward bias of ML ``D`` from a handful of days (ML ``D`` made the
intervals under-cover); then compared with the Poisson fit (``D = 0``), taken when it scores at least as
high (the maximum is at the Poisson boundary).

Interval for ``b1``: the profile-likelihood (likelihood-ratio) interval ``{b1: 2 (l_hat - l_p(b1)) <=
chi2_(1, 0.95) = 3.841}``, with ``l_p(b1)`` maximised over ``b0`` and (when estimated) ``D`` at each
``b1`` (``D`` chosen by the same criterion, the adjustment then for ``b0`` alone; the deviance is of the
unadjusted likelihood) (Venzon & Moolgavkar 1988, Appl Stat 37:87), each end found by a bracketing root-finder
(Illinois regula falsi, vectorised over clones; the tests check the ends against
:func:`scipy.optimize.brentq` on an independently written likelihood). The upper end is only searched
below 0: when ``2 (l_hat - l_p(0)) <= 3.841`` the interval reaches "no decay" and the half-life's upper
bound is infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

CHI2_95 = 3.841458820694124  # scipy.stats.chi2.ppf(0.95, 1), written out: scipy.stats is slow to import
D_MIN, D_MAX = 1e-6, 10.0  # search range of the ML dispersion (below D_MIN: the Poisson fit)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class NBDecay:
    """Per-clone results of :func:`fit_nb_decay` (arrays of length ``n``)."""

    b0: np.ndarray  #: log frequency at x = 0 (the peak day)
    b1: np.ndarray  #: log-frequency slope per day
    se_b1: np.ndarray  #: Wald standard error of b1 (observed information, D at its estimate)
    dispersion: np.ndarray  #: D (estimated or fixed; 0 = Poisson)
    loglik: np.ndarray  #: maximised log-likelihood
    b1_low: np.ndarray  #: lower end of the 95% profile interval (-inf if not bracketed)
    b1_high: np.ndarray  #: upper end (+inf when the interval reaches b1 >= 0)


def nb_loglik(y: np.ndarray, eta: np.ndarray, d: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Full NB2 log-likelihood per row (sum over ``mask``); ``eta = log mu``; ``d`` per row, 0 = Poisson."""
    d2 = np.broadcast_to(np.asarray(d, dtype=float).reshape(-1, 1), y.shape)
    mu = np.exp(eta)
    pois = d2 <= 0
    ds = np.where(pois, 1.0, d2)
    r = 1.0 / ds
    nb = y * eta - (y + r) * np.log1p(ds * mu) + gammaln(y + r) - gammaln(r) - y * np.log(r)
    term = np.where(pois, y * eta - mu, nb) - gammaln(y + 1.0)
    return np.where(mask, term, 0.0).sum(axis=1)


def _mean_part(y: np.ndarray, eta: np.ndarray, d2: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The part of the log-likelihood that depends on the mean (for step control)."""
    mu = np.exp(eta)
    pois = d2 <= 0
    ds = np.where(pois, 1.0, d2)
    term = np.where(pois, y * eta - mu, y * eta - (y + 1.0 / ds) * np.log1p(ds * mu))
    return np.where(mask, term, 0.0).sum(axis=1)


def _newton(y, x, off, mask, d, a, b, *, slope: bool, iters: int = 60, tol: float = 1e-9):
    """Maximise over the intercept ``a`` (and the slope ``b`` when ``slope``) at fixed ``d``: Newton
    steps on the concave mean log-likelihood with step halving, iterating only the rows not yet
    converged. ``x`` is centred per row."""
    a, b = a.astype(float), b.astype(float)
    rows = np.arange(y.shape[0])
    yy, xx, oo, mm, dd = y, x, off, mask, np.broadcast_to(d.reshape(-1, 1), y.shape)
    eta = oo + a[:, None] + b[:, None] * xx
    cur = _mean_part(yy, eta, dd, mm)
    for _ in range(iters):
        mu = np.exp(eta)
        den = 1.0 + dd * mu
        s = np.where(mm, (yy - mu) / den, 0.0)
        w = np.where(mm, (1.0 + dd * yy) * mu / den**2, 0.0)
        g0, h00 = s.sum(1), w.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if slope:
                g1, h01, h11 = (s * xx).sum(1), (w * xx).sum(1), (w * xx * xx).sum(1)
                det = h00 * h11 - h01**2
                da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
            else:
                da, db = g0 / h00, np.zeros_like(g0)
        da = np.clip(np.where(np.isfinite(da), da, 0.0), -20, 20)
        db = np.where(np.isfinite(db), db, 0.0)
        ar, br = a[rows], b[rows]
        step = np.ones(rows.size)
        for _ in range(30):  # halve where the likelihood would fall
            eta_new = oo + (ar + step * da)[:, None] + (br + step * db)[:, None] * xx
            new = _mean_part(yy, eta_new, dd, mm)
            bad = ~(new >= cur - 1e-12 * np.abs(cur))
            if not bad.any():
                break
            step = np.where(bad, step / 2, step)
        a[rows], b[rows] = ar + step * da, br + step * db
        moving = (np.abs(step * da) >= tol) | (np.abs(step * db) >= tol)
        if not moving.any():
            break
        rows, eta, cur = rows[moving], eta_new[moving], new[moving]
        yy, xx, oo, mm, dd = yy[moving], xx[moving], oo[moving], mm[moving], dd[moving]
    return a, b


def _adjustment(x, off, mask, a, b, d, *, slope: bool) -> np.ndarray:
    """Cox-Reid term ``-1/2 log det I`` of the mean parameters being maximised (expected information,
    weights ``mu / (1 + D mu)``)."""
    mu = np.exp(off + a[:, None] + b[:, None] * x)
    w = np.where(mask, mu / (1.0 + d.reshape(-1, 1) * mu), 0.0)
    det = w.sum(1) * (w * x * x).sum(1) - (w * x).sum(1) ** 2 if slope else w.sum(1)
    return -0.5 * np.log(det)


def _profile(y, x, off, mask, a, b, *, slope: bool, fixed: float | None, adjust: bool = True, iters: int = 40):
    """Maximise the full log-likelihood over the mean parameters and, unless ``fixed``, over ``D``
    (golden section on log D, then the Poisson boundary); with ``adjust`` D maximises the Cox-Reid
    adjusted likelihood instead. Returns (a, b, D, loglik), loglik unadjusted."""
    n = y.shape[0]
    if fixed is not None:
        d = np.full(n, float(fixed))
        a, b = _newton(y, x, off, mask, d, a, b, slope=slope)
        return a, b, d, nb_loglik(y, off + a[:, None] + b[:, None] * x, d, mask)
    lo, hi = np.full(n, math.log(D_MIN)), np.full(n, math.log(D_MAX))

    def at(u, a0, b0):
        d = np.exp(u)
        a1, b1 = _newton(y, x, off, mask, d, a0, b0, slope=slope)
        return a1, b1, crit(a1, b1, d)

    def crit(a1, b1, d):
        ll_ = nb_loglik(y, off + a1[:, None] + b1[:, None] * x, d, mask)
        return ll_ + _adjustment(x, off, mask, a1, b1, d, slope=slope) if adjust else ll_

    u1, u2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    a1, b1, f1 = at(u1, a, b)
    a2, b2, f2 = at(u2, a1, b1)
    for _ in range(iters):
        left = f1 >= f2  # the maximum is in [lo, u2]
        hi, lo = np.where(left, u2, hi), np.where(left, lo, u1)
        u_new = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
        a_w, b_w = np.where(left, a1, a2), np.where(left, b1, b2)
        a_n, b_n, f_n = at(u_new, a_w, b_w)
        # left: old u1 becomes u2, the new point is u1; right: old u2 becomes u1, the new point is u2
        u2, f2, a2, b2, u1, f1, a1, b1 = (
            np.where(left, u1, u_new),
            np.where(left, f1, f_n),
            np.where(left, a1, a_n),
            np.where(left, b1, b_n),
            np.where(left, u_new, u2),
            np.where(left, f_n, f2),
            np.where(left, a_n, a2),
            np.where(left, b_n, b2),
        )
        if np.all(hi - lo < 1e-3):
            break
    first = f1 >= f2
    a_g, b_g, f_g, d_g = (
        np.where(first, a1, a2),
        np.where(first, b1, b2),
        np.where(first, f1, f2),
        np.exp(np.where(first, u1, u2)),
    )
    zero = np.zeros(n)
    a_p, b_p = _newton(y, x, off, mask, zero, a_g, b_g, slope=slope)
    f_p = crit(a_p, b_p, zero)
    pois = f_p >= f_g
    a, b, d = np.where(pois, a_p, a_g), np.where(pois, b_p, b_g), np.where(pois, 0.0, d_g)
    return a, b, d, nb_loglik(y, off + a[:, None] + b[:, None] * x, d, mask)


def _root(f, lo, f_lo, hi, f_hi, *, iters: int = 60, tol: float = 1e-7):
    """Vectorised Illinois regula falsi for ``f(z) = 0`` given brackets with ``f_lo * f_hi < 0``."""
    s, fs, t, ft = lo.copy(), f_lo.copy(), hi.copy(), f_hi.copy()
    side = np.zeros(lo.shape)
    z = (fs * t - ft * s) / (fs - ft)
    for _ in range(iters):
        z = (fs * t - ft * s) / (fs - ft)
        fz = f(z)
        done = (np.abs(fz) < tol) | (np.abs(t - s) < tol * (1 + np.abs(z)))
        if done.all():
            break
        same_t = fz * ft > 0
        same_s = ~same_t & (fz * fs > 0)
        fs = np.where(same_t & (side == -1), fs / 2, fs)
        ft = np.where(same_s & (side == 1), ft / 2, ft)
        t, ft = np.where(same_t, z, t), np.where(same_t, fz, ft)
        s, fs = np.where(same_s, z, s), np.where(same_s, fz, fs)
        side = np.where(same_t, -1, np.where(same_s, 1, side))
    return z


def fit_nb_decay(
    x: np.ndarray,
    y: np.ndarray,
    depth: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    dispersion: float | None = None,
    adjust: bool = True,
    interval: bool = True,
) -> NBDecay:
    """Fit of ``log mu = log N + b0 + b1 x`` with NB2 counts, one row per clone, and the 95%
    profile-likelihood interval of ``b1`` (see the module docstring for the model and references).

    Parameters
    ----------
    x
        ``(n, m)`` days since the peak (post-peak days only).
    y
        ``(n, m)`` counts.
    depth
        ``(n, m)`` depths ``N`` (> 0 where ``mask``).
    mask
        ``(n, m)`` cells that are data (rows may have different lengths); default all.
    dispersion
        ``None``: ``D`` estimated in ``[D_MIN, D_MAX]``, or 0 when the Poisson fit scores at least as
        high; a number ``>= 0``: ``D`` fixed (0 = Poisson).
    adjust
        Estimate ``D`` by the Cox-Reid adjusted profile likelihood (default) or by plain ML.
    interval
        Compute ``b1_low``/``b1_high`` (otherwise NaN).

    Returns
    -------
    NBDecay
        Each row needs detections on >= 2 distinct days for a finite maximum; rows without are
        returned but meaningless (the caller filters them).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mask = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n = x.shape[0]
    nan = np.full(n, np.nan)
    if n == 0:
        return NBDecay(nan, nan, nan, nan, nan, nan, nan)
    if dispersion is not None and dispersion < 0:
        raise ValueError("dispersion must be >= 0 or None")
    y = np.where(mask, y, 0.0)
    off = np.where(mask, np.log(np.where(mask, depth, 1.0).astype(float)), 0.0)
    cnt = mask.sum(1)
    xbar = np.where(mask, x, 0.0).sum(1) / cnt
    xc = np.where(mask, x - xbar[:, None], 0.0)
    # start: weighted least squares of log((y + 0.5) / N) on x (weights y + 0.5)
    z, w = np.log(y + 0.5) - off, np.where(mask, y + 0.5, 0.0)
    zbar = (w * z).sum(1) / w.sum(1)
    b = (w * xc * (z - zbar[:, None])).sum(1) / np.maximum((w * xc * xc).sum(1), 1e-300)
    a = zbar - b * (w * xc).sum(1) / w.sum(1)
    a, b, d, ll = _profile(y, xc, off, mask, a, b, slope=True, fixed=dispersion, adjust=adjust)
    mu = np.exp(off + a[:, None] + b[:, None] * xc)
    dd = d[:, None]
    w = np.where(mask, (1.0 + dd * y) * mu / (1.0 + dd * mu) ** 2, 0.0)
    h00, h01, h11 = w.sum(1), (w * xc).sum(1), (w * xc * xc).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(h00 / (h00 * h11 - h01**2))
    b0 = a - b * xbar
    low, high = nan.copy(), nan.copy()
    if interval:
        low, high = _interval(y, xc, off, mask, a, b, ll, se, dispersion, adjust)
    return NBDecay(b0, b, se, d, ll, low, high)


def _interval(y, xc, off, mask, a_hat, b_hat, ll, se, dispersion, adjust):
    """Ends of {b1: 2 (ll - l_p(b1)) <= CHI2_95}; see the module docstring."""
    n = y.shape[0]
    span = np.where(mask, xc, -np.inf).max(1) - np.where(mask, xc, np.inf).min(1)
    state = {"a": a_hat.copy()}

    def dev(bv, rows):
        a, _, _, lp = _profile(
            y[rows], xc[rows], off[rows], mask[rows], state["a"][rows], bv, slope=False, fixed=dispersion, adjust=adjust
        )
        state["a"][rows] = a
        return 2.0 * (ll[rows] - lp) - CHI2_95

    all_rows = np.arange(n)
    # upper end: is b1 = 0 inside?
    high = np.full(n, np.inf)
    d0 = dev(np.zeros(n), all_rows)
    need = np.flatnonzero(d0 > 0)
    state["a"] = a_hat.copy()
    if need.size:
        high[need] = _root(
            lambda z: dev(z, need), b_hat[need], np.full(need.size, -CHI2_95), np.zeros(need.size), d0[need]
        )
    # lower end: step down from b_hat until the deviance passes the cutoff
    state["a"] = a_hat.copy()
    step = np.where(np.isfinite(se) & (se > 0), 2.0 * se, 1.0 / span)
    step = np.minimum(step, 5.0 / span)
    inner, f_inner = b_hat.copy(), np.full(n, -CHI2_95)
    outer, f_outer = b_hat - step, np.full(n, np.nan)
    open_rows = all_rows
    for _ in range(40):
        f_outer[open_rows] = dev(outer[open_rows], open_rows)
        still = open_rows[f_outer[open_rows] <= 0]
        inner[still], f_inner[still] = outer[still], f_outer[still]
        step[still] *= 2.0
        outer[still] = inner[still] - step[still]
        open_rows = still[np.abs(outer[still]) * span[still] < 200.0]  # |b1| up to e^-200 over the span
        if not open_rows.size:
            break
    low = np.full(n, -np.inf)
    ok = np.flatnonzero(f_outer > 0)
    if ok.size:
        state["a"] = a_hat.copy()
        low[ok] = _root(lambda z: dev(z, ok), outer[ok], f_outer[ok], inner[ok], f_inner[ok])
    return low, high
