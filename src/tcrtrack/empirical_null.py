"""Noise of clone counts between two samples: a binomial mixed over a fitted logit-scale law.

For a clone with counts ``a`` (reference, depth ``N_a``) and ``b`` (later, depth ``N_b``) and total
``n = a + b``, the null of "unchanged frequency" is

.. math:: b \\mid n \\sim \\mathrm{Binomial}\\big(n,\\ \\mathrm{expit}(\\theta_0 + \\delta + s(f)\\,\\varepsilon)\\big),
          \\quad \\theta_0 = \\log\\frac{N_b}{N_a},\\quad
          \\varepsilon \\sim \\sum_k w_k\\, \\mathcal N(0, \\sigma_k^2),\\quad s(f) = (f/f_\\mathrm{ref})^{-\\beta}.

Why this form. If each library multiplies a clone's frequency by an independent log-normal factor and
then samples templates (a Poisson-log-normal: Bulmer 1974, Biometrics 30:101), conditioning on ``n``
removes the unknown clone frequency and gives exactly this binomial with a normal logit deviation of
variance ``var(log u_b) + var(log u_a)``, *for any depths* (the depth ratio is the offset
``theta_0``). The Gamma noise behind a beta-binomial gives it only for equal depths. Real noise is
not log-normal either (PCR jackpots, draw-to-draw biology, broad shifts), so the law of ``epsilon`` is
not assumed: it is a scale mixture of normals on a fixed grid of scales ``sigma_k`` with weights
fitted by maximum likelihood (the grid device of Stephens 2017, Biostatistics 18:275), which
represents any symmetric unimodal law from near-normal to heavy-tailed. ``s(f)`` lets noise shrink with
abundance (``beta`` in ``[0, 0.6]``: 0 is purely multiplicative noise, 0.5 an extra Poisson-like
sampling stage; NoisET's power-law mean-variance relation ``m + a m^gamma`` gives ``(2 - gamma) / 2``; Puelma Touzel et al. 2020, PLoS
Comput Biol 16:e1007873): a smooth monotone curve with one parameter, not bins that run to a cap.
``f = n / (N_a + N_b)`` depends on ``n`` only, so fitting and testing by it keeps the conditional law.

Robust to change. The fit is an empirical null (Efron 2004, JASA 99:96) learned on the comparison's own
clones, with a second, *one-sided* component for clones that expand: ``logit`` shifted up by
``|t_j z|`` on a grid ``t_j``. Expansions only go up, while the null is symmetric, so the lower tail
(clones that shrink) pins the null's width and the excess in the upper tail goes to the expansion
component instead of widening the null. Clones that change both ways (immune reconstitution,
lymphodepletion) widen the null: the calls then mean "rises beyond the broad change of this
comparison", and the fit says so in its note. The centre ``delta`` absorbs composition shifts (a
dominant product halves every other clone).

Floors. Technical replicates and pre-infusion draw pairs measure part of the null (technical noise;
technical plus draw-to-draw biology). They never replace the comparison's own fit, but every component
sd is floored: ``sd_k(f) = max(sigma_k s(f), floor(f))``.

p-values. ``P(X >= b | n)`` under the null mixture, by quadrature over ``epsilon``: a 32-node Gauss-
Hermite pass for every distinct ``(n, b)``, then, for those below 0.05, a fine trapezoid rule on the
better-conditioned of two equivalent integrals (over the normal deviate, or over ``logit`` of the
``Beta(b, n - b + 1)`` law that the binomial tail is, ``P(X >= b) = I_pi(b, n - b + 1)``), which keeps
relative accuracy down to ~1e-300: a clone from 0 to 160 templates can reach genome-wide significance
when the fitted noise makes such a jump rare.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

NULL_SCALES: tuple[float, ...] = (0.0, 0.03, 0.06, 0.1, 0.15, 0.22, 0.32, 0.45, 0.65, 0.9, 1.25, 1.75, 2.5, 3.5)
"""Grid of null component sds (natural-log units of the frequency ratio)."""
ALT_SHIFTS: tuple[float, ...] = (1.0, 2.0, 3.5, 6.0)
"""Centres ``t_j`` of the expansion component's logit shifts (each ``N(t_j, (t_j / 2)^2)``)."""
MAX_BETA: float = 0.6
MAX_CENTER: float = 3.0
"""Largest composition shift of the null's centre (``e^3``, 20-fold), noted when reached."""
_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()
_FINE = 0.05  # p-values below this get the fine quadrature
_MAX_PAIRS = 4000  # distinct (n, b) pairs used by a fit (more are thinned to this, seeded)


