"""Library noise: one sequencing library drawn from true clone frequencies."""

from __future__ import annotations

import numpy as np

__all__ = ["DEPTH_JITTER", "library_counts"]

DEPTH_JITTER = 0.2
"""Each library's depth is ``round(depth * U(1 - DEPTH_JITTER, 1 + DEPTH_JITTER))``."""


def library_counts(freq: np.ndarray, *, depth: int, dispersion: float, rng: np.random.Generator) -> np.ndarray:
    r"""Sequence one library: Gamma-overdispersed frequencies, then a multinomial draw.

    .. math::

        g_i \sim \mathrm{Gamma}(1/\phi, \phi), \quad p_i = \frac{f_i g_i}{\sum_k f_k g_k}, \quad
        N = \mathrm{round}(D \cdot U(0.8, 1.2)), \quad c \sim \mathrm{Multinomial}(N, p)

    so a clone with expected count :math:`\mu` has :math:`\mathrm{Var} \approx \mu + \phi\mu^2`, the
    negative-binomial (Gamma-Poisson) variance of RNA-seq counts [1]_; :math:`\phi = 0` is pure
    multinomial (Poisson) sampling.

    Parameters
    ----------
    freq
        True clone frequencies (non-negative, sum 1).
    depth
        Mean number of templates; the library draws ``round(depth * U(0.8, 1.2))``.
    dispersion
        Variance of the mean-1 Gamma factor per clone (0 disables it).
    rng
        Random stream of this library.

    Returns
    -------
    numpy.ndarray
        Integer counts, same shape as ``freq`` (zero where ``freq`` is zero).

    References
    ----------
    .. [1] Robinson, M. D. and Smyth, G. K. (2008). Small-sample estimation of negative binomial
       dispersion, with applications to SAGE data. *Biostatistics* 9(2), 321-332.
    """
    present = np.flatnonzero(freq > 0)
    p = freq[present]
    if dispersion > 0:
        p = p * rng.gamma(1.0 / dispersion, dispersion, size=p.size)
    n = int(round(depth * rng.uniform(1 - DEPTH_JITTER, 1 + DEPTH_JITTER)))
    counts = np.zeros(freq.shape, dtype=np.int64)
    counts[present] = rng.multinomial(n, p / p.sum())
    return counts
