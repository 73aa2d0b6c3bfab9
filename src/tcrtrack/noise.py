"""Sampling-noise model of clone counts: beta-binomial overdispersion as a function of frequency.

Conditional on the total ``n = a + b`` of a clone over two samples of depths ``n_a`` and ``n_b``,
the count in the later sample is modelled under the null of unchanged frequency as

.. math:: b \\mid n \\sim \\mathrm{BetaBinomial}(n, \\alpha, \\beta),\\quad
          p_0 = \\frac{\\alpha}{\\alpha+\\beta} = \\frac{n_b}{n_a+n_b},\\quad
          \\rho = \\frac{1}{\\alpha+\\beta+1},

so ``E[b|n] = n p0`` and ``Var[b|n] = n p0 (1-p0) (1 + (n-1) rho)`` (Williams 1975, Biometrics
31:949; Rytlewski et al. 2019, PLoS One 14:e0213684). ``rho = 0`` is the binomial, i.e. the
conditional form of two Poisson samplings, which is the DeWitt et al. (2015) / Fisher test. The
intra-class correlation ``rho`` depends on clone abundance, so it is fitted per bin of
``log10((a+b)/(n_a+n_b))`` (NoisET: Puelma Touzel et al. 2020, PLoS Comput Biol 16:e1007873;
Koraichi et al. 2022, J Phys Chem A 126:7407) and interpolated linearly in log-frequency.

The fits (per bin, from replicates or from the comparison itself) are in :mod:`tcrtrack.noise_fit`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

MAX_RHO: float = 0.5
_ROW_BUDGET: int = 1 << 21  # float64 cells per block of probability rows
Source = Literal["replicates", "bulk", "poisson"]


@dataclass(frozen=True)
class NoiseModel:
    """Beta-binomial intra-class correlation ``rho`` as a function of clone frequency.

    Attributes
    ----------
    source : {"replicates", "bulk", "poisson"}
        What the fit was learned from; ``"poisson"`` means ``rho = 0`` everywhere.
    log10_freq : tuple of float
        Bin centres: mean ``log10((a+b)/(n_a+n_b))`` of the bin's informative clones, increasing.
    rho_bins : tuple of float
        Maximum-likelihood ``rho`` per bin, in ``[0, MAX_RHO]``.
    n_clones : tuple of int
        Informative clones (``n >= 2``; clone-pairs for replicates) per bin.
    p_null : tuple of float
        The fitted null centre ``E[b/n]`` per bin, a nuisance of the fit and a diagnostic of
        composition shifts (the tests keep ``p0 = n_b/(n_a+n_b)``); NaN when several replicate
        pairs were fitted (one centre each).
    note : str
        Empty, or how the fit degraded (pooled bin, fallback).
    """

    source: Source
    log10_freq: tuple[float, ...] = ()
    rho_bins: tuple[float, ...] = ()
    n_clones: tuple[int, ...] = ()
    p_null: tuple[float, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in ("replicates", "bulk", "poisson"):
            raise ValueError(f"unknown noise source {self.source!r}")
        k = len(self.log10_freq)
        if not len(self.rho_bins) == len(self.n_clones) == len(self.p_null) == k:
            raise ValueError("log10_freq, rho_bins, n_clones and p_null must have equal lengths")
        if k > 1 and np.any(np.diff(self.log10_freq) <= 0):
            raise ValueError("log10_freq bin centres must be strictly increasing")
        if any(not 0.0 <= r <= MAX_RHO for r in self.rho_bins):
            raise ValueError(f"rho_bins must lie in [0, {MAX_RHO}]")

    def rho(self, frequency: ArrayLike) -> NDArray[np.float64]:
        """``rho`` at the given mean frequencies ``(a+b)/(n_a+n_b)``.

        Piecewise linear in ``log10`` frequency between bin centres and constant beyond the
        outer centres (no extrapolated trend: the outer bins are the best evidence there),
        clipped to ``[0, MAX_RHO]``. Zero everywhere for a model without bins.
        """
        f = np.asarray(frequency, dtype=np.float64)
        if not self.rho_bins:
            return np.zeros(f.shape)
        x = np.log10(np.maximum(f, np.finfo(np.float64).tiny))
        return np.clip(np.interp(x, self.log10_freq, self.rho_bins), 0.0, MAX_RHO)

    def to_frame(self) -> pl.DataFrame:
        """One row per bin (one null row for a model without bins), for tables and figures."""
        k = len(self.rho_bins)
        if k == 0:
            return pl.DataFrame(
                {
                    "source": [self.source],
                    "bin": [0],
                    "log10_freq": [None],
                    "rho": [0.0],
                    "n_clones": [0],
                    "p_null": [None],
                    "note": [self.note],
                },
                schema=_FRAME_SCHEMA,
            )
        return pl.DataFrame(
            {
                "source": [self.source] * k,
                "bin": list(range(k)),
                "log10_freq": list(self.log10_freq),
                "rho": list(self.rho_bins),
                "n_clones": list(self.n_clones),
                "p_null": list(self.p_null),
                "note": [self.note] * k,
            },
            schema=_FRAME_SCHEMA,
        ).with_columns(pl.col("p_null").fill_nan(None))


_FRAME_SCHEMA = {
    "source": pl.Utf8,
    "bin": pl.Int64,
    "log10_freq": pl.Float64,
    "rho": pl.Float64,
    "n_clones": pl.Int64,
    "p_null": pl.Float64,
    "note": pl.Utf8,
}


def poisson_noise(*, note: str = "") -> NoiseModel:
    """The ``rho = 0`` model: binomial ``b | n``, i.e. pure Poisson sampling of both samples."""
    return NoiseModel(source="poisson", note=note)


def beta_params(p: ArrayLike, rho: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``alpha = p (1/rho - 1)``, ``beta = (1-p)(1/rho - 1)`` (infinite at ``rho = 0``)."""
    p, rho = np.broadcast_arrays(np.asarray(p, float), np.asarray(rho, float))
    with np.errstate(divide="ignore"):
        s = np.where(rho > 0, 1.0 / rho - 1.0, np.inf)
    return p * s, (1.0 - p) * s