@dataclass(frozen=True)
class EmpiricalNull:
    """A fitted null law of ``b | n`` (see the module notes).

    Attributes
    ----------
    source : str
        ``"bulk"`` (the comparison's own clones), ``"replicates"``, ``"draws"`` (pre-infusion draw
        pairs), ``"fallback"`` (another comparison's shape) or ``"poisson"`` (``epsilon = 0``).
    center : float
        ``delta``, the null's centre on the logit scale beyond the depth offset.
    beta : float
        Abundance exponent of ``s(f)``.
    f_ref : float
        Reference frequency of ``s(f)``.
    weights : tuple of float
        Null mixture weights over :data:`NULL_SCALES`, summing to 1.
    null_share : float
        Share of the comparison's clones in the null component (1 without the expansion component).
    floor_log10_freq, floor_sd : tuple of float
        The sd floor as a piecewise-linear function of ``log10 f`` (empty: no floor).
    n_clones : int
        Clones (with ``n >= 1``) the fit used.
    lower_tail_005 : float
        Share of the fitted clones with ``n >= 5`` whose lower-tail null p-value is below 0.05 (about
        0.05 when the null fits; larger when it is too narrow): a calibration check on the side that
        expansions do not touch.
    note : str
        How the fit went: bounds reached, broad change, fallbacks.
    """

    source: str
    center: float = 0.0
    beta: float = 0.0
    f_ref: float = 1e-5
    weights: tuple[float, ...] = (1.0,) + (0.0,) * (len(NULL_SCALES) - 1)
    null_share: float = 1.0
    floor_log10_freq: tuple[float, ...] = ()
    floor_sd: tuple[float, ...] = ()
    n_clones: int = 0
    lower_tail_005: float = float("nan")
    note: str = ""
    _scales: NDArray[np.float64] = field(default_factory=lambda: np.asarray(NULL_SCALES), repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weights) != len(NULL_SCALES) or abs(sum(self.weights) - 1) > 1e-6 or min(self.weights) < 0:
            raise ValueError(f"weights must be {len(NULL_SCALES)} non-negative numbers summing to 1")
        if not 0 <= self.beta <= MAX_BETA:
            raise ValueError(f"beta must lie in [0, {MAX_BETA}]")
        if len(self.floor_log10_freq) != len(self.floor_sd):
            raise ValueError("floor_log10_freq and floor_sd must have equal lengths")

    def floor(self, frequency: ArrayLike) -> NDArray[np.float64]:
        """The sd floor at the given frequencies (0 without a floor)."""
        f = np.asarray(frequency, dtype=np.float64)
        if not self.floor_sd:
            return np.zeros(f.shape)
        return np.interp(np.log10(np.maximum(f, 1e-300)), self.floor_log10_freq, self.floor_sd)

    def component_sd(self, frequency: ArrayLike) -> NDArray[np.float64]:
        """``sd_k(f) = max(sigma_k s(f), floor(f))``, one row per frequency, one column per component."""
        f = np.asarray(frequency, dtype=np.float64).ravel()
        scale = np.clip((np.maximum(f, 1e-300) / self.f_ref) ** (-self.beta), 0.05, 20.0)
        return np.maximum(scale[:, None] * self._scales[None, :], self.floor(f)[:, None])

    def sd(self, frequency: ArrayLike) -> NDArray[np.float64]:
        """The null's standard deviation of the logit deviation at the given frequencies."""
        return np.sqrt(self.component_sd(frequency) ** 2 @ np.asarray(self.weights))

    def quantile(self, frequency: ArrayLike, q: float = 0.975) -> NDArray[np.float64]:
        """The ``q`` quantile of the null logit deviation (a mixture of normals) at each frequency."""
        sd = self.component_sd(frequency)
        w = np.asarray(self.weights)
        hi = np.full(sd.shape[0], 10.0 * max(float(sd.max(initial=0.0)), 1e-3))
        lo, hi = np.zeros_like(hi), hi
        for _ in range(60):  # bisection on sum_k w_k Phi(x / sd_k) = q
            mid = (lo + hi) / 2
            cdf = (w * special.ndtr(mid[:, None] / np.maximum(sd, 1e-12))).sum(axis=1)
            lo, hi = np.where(cdf < q, mid, lo), np.where(cdf < q, hi, mid)
        return (lo + hi) / 2

    def pvalues(self, b: ArrayLike, n: ArrayLike, *, offset: float, total_depth: float) -> NDArray[np.float64]:
        """One-sided ``P(X >= b | n)`` under the null; 1 where ``b <= 0``.

        .. math:: p = \\sum_k w_k \\int I_{\\mathrm{expit}(\\theta_0 + \\delta + sd_k(f) z)}(b,\\, n - b + 1)\\,
                  \\varphi(z)\\,dz,\\qquad f = n / (N_a + N_b),

        with ``offset = theta_0 = log(N_b / N_a)`` and ``total_depth = N_a + N_b``.
        """
        b, n = np.broadcast_arrays(np.asarray(b, np.int64), np.asarray(n, np.int64))
        return _tail(b.ravel(), n.ravel(), self, offset=offset, total_depth=total_depth).reshape(b.shape)

    def min_pvalues(self, n: ArrayLike, *, offset: float, total_depth: float) -> NDArray[np.float64]:
        """The smallest p-value a clone of total ``n`` can reach (all of it in the later sample), for
        the testable-only false-discovery control of :mod:`tcrtrack.multiplicity`."""
        return self.pvalues(n, n, offset=offset, total_depth=total_depth)

    def to_frame(self, *, grid: NDArray | None = None) -> pl.DataFrame:
        """The fit on a grid of abundances: ``log10_freq``, ``sd``, ``q975`` and the scalar fit summary."""
        x = np.linspace(-6.5, -1.0, 12) if grid is None else np.asarray(grid, float)
        f = 10.0 ** x
        tail = float(np.dot(self.weights, np.asarray(NULL_SCALES) > 1.7))
        return pl.DataFrame({
            "source": self.source, "log10_freq": x, "sd": self.sd(f), "q975": self.quantile(f),
            "center": self.center, "beta": self.beta, "null_share": self.null_share,
            "wide_component_weight": tail, "lower_tail_005": self.lower_tail_005,
            "n_clones": self.n_clones, "note": self.note})

    def with_floor(self, log10_freq: ArrayLike, sd: ArrayLike) -> EmpiricalNull:
        """This null with the sd floor replaced (points increasing in ``log10_freq``)."""
        return replace(self, floor_log10_freq=tuple(map(float, log10_freq)), floor_sd=tuple(map(float, sd)))


