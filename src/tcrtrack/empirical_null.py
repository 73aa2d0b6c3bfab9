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
sampling stage; NoisET's power-law mean-variance relation ``m + a m^gamma`` gives ``(2 - gamma) / 2``;
Puelma Touzel et al. 2020, PLoS Comput Biol 16:e1007873): a smooth monotone curve with one parameter,
not bins that run to a cap.
``f = n / (N_a + N_b)`` depends on ``n`` only, so fitting and testing by it keeps the conditional law.

Robust to change. The fit is an empirical null (Efron 2004, JASA 99:96) learned on the comparison's own
clones, with a second, *one-sided* component for clones that expand: ``logit`` shifted up by
``|t_j z|`` on a grid ``t_j``. Expansions only go up, while the null is symmetric, so the lower tail
(clones that shrink) pins the null's width and the excess in the upper tail goes to the expansion
component instead of widening the null. Clones that change both ways (immune reconstitution,
lymphodepletion) widen the null: the calls then mean "rises beyond the broad change of this
comparison", and the fit says so in its note. The centre ``delta`` absorbs composition shifts (a
dominant product halves every other clone).

Fitting is :func:`tcrtrack.null_fit.fit_empirical_null`. Floors: technical replicates and pre-infusion
draw pairs measure part of the null (technical noise; technical plus draw-to-draw biology). They never
replace the comparison's own fit, but every component sd is floored: ``sd_k(f) = max(sigma_k s(f), floor(f))``.

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
from scipy import special

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
        f = 10.0**x
        tail = float(np.dot(self.weights, np.asarray(NULL_SCALES) > 1.7))
        return pl.DataFrame(
            {
                "source": self.source,
                "log10_freq": x,
                "sd": self.sd(f),
                "q975": self.quantile(f),
                "center": self.center,
                "beta": self.beta,
                "null_share": self.null_share,
                "wide_component_weight": tail,
                "lower_tail_005": self.lower_tail_005,
                "n_clones": self.n_clones,
                "note": self.note,
            }
        )

    def with_floor(self, log10_freq: ArrayLike, sd: ArrayLike) -> EmpiricalNull:
        """This null with the sd floor replaced (points increasing in ``log10_freq``)."""
        return replace(self, floor_log10_freq=tuple(map(float, log10_freq)), floor_sd=tuple(map(float, sd)))


def poisson_null(*, note: str = "") -> EmpiricalNull:
    """``epsilon = 0``: the binomial, i.e. pure Poisson sampling of both libraries (Fisher's null)."""
    return EmpiricalNull(source="poisson", note=note)


def _tail(b: NDArray, n: NDArray, model: EmpiricalNull, *, offset: float, total_depth: float) -> NDArray[np.float64]:
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
        r, c = rows[lo : lo + 256], cols[lo : lo + 256]
        pi = special.expit(theta + sd[r, c][:, None] * z[None, :])
        val = special.betainc(bf[r], nf[r] - bf[r] + 1.0, pi)
        with np.errstate(divide="ignore"):
            lv = np.log(val) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)
        logp[r, c] = special.logsumexp(lv, axis=1) + np.log(z[1] - z[0])
    # (ii) over t = logit(B), B ~ Beta(b, n-b+1): good when the normal is smooth on the scale of width
    rows, cols = np.nonzero(~use_z & (sd > 0))
    grid = np.linspace(-16.0, 16.0, 641)
    for lo in range(0, rows.size, 256):
        r, c = rows[lo : lo + 256], cols[lo : lo + 256]
        mode = np.log(pi_hat[r, 0] / (1 - pi_hat[r, 0]))
        t = mode[:, None] + width[r, 0][:, None] * grid[None, :]
        log_g = bf[r] * t - (nf[r] + 1.0) * np.logaddexp(0, t) - special.betaln(bf[r], nf[r] - bf[r] + 1.0)
        lv = log_g + special.log_ndtr(-(t - theta) / sd[r, c][:, None])
        logp[r, c] = special.logsumexp(lv, axis=1) + np.log(width[r, 0] * (grid[1] - grid[0]))
    zero = sd <= 0
    if zero.any():
        r, c = np.nonzero(zero)
        with np.errstate(divide="ignore"):
            logp[r, c] = np.log(special.betainc(bf[r, 0], nf[r, 0] - bf[r, 0] + 1.0, special.expit(theta)))
    return np.exp(special.logsumexp(logp, axis=1, b=w[None, :]))
