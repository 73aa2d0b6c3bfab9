"""Rarefaction: subsampling a count vector without replacement, and the common depth it is taken to.

:func:`rarefy` (one seeded subsample), :func:`common_depth` (the depth shared by a group of samples) and
:func:`common_depths` (one per compartment, or one for the cohort). numpy and Polars only: choosing the
depths does not import scikit-bio.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from tcrtrack.validation import as_counts, as_depth


def rarefy(counts: np.ndarray, *, depth: int, rng: np.random.Generator) -> np.ndarray:
    """Subsample a count vector without replacement to exactly ``depth`` counts.

    Each of the :math:`N` counted molecules/cells is equally likely to be kept, i.e.
    a draw from the multivariate hypergeometric distribution (rarefaction; Sanders
    1968, Am. Nat. 102:243; Hurlbert 1971, Ecology 52:577), using numpy's
    ``Generator.multivariate_hypergeometric``: ``method="count"`` (time O(min(depth, N - depth)) plus
    a temporary array of N integers) when the subsample or its complement is at most a quarter of N
    and N <= :data:`COUNT_METHOD_MAX_TOTAL`, else ``method="marginals"`` (one hypergeometric variate
    per clone). Both draw from the same distribution; ``count`` is the faster near the full depth
    (timings in benchmarks/README.md).

    Parameters
    ----------
    counts : numpy.ndarray
        1-D vector of non-negative integer clone counts.
    depth : int
        Total count of the subsample, ``0 <= depth <= counts.sum()``.
    rng : numpy.random.Generator
        Source of randomness (the result is reproducible for a given state).

    Returns
    -------
    numpy.ndarray
        int64 vector aligned with ``counts`` (same length; zeros where a clone was
        not drawn), summing to ``depth``, elementwise ``<= counts``.

    Raises
    ------
    ValueError
        If ``depth`` exceeds the sample total or is negative, if ``counts`` is
        invalid, or (from numpy) if the sample total is 1e9 or more.
    """
    x = as_counts(counts)
    depth = as_depth(depth, minimum=0)
    total = int(x.sum())
    if depth > total:
        raise ValueError(f"cannot rarefy to depth {depth}: the sample total is only {total}")
    if x.size == 0:
        return x.copy()
    by_count = min(depth, total - depth) <= total // 4 and total <= COUNT_METHOD_MAX_TOTAL
    return rng.multivariate_hypergeometric(x, depth, method="count" if by_count else "marginals")


COUNT_METHOD_MAX_TOTAL = 50_000_000
"""Largest sample total rarefied with numpy's ``method="count"`` (its temporary array: 8 bytes per count)."""


def common_depth(totals: Sequence[int], *, configured: int | None) -> int:
    """Rarefaction depth shared by all samples.

    Parameters
    ----------
    totals : Sequence[int]
        Total count of every sample.
    configured : int or None
        Depth from the configuration; wins when given (samples below it are
        reported as such by :func:`sample_diversity`, never dropped).

    Returns
    -------
    int
        ``configured`` if not None, else the smallest sample total (0 if some sample
        is empty, which makes rarefied metrics NaN -- configure a depth then).

    Raises
    ------
    ValueError
        If ``configured`` is not a positive integer, a total is negative, or
        ``totals`` is empty and no depth is configured.
    """
    if configured is not None:
        value = operator.index(configured)
        if value < 1:
            raise ValueError(f"configured rarefaction depth must be >= 1, got {value}")
        return value
    values = [operator.index(t) for t in totals]
    if not values:
        raise ValueError("no sample totals given and no rarefaction depth configured")
    if min(values) < 0:
        raise ValueError("sample totals must be non-negative")
    return min(values)


def common_depths(
    totals: pl.DataFrame, *, configured: int | Mapping[str, int] | None = None, by_compartment: bool = True
) -> pl.DataFrame:
    """Rarefaction depth of every sample: one common depth per compartment (default) or one for the cohort.

    ``totals`` has ``sample``, ``compartment`` and ``total`` (may be null when a depth is configured).
    ``configured`` is one depth for every sample, a ``{compartment: depth}`` mapping naming every
    compartment (implies per compartment), or None: :func:`common_depth` of each group's totals.
    Biopsies are often ~10x shallower than blood, so one cohort depth would rarefy every blood sample to
    the shallowest biopsy. Returns ``sample, compartment, depth, basis`` in ``totals``' order.
    """
    per_compartment = by_compartment or isinstance(configured, Mapping)
    keys = totals["compartment"].cast(pl.Utf8) if per_compartment else pl.Series([None] * totals.height, dtype=pl.Utf8)
    depth_of: dict[str | None, tuple[int, str]] = {}
    for key in dict.fromkeys(keys.to_list()):
        value = configured
        if isinstance(configured, Mapping):
            if key not in configured:
                named = ", ".join(sorted(configured))
                raise ValueError(
                    f"diversity.depth gives no depth for compartment {key!r} (it names {named}): "
                    "name every compartment or give one number"
                )
            value = configured[key]
        group = totals.filter(keys.eq_missing(key))
        sizes = [] if value is not None else [int(t) for t in group["total"]]
        where = f"smallest {key} sample" if key is not None else "smallest sample"
        depth_of[key] = (common_depth(sizes, configured=value), "configured" if value is not None else where)
    return totals.select("sample", "compartment").with_columns(
        depth=pl.Series([depth_of[k][0] for k in keys], dtype=pl.Int64),
        basis=pl.Series([depth_of[k][1] for k in keys], dtype=pl.Utf8),
    )