def poisson_null(*, note: str = "") -> EmpiricalNull:
    """``epsilon = 0``: the binomial, i.e. pure Poisson sampling of both libraries (Fisher's null)."""
    return EmpiricalNull(source="poisson", note=note)


def _log_binom_pmf(b: NDArray, n: NDArray, logit: NDArray) -> NDArray[np.float64]:
    """``log Binom(b; n, expit(logit))`` elementwise (broadcasting)."""
    return (special.gammaln(n + 1) - special.gammaln(b + 1) - special.gammaln(n - b + 1)
            - b * np.logaddexp(0, -logit) - (n - b) * np.logaddexp(0, logit))


_FIT_NODES, _FIT_WEIGHTS = np.polynomial.hermite_e.hermegauss(20)
_FIT_WEIGHTS = _FIT_WEIGHTS / _FIT_WEIGHTS.sum()


def _component_loglik(b: NDArray, n: NDArray, sd: NDArray, base: NDArray, *, shift: NDArray | None = None
                      ) -> NDArray[np.float64]:
    """``log E_z Binom(b; n, expit(base + shift + sd z))`` by 20-node Gauss-Hermite, per row and column of
    ``sd`` (rows: pairs, columns: components; ``shift`` one per column, default 0). For the fit only: the
    p-values use :func:`_tail`."""
    up = np.zeros(sd.shape[1]) if shift is None else np.asarray(shift, float)
    logit = base[:, None, None] + up[None, :, None] + sd[:, :, None] * _FIT_NODES[None, None, :]
    log_choose = (special.gammaln(n + 1.0) - special.gammaln(b + 1.0) - special.gammaln(n - b + 1.0))
    lp = -(b[:, None, None] * np.logaddexp(0, -logit) + (n - b)[:, None, None] * np.logaddexp(0, logit))
    top = lp.max(axis=2)
    total = np.exp(lp - top[:, :, None]) @ _FIT_WEIGHTS
    return np.log(total) + top + log_choose[:, None]