def _log_pmf_rows(n: NDArray, p: NDArray, rho: NDArray, width: int) -> NDArray[np.float64]:
    """Normalised beta-binomial log-pmf on ``k = 0..width-1`` for rows ``(n, p, rho)``.

    Built from the ratio ``f(k+1)/f(k) = (n-k)(p + k t) / ((k+1)(1-p + (n-k-1) t))`` with
    ``t = rho/(1-rho)`` (finite at ``rho = 0``, where it is the binomial ratio), cumulated in
    log space and normalised by log-sum-exp: no gamma functions, no overflow; ``-inf`` past ``n``.
    """
    n = np.asarray(n, float)[:, None]
    p = np.asarray(p, float)[:, None]
    t = (np.asarray(rho, float) / (1.0 - np.asarray(rho, float)))[:, None]
    k = np.arange(width - 1, dtype=float)[None, :]
    ok = k < n
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.where(ok, (n - k) * (p + k * t), 1.0)
        den = np.where(ok, (k + 1.0) * (1.0 - p + (n - k - 1.0) * t), 1.0)
        step = np.where(ok, np.log(num / den), -np.inf)
    out = np.zeros((n.shape[0], width))
    np.cumsum(step, axis=1, out=out[:, 1:])
    out -= out.max(axis=1, keepdims=True)
    out -= np.log(np.exp(out).sum(axis=1, keepdims=True))
    return out


def betabinom_sf(k: ArrayLike, n: ArrayLike, *, p: ArrayLike, rho: ArrayLike) -> NDArray[np.float64]:
    """Survival function ``P(X > k)`` of ``X ~ BetaBinomial(n, alpha, beta)`` (mean ``n p``, ICC ``rho``).

    Same value as ``scipy.stats.betabinom.sf(k, n, *beta_params(p, rho))`` but vectorised and
    accurate in the far tail (scipy's generic ``1 - cdf`` loses everything below ~1e-16):
    one probability row per distinct ``(n, p, rho)``, upper tails by reverse cumulative sums.
    ``rho = 0`` gives the binomial survival function. Cost ~ sum of the distinct ``n``.
    """
    k, n, p, rho = (
        x.ravel()
        for x in np.broadcast_arrays(
            np.asarray(k, np.int64), np.asarray(n, np.int64), np.asarray(p, float), np.asarray(rho, float)
        )
    )
    out = (k < 0).astype(np.float64)
    idx = np.flatnonzero((k >= 0) & (k < n))
    if idx.size == 0:
        return out.reshape(np.shape(k))
    order = idx[np.lexsort((rho[idx], p[idx], n[idx]))]
    ns, ps, rs = n[order], p[order], rho[order]
    new = np.r_[True, (ns[1:] != ns[:-1]) | (ps[1:] != ps[:-1]) | (rs[1:] != rs[:-1])]
    row_of = np.cumsum(new) - 1
    starts = np.r_[np.flatnonzero(new), order.size]
    rn = ns[starts[:-1]]
    lo = 0
    while lo < rn.size:  # blocks of rows of similar n (a loop over size classes, not clones)
        hi = int(np.searchsorted(rn, 2 * rn[lo] + 64, side="right"))
        hi = min(hi, lo + max(1, _ROW_BUDGET // int(rn[hi - 1] + 1)))
        width = int(rn[hi - 1]) + 1
        rows = starts[lo:hi]
        pmf = np.exp(_log_pmf_rows(rn[lo:hi], ps[rows], rs[rows], width))
        tail = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = P(X >= j)
        sel = order[starts[lo] : starts[hi]]
        out[sel] = tail[row_of[starts[lo] : starts[hi]] - lo, k[sel] + 1]
        lo = hi
    return np.clip(out, 0.0, 1.0).reshape(np.shape(k))


def for_pooled_libraries(noise: NoiseModel, *, k_a: int, k_b: int) -> NoiseModel:
    """A replicate-pair fit carried over to a comparison of ``k_a`` pooled libraries against ``k_b``.

    Under multiplicative Gamma library noise with dispersion ``D`` (variance ``mu + D mu^2``), a pair
    of single libraries has ``rho = D / (2 + D)``; pooling ``k`` libraries sums ``k`` Gamma(1/D)
    factors, so ``b | n ~ BetaBinomial`` with ``alpha + beta = (k_a + k_b) / D`` and
    ``rho' = D / (k_a + k_b + D)`` where ``D = 2 rho / (1 - rho)``. Applying the pair's ``rho`` to a
    pooled baseline would overstate the noise (conservative, at the cost of power). Bulk fits are
    learned on the comparison itself and are returned unchanged.
    """
    if noise.source != "replicates" or (k_a, k_b) == (1, 1):
        return noise
    rho = np.asarray(noise.rho_bins, dtype=float)
    dispersion = 2 * rho / (1 - rho)
    pooled = dispersion / (k_a + k_b + dispersion)
    note = "; ".join(filter(None, (noise.note, f"rho for {k_a} pooled vs {k_b} libraries")))
    return replace(noise, rho_bins=tuple(float(r) for r in pooled), note=note)
