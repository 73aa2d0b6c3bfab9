"""Truncated-Pareto clone-size weights, the power law of every simulated repertoire."""

from __future__ import annotations

import numpy as np

__all__ = ["truncated_pareto_weights"]


def truncated_pareto_weights(n: int, *, exponent: float, rng: np.random.Generator) -> np.ndarray:
    r"""Draw ``n`` clone weights from a Pareto law truncated at the typical largest of ``n`` draws.

    The density is

    .. math::

        p(w) \propto w^{-a}, \qquad 1 \le w \le n^{1/(a-1)},

    sampled by inversion, :math:`w = (1 - u\,(1 - 1/n))^{-1/(a-1)}` with :math:`u \sim U(0, 1)`.
    The upper bound :math:`n^{1/(a-1)}` is the scale of the largest of ``n`` untruncated draws,
    so that no single draw swamps a repertoire by chance.

    Parameters
    ----------
    n
        Number of weights (>= 1); also sets the truncation point.
    exponent
        Exponent ``a > 1`` of the density.
    rng
        Random stream (one ``rng.random(n)`` call).

    Returns
    -------
    numpy.ndarray
        ``n`` weights in ``[1, n**(1/(a-1))]``, not normalised.

    References
    ----------
    .. [1] Clauset, A., Shalizi, C. R. and Newman, M. E. J. (2009). Power-law distributions in
       empirical data. *SIAM Review* 51(4), 661-703.
    """
    alpha = exponent - 1.0
    u = rng.random(n)
    return (1.0 - u * (1.0 - 1.0 / n)) ** (-1.0 / alpha)