def _tail(b: NDArray, n: NDArray, model: EmpiricalNull, *, offset: float, total_depth: float
          ) -> NDArray[np.float64]:
    """The p-values of :meth:`EmpiricalNull.pvalues`: a Gauss-Hermite pass over the distinct ``(n, b)``,
    then the fine quadrature of :func:`_fine_tail` below :data:`_FINE`."""
    out = np.ones(b.size)
    todo = np.flatnonzero((b > 0) & (n >= b))
    if todo.size == 0:
        return out
    width = int(b.max()) + 1
    uniq, inverse = np.unique(n[todo] * width + b[todo], return_inverse=True)
    un, ub = uniq // width, uniq % width
    w = np.asarray(model.weights)
    active = np.flatnonzero(w > 1e-10)
    wa = w[active] / w[active].sum()
    sd = model.component_sd(un / float(total_depth))[:, active]
    theta = offset + model.center
    a_par, b_par = ub.astype(float), (un - ub + 1).astype(float)
    p = np.empty(un.size)
    for lo in range(0, un.size, 2048):  # blocks bound the (pairs x components x nodes) array
        s = slice(lo, lo + 2048)
        pi = special.expit(theta + sd[s, :, None] * _NODES[None, None, :])
        p[s] = (special.betainc(a_par[s, None, None], b_par[s, None, None], pi) * _GH_WEIGHTS).sum(axis=2) @ wa
    fine = np.flatnonzero(p < _FINE)
    if fine.size:
        p[fine] = _fine_tail(un[fine], ub[fine], theta, sd[fine], wa)
    out[todo] = np.clip(p, 0.0, 1.0)[inverse]
    return out


def _fine_tail(n: NDArray, b: NDArray, theta: float, sd: NDArray, w: NDArray) -> NDArray[np.float64]:
    """Accurate ``sum_k w_k E_z I_{expit(theta + sd_k z)}(b, n-b+1)`` for few pairs (rows of ``sd``)."""
    nf, bf = n.astype(float)[:, None], b.astype(float)[:, None]
    pi_hat = np.clip(bf / (nf + 1.0), 1e-12, 1 - 1e-12)
    width = 1.0 / np.sqrt((nf + 1.0) * pi_hat * (1 - pi_hat))  # sd of logit Beta(b, n-b+1)
    logp = np.full(sd.shape, -np.inf)
    # (i) over the normal deviate z: good when the binomial tail is smooth on the scale of sd
    z = np.linspace(-8.5, 38.0, 931)
    use_z = sd <= width
    rows, cols = np.nonzero(use_z)
    for lo in range(0, rows.size, 256):
        r, c = rows[lo:lo + 256], cols[lo:lo + 256]
        pi = special.expit(theta + sd[r, c][:, None] * z[None, :])
        val = special.betainc(bf[r], nf[r] - bf[r] + 1.0, pi)
        with np.errstate(divide="ignore"):
            lv = np.log(val) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)
        logp[r, c] = special.logsumexp(lv, axis=1) + np.log(z[1] - z[0])
    # (ii) over t = logit(B), B ~ Beta(b, n-b+1): good when the normal is smooth on the scale of width
    rows, cols = np.nonzero(~use_z & (sd > 0))
    grid = np.linspace(-16.0, 16.0, 641)
    for lo in range(0, rows.size, 256):
        r, c = rows[lo:lo + 256], cols[lo:lo + 256]
        mode = np.log(pi_hat[r, 0] / (1 - pi_hat[r, 0]))
        t = mode[:, None] + width[r, 0][:, None] * grid[None, :]
        log_g = (bf[r] * t - (nf[r] + 1.0) * np.logaddexp(0, t) - special.betaln(bf[r], nf[r] - bf[r] + 1.0))
        lv = log_g + special.log_ndtr(-(t - theta) / sd[r, c][:, None])
        logp[r, c] = special.logsumexp(lv, axis=1) + np.log(width[r, 0] * (grid[1] - grid[0]))
    zero = sd <= 0
    if zero.any():
        r, c = np.nonzero(zero)
        with np.errstate(divide="ignore"):
            logp[r, c] = np.log(special.betainc(bf[r, 0], nf[r, 0] - bf[r, 0] + 1.0, special.expit(theta)))
    return np.exp(special.logsumexp(logp, axis=1, b=w[None, :]))


