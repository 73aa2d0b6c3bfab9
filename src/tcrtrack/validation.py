"""Checks of the count vectors and depths handed to the statistics (one home for both).

:func:`as_counts` is used by :mod:`tcrtrack.diversity`, :mod:`tcrtrack.noise_fit` and
:mod:`tcrtrack.expansion`; :func:`as_depth` by the same modules for sequencing and rarefaction depths.
"""

from __future__ import annotations

import operator

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_counts", "as_depth"]


def as_counts(x: ArrayLike, *, name: str = "counts") -> NDArray[np.int64]:
    """Return ``x`` as a 1-D int64 vector of non-negative whole counts (zeros kept).

    Integer (and boolean) arrays are checked by sign only, being whole and finite by type, and
    int64 input is returned as it is (no copy); floats must be finite whole numbers.

    Parameters
    ----------
    x
        Counts, one per clone.
    name
        What ``x`` is called in the error message.

    Raises
    ------
    ValueError
        ``{name} must be a 1-D array of counts ...`` or ``{name} must hold non-negative whole counts ...``.
    """
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of counts, got shape {arr.shape}")
    if arr.dtype.kind in "iub":
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} must hold non-negative whole counts (got negative values)")
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must hold non-negative whole counts, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
        raise ValueError(f"{name} must hold non-negative whole counts (got non-integer or non-finite values)")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative whole counts (got negative values)")
    return arr.astype(np.int64)


def as_depth(x: float, *, name: str = "depth", minimum: int = 1) -> int:
    """Return a depth (total count of a library or a subsample) as an ``int >= minimum``.

    Integers of any kind, and floats that are whole and finite, are accepted.

    Parameters
    ----------
    x
        The depth.
    name
        What ``x`` is called in the error message (e.g. ``"depth n_a"``).
    minimum
        Smallest allowed value: 1 for a library (the default), 0 for a rarefaction depth.

    Raises
    ------
    ValueError
        ``{name} must be a whole number >= {minimum}, got {x!r}``.
    TypeError
        When ``x`` is neither a number nor an integer-like object.
    """
    if isinstance(x, float | np.floating):
        whole = bool(np.isfinite(x)) and x == round(x)
        value = int(x) if whole else None
    else:
        value = operator.index(x)
    if value is None or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {x!r}")
    return value