def _distinct_pairs(n: NDArray, b: NDArray, *, seed: int) -> tuple[NDArray, NDArray, NDArray]:
    """Distinct ``(n, b)`` with multiplicities; beyond :data:`_MAX_PAIRS`, singleton pairs (large clones)
    are subsampled, seeded, and the kept ones weighted up by the inverse sampling rate."""
    width = int(b.max(initial=0)) + 1
    uniq, mult = np.unique(n * width + b, return_counts=True)
    un, ub, m = uniq // width, uniq % width, mult.astype(float)
    single = np.flatnonzero(mult == 1)
    excess = un.size - _MAX_PAIRS
    if excess > 0 and single.size > excess:
        keep_n = single.size - excess
        kept = np.random.default_rng(seed).choice(single, size=keep_n, replace=False)
        drop = np.setdiff1d(single, kept)
        m[kept] = single.size / keep_n
        mask = np.ones(un.size, bool)
        mask[drop] = False
        un, ub, m = un[mask], ub[mask], m[mask]
    return un, ub, m


def _em_weights(loglik: NDArray, mult: NDArray, start: NDArray, *, iterations: int = 500,
                tol: float = 1e-10) -> tuple[NDArray, float]:
    """Maximum-likelihood mixture weights over the columns of ``loglik`` (EM; Dempster et al. 1977,
    JRSS B 39:1) for rows of multiplicity ``mult``; returns the weights and the log-likelihood."""
    top = loglik.max(axis=1, keepdims=True)
    lik = np.exp(loglik - top)
    w = start.copy()
    total = mult.sum()
    previous = -np.inf
    for _ in range(iterations):
        mix = lik @ w
        value = float(mult @ np.log(mix))
        w = w * ((mult / mix) @ lik) / total
        if value - previous < tol * max(1.0, abs(value)):
            break
        previous = value
    return w / w.sum(), float(mult @ np.log(lik @ w)) + float(mult @ top[:, 0])


def fit_empirical_null(a: ArrayLike, b: ArrayLike, *, n_a: int, n_b: int, source: str = "bulk",
                       expansion: bool = True, floor: tuple[ArrayLike, ArrayLike] | None = None,
                       min_clones: int = 50, fallback: EmpiricalNull | None = None, seed: int = 0) -> EmpiricalNull:
    """Fit the null law of ``b | n`` on the clones of one comparison (see the module notes).

    ``delta`` from the singletons (:func:`_robust_center`); maximum likelihood over ``beta`` (a grid on
    ``[0, 0.6]`` and one parabolic step) and the mixture weights (EM for each ``beta``), then the widest
    components the data do not need are pruned (:func:`_prune_tail`). With
    ``expansion`` the likelihood of each clone is ``pi_0 f_null + (1 - pi_0) f_up`` where ``f_up`` shifts
    the logit up by ``|t_j z|`` (one-sided); the p-values use the null part only.

    Parameters
    ----------
    a, b
        Aligned counts in the reference and the later sample (clones absent from both are ignored).
    n_a, n_b
        The depths the comparison's frequencies refer to.
    source
        Recorded in :attr:`EmpiricalNull.source`.
    expansion
        Fit the one-sided expansion component (off for technical replicates, an exact null).
    floor
        ``(log10_freq, sd)`` points of a floor on every component sd (replicates, draw pairs).
    min_clones
        Clones with ``n >= 2`` needed to fit; with fewer, ``fallback`` (its shape, centre 0, this floor)
        or, without one, the binomial (Poisson) null, either with a note.
    seed
        Seed of the subsampling of very many distinct pairs.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    n = a + b
    keep = n > 0
    n, b = n[keep], b[keep]
    offset, total = float(np.log(n_b / n_a)), float(n_a + n_b)
    floor_points = (tuple(map(float, floor[0])), tuple(map(float, floor[1]))) if floor is not None else ((), ())
    informative = int((n >= 2).sum())
    if informative < min_clones:
        why = f"only {informative} clones seen twice or more (need {min_clones})"
        if fallback is not None:
            return replace(fallback, source="fallback", center=0.0, floor_log10_freq=floor_points[0],
                           floor_sd=floor_points[1], n_clones=int(n.size),
                           note=f"{why}: noise shape borrowed from the {fallback.source} fit"
                           + (f" ({fallback.note})" if fallback.note else ""))
        return replace(poisson_null(note=f"{why}: binomial (Poisson) null"), floor_log10_freq=floor_points[0],
                       floor_sd=floor_points[1])
    un, ub, mult = _distinct_pairs(n, b, seed=seed)
    f = un / total
    big = un >= 2
    order = np.argsort(f[big])
    cum = np.cumsum(mult[big][order])
    f_ref = float(f[big][order][np.searchsorted(cum, cum[-1] / 2)])
    template = EmpiricalNull(source=source, f_ref=f_ref, floor_log10_freq=floor_points[0], floor_sd=floor_points[1])
    k = len(NULL_SCALES)
    shifts = np.asarray(ALT_SHIFTS)
    state = {"w": np.full(k + len(ALT_SHIFTS) * expansion, 1.0 / (k + len(ALT_SHIFTS) * expansion))}

    cache: dict[float, NDArray] = {}

    def evaluate(delta: float, beta: float) -> tuple[float, NDArray]:
        model = replace(template, beta=beta)
        base = np.full(un.size, offset + delta)
        parts = [_component_loglik(ub, un, model.component_sd(f), base)]
        if expansion:
            if delta not in cache:  # the expansion component does not depend on beta
                cache[delta] = _component_loglik(ub, un, np.tile(shifts / 2, (un.size, 1)), base, shift=shifts)
            parts.append(cache[delta])
        start = np.maximum(state["w"], 1e-6)
        state["loglik"] = np.hstack(parts)
        w, value = _em_weights(state["loglik"], mult, start / start.sum())
        state["w"] = w
        return -value, w

    delta = _robust_center(un, ub, mult, offset)
    betas = np.linspace(0.0, MAX_BETA, 7)
    values = np.array([evaluate(delta, x)[0] for x in betas])
    i = int(np.argmin(values))
    beta = float(betas[i])
    if 0 < i < betas.size - 1:  # one parabolic step through the grid minimum and its neighbours
        y0, y1, y2 = values[i - 1:i + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature > 0:
            beta = float(np.clip(betas[i] + 0.5 * (betas[1] - betas[0]) * (y0 - y2) / curvature, 0.0, MAX_BETA))
    value, w = evaluate(delta, beta)
    w = _prune_tail(state["loglik"], mult, w, -value, k=k, penalty=0.5 * np.log(max(informative, 2)))
    null_w = w[:k]
    null_share = float(null_w.sum())
    model = replace(template, center=delta, beta=beta, weights=tuple(map(float, null_w / null_share)),
                    null_share=null_share, n_clones=int(n.size))
    return replace(model, lower_tail_005=_lower_tail_share(model, un, ub, mult, offset, total),
                   note=_fit_note(model, delta, beta, null_share, expansion))


def _prune_tail(loglik: NDArray, mult: NDArray, w: NDArray, value: float, *, k: int, penalty: float) -> NDArray:
    """Drop the null's widest components while the data do not need them: from the widest in use down,
    a component of weight below 5% is removed (the rest refitted by EM) when that costs less than
    ``penalty`` log-likelihood units (Schwarz's ``log(m) / 2`` for one weight, ``m`` the clones seen twice
    or more; Akaike's 1 kept spurious 0.5% components in simulation). A tiny weight on a very wide component is
    poorly estimated and would put a floor under every p-value: a weight of 1e-4 on sd 2.5 alone bounds
    ``p`` near 1e-5, so no clone could reach genome-wide significance."""
    for j in range(k - 1, -1, -1):
        if w[j] <= 0:
            continue
        if w[j] >= 0.05:
            break
        trial = w.copy()
        trial[j] = 0.0
        refit, reduced = _em_weights(loglik, mult, trial / trial.sum())
        if value - reduced >= penalty:
            break
        w, value = refit, reduced
    return w


def _robust_center(un: NDArray, ub: NDArray, mult: NDArray, offset: float) -> float:
    """``delta``, the null's centre, from the clones least touched by expansions.

    With 200 or more singletons (``n = 1``): ``logit(s) - theta_0`` where ``s`` is the share of singletons
    seen in the later sample (``P(b = 1 | n = 1) = E[expit(theta_0 + delta + eps)]``, about
    ``expit(theta_0 + delta)``; an expanded clone is rarely a singleton). Otherwise ``logit`` of the
    weighted median of ``b / n`` over the clones seen on both sides with the largest ``n`` available
    (``n >= 50``, else fewer, as long as 200 clones remain). A centre fitted jointly with the one-sided
    expansion component trades off with it (in simulation it moved down and gave a fifth of unchanged
    clones to the expansion component), and a median over large clones moves up when expanded clones
    are a good share of them. The result is kept within ``+-MAX_CENTER``."""
    single = un == 1
    if mult[single].sum() >= 200:
        share = float(mult[single & (ub == 1)].sum() / mult[single].sum())
        share = min(max(share, 1e-6), 1 - 1e-6)
        return float(np.clip(np.log(share / (1 - share)) - offset, -MAX_CENTER, MAX_CENTER))
    inside = (ub > 0) & (ub < un)
    for least in (50, 20, 10, 3, 1):
        sel = inside & (un >= least)
        if mult[sel].sum() >= 200 or least == 1:
            break
    if not sel.any():
        return 0.0
    share = ub[sel] / un[sel]
    order = np.argsort(share)
    cum = np.cumsum(mult[sel][order])
    median = float(share[order][np.searchsorted(cum, cum[-1] / 2)])
    return float(np.clip(np.log(median / (1 - median)) - offset, -MAX_CENTER, MAX_CENTER))


def _lower_tail_share(model: EmpiricalNull, un: NDArray, ub: NDArray, mult: NDArray, offset: float,
                      total: float) -> float:
    """Share of pairs with ``n >= 5`` whose lower-tail p ``P(X <= b)`` is below 0.05 under ``model``."""
    sel = un >= 5
    if not sel.any():
        return float("nan")
    lower = 1.0 - model.pvalues(ub[sel] + 1, un[sel], offset=offset, total_depth=total)
    return float(mult[sel] @ (lower < 0.05) / mult[sel].sum())


def _fit_note(model: EmpiricalNull, delta: float, beta: float, null_share: float, expansion: bool) -> str:
    """Plain-language warnings about a fit: bounds reached, broad change, poor calibration."""
    notes = []
    if beta >= MAX_BETA:
        notes.append(f"abundance exponent at its bound {MAX_BETA}")
    wide = float(np.dot(model.weights, np.asarray(NULL_SCALES) > 1.7))
    if wide > 0.2 or (expansion and null_share < 0.5):
        notes.append(f"broad change: {wide:.0%} of the null has an sd over 5-fold and {1 - null_share:.0%} of clones"
                     " fit the expansion component; calls are rises beyond this comparison's broad change")
    if model.weights[-1] > 0.05:
        notes.append("the null's widest component is in use: the noise may be wider than the grid")
    if abs(delta) >= MAX_CENTER:
        notes.append(f"centre at its bound +-{MAX_CENTER:g}: few clones are seen in both samples")
    elif abs(delta) > 0.5:
        notes.append(f"composition shift: clones are {np.exp(delta):.2g}x as frequent as the depths predict")
    if model.lower_tail_005 == model.lower_tail_005 and model.lower_tail_005 > 0.1:
        notes.append(f"lower tail miscalibrated ({model.lower_tail_005:.0%} of clones below p = 0.05, 5% expected)")
    return "; ".join(notes)


def scaled_floor(model: EmpiricalNull, *, variance_factor: float, total_depth: float | None = None
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A floor for another comparison from a fit on replicate or draw pairs: ``sqrt(c) sd(f)`` on a grid.

    A pair of single libraries has logit variance ``2 s_L^2``; a comparison of pooled libraries with
    depths ``d`` has ``s_L^2 (sum d_a^2 / (sum d_a)^2 + sum d_b^2 / (sum d_b)^2)`` to first order (delta
    method on the depth-weighted mean of the libraries' factors), so ``c`` is that bracket over 2.
    """
    del total_depth
    grid = np.linspace(-7.0, -0.5, 27)
    return grid, np.sqrt(variance_factor) * model.sd(10.0 ** grid)


def pooling_weight(depths: ArrayLike) -> float:
    """``sum d^2 / (sum d)^2``: the variance factor of a depth-weighted pool of libraries (1 for one)."""
    d = np.asarray(depths, dtype=float)
    return float((d**2).sum() / d.sum() ** 2)
