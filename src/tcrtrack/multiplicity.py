"""False-discovery control for the calls: testable-only BH, clone-level Simes, conjunctions.

A clone is tested at several comparisons (post-infusion days; post-treatment biopsies). The claims the
tables make are per clone ("expanded at one or more days", "expanded in blood and enriched in a biopsy"),
so the false-discovery rate is controlled over clones:

* **Clone level** (:func:`clone_level`): the Simes p-value of the clone's comparisons, ``p_S =
  min_j D p_(j) / j`` (Simes 1986, Biometrika 73:751; valid under the positive dependence of tests that
  share one reference sample, Sarkar 1998, Ann Stat 26:494), then Benjamini-Hochberg over clones.
  Comparisons are called only inside the selected clones, at the level ``q R / m`` of Benjamini &
  Bogomolov (2014, JRSS B 76:297), which keeps the average FDR over the selected clones' days.
* **Testable only** (:func:`bh_over_testable`): a clone whose counts can never give a small p-value (a total of
  two templates) only dilutes BH. Following Tarone (1990, Biometrics 46:515) and Gilbert (2005, JRSS C
  54:143), the smallest ``K`` with ``#{i : p_min,i <= alpha / K} <= K`` defines the testable clones; BH runs
  over them. ``p_min`` depends on the clone's totals only, never on where its templates fell, so the
  selection leaves the tests valid.
* **Conjunctions** (:func:`conjunction_pvalues`): "expanded in blood *and* enriched in the tumour" is
  false when either part is, so its p-value is the larger of the two parts' (an intersection-union test,
  Berger 1982, Technometrics 24:295); BH over clones of these p-values controls the FDR of the flagged
  set even when many clones are enriched in the tumour only, unlike selecting on blood and re-testing the
  tumour among the selected (which ignores the blood-false, tumour-true clones).
* **Replicability** (:func:`replicability_rvalues`, the flags' default): blood as the primary study and the
  tumour as the follow-up of the blood-selected clones (Bogomolov & Heller 2013, JASA 108:1480); the
  follow-up pays only for the clones it tests, so it keeps more power than BH over the conjunction p-values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats


def bh_qvalues(p: ArrayLike) -> NDArray[np.float64]:
    """Benjamini-Hochberg q-values ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` (Benjamini & Hochberg 1995,
    JRSS B 57:289), by ``scipy.stats.false_discovery_control``; empty in, empty out."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p must be 1-D")
    if p.size == 0:
        return np.zeros(0)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must lie in [0, 1] (no NaN)")
    return stats.false_discovery_control(p, method="bh")


def simes(p: ArrayLike) -> NDArray[np.float64]:
    """Row-wise Simes p-values ``min_j D p_(j) / j`` over the non-NaN entries of each row (``D`` of them);
    NaN for a row without any.

    Parameters
    ----------
    p
        ``(clones, comparisons)`` p-values, NaN where the comparison did not test the clone.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError("p must be 2-D (clones x comparisons)")
    d = (~np.isnan(p)).sum(axis=1)
    ordered = np.sort(np.where(np.isnan(p), np.inf, p), axis=1)
    rank = np.arange(1, p.shape[1] + 1, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore"):
        values = np.where(np.isfinite(ordered), ordered * d[:, None] / rank, np.inf)
    out = np.minimum(values.min(axis=1, initial=np.inf), 1.0)
    return np.where(d > 0, out, np.nan)


def tarone_testable(p_min: ArrayLike, *, alpha: float) -> NDArray[np.bool_]:
    """Tarone's testable set: with ``K`` the smallest integer such that ``#{i : p_min,i <= alpha / K} <= K``,
    the hypotheses with ``p_min,i <= alpha / K`` (NaN: never testable)."""
    p_min = np.asarray(p_min, dtype=np.float64)
    finite = np.where(np.isnan(p_min), np.inf, p_min)
    ordered = np.sort(finite)
    m = ordered.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = 1, m  # count(K) = #{p_min <= alpha / K} falls as K grows: bisect for the smallest K with count <= K
    while lo < hi:
        mid = (lo + hi) // 2
        if np.searchsorted(ordered, alpha / mid, side="right") <= mid:
            hi = mid
        else:
            lo = mid + 1
    return finite <= alpha / lo


def bh_over_testable(p: ArrayLike, p_min: ArrayLike, *, alpha: float) -> NDArray[np.float64]:
    """BH q-values over Tarone's testable hypotheses (Gilbert 2005); 1 for the others, NaN where ``p`` is NaN.

    Parameters
    ----------
    p
        The p-values (NaN: not tested).
    p_min
        The smallest p-value each hypothesis could reach given its margins.
    alpha
        The FDR level that sets the testable set.
    """
    p, p_min = np.asarray(p, dtype=np.float64), np.asarray(p_min, dtype=np.float64)
    if p.shape != p_min.shape:
        raise ValueError("p and p_min must have the same shape")
    q = np.where(np.isnan(p), np.nan, 1.0)
    keep = tarone_testable(np.where(np.isnan(p), np.nan, p_min), alpha=alpha)
    if keep.any():
        q[keep] = bh_qvalues(p[keep])
    return q


def clone_level(p: ArrayLike, p_min: ArrayLike, *, alpha: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Clone-level q-values (Simes over comparisons, testable-only BH over clones) and the comparisons called
    within the selected clones.

    Parameters
    ----------
    p, p_min
        ``(clones, comparisons)`` p-values and smallest reachable p-values, NaN where not tested.
    alpha
        The FDR level.

    Returns
    -------
    q : numpy.ndarray
        One q-value per clone (NaN: not tested anywhere).
    called : numpy.ndarray of bool
        ``(clones, comparisons)``: inside a clone with ``q < alpha``, the comparisons whose within-clone BH
        q-value is below ``alpha R / m`` (``R`` selected of ``m`` testable clones; Benjamini & Bogomolov 2014).
    """
    p, p_min = np.asarray(p, dtype=np.float64), np.asarray(p_min, dtype=np.float64)
    q = bh_over_testable(simes(p), simes(p_min), alpha=alpha)
    selected = np.nan_to_num(q, nan=1.0) < alpha
    called = np.zeros(p.shape, dtype=bool)
    if not selected.any():
        return q, called
    m = int(tarone_testable(np.where(np.isnan(q), np.nan, simes(p_min)), alpha=alpha).sum())
    level = alpha * selected.sum() / max(m, 1)
    rows = p[selected]
    d = (~np.isnan(rows)).sum(axis=1, keepdims=True)
    order = np.argsort(np.where(np.isnan(rows), np.inf, rows), axis=1)
    ranked = np.take_along_axis(rows, order, axis=1)
    rank = np.arange(1, p.shape[1] + 1)[None, :]
    adjusted = np.where(np.isnan(ranked), np.inf, ranked * d / rank)
    adjusted = np.minimum.accumulate(adjusted[:, ::-1], axis=1)[:, ::-1]  # step-up within the clone
    inside = np.zeros_like(adjusted, dtype=bool)
    np.put_along_axis(inside, order, adjusted <= level, axis=1)
    called[selected] = inside
    return q, called


def conjunction_pvalues(*parts: ArrayLike) -> NDArray[np.float64]:
    """The intersection-union p-value ``max_k p_k`` of "every part holds" (Berger 1982); NaN if any part is."""
    stacked = np.vstack([np.asarray(x, dtype=np.float64) for x in parts])
    return stacked.max(axis=0)  # NaN propagates


def replicability_rvalues(
    p_primary: ArrayLike, p_follow: ArrayLike, *, selected: ArrayLike, m_primary: int, emphasis: float = 0.5
) -> NDArray[np.float64]:
    """r-values of "true in the primary *and* in the follow-up study" (Bogomolov & Heller 2013, JASA 108:1480).

    The follow-up is tested only for the ``selected`` features (chosen on primary data alone). With
    ``c = emphasis``, ``m = m_primary`` features tested in the primary study and ``S = |selected|``, a
    feature is discovered at level ``q`` when ``p1 <= R c q / m`` and ``p2 <= R (1 - c) q / S``, ``R`` the
    number discovered (step-up). Equivalently, with ``e_i = max(m p1_i / c, S p2_i / (1 - c))``, the
    r-value is ``r_(k) = min_{j >= k} e_(j) / j`` and features with ``r < q`` are the discoveries. The FDR of
    the conjunction is controlled when the two studies are independent (here blood and tumour libraries)
    and each study's p-values are PRDS; unlike BH on ``max(p1, p2)`` over all features, the follow-up pays
    only for the ``S`` features it tests.

    Returns NaN outside ``selected`` (and where ``p_follow`` is NaN).
    """
    p1, p2 = np.asarray(p_primary, dtype=np.float64), np.asarray(p_follow, dtype=np.float64)
    chosen = np.asarray(selected, dtype=bool) & ~np.isnan(p1) & ~np.isnan(p2)
    if not 0 < emphasis < 1:
        raise ValueError("emphasis must lie in (0, 1)")
    out = np.full(p1.shape, np.nan)
    s = int(chosen.sum())
    if s == 0:
        return out
    e = np.maximum(max(m_primary, s) * p1[chosen] / emphasis, s * p2[chosen] / (1 - emphasis))
    order = np.argsort(e, kind="stable")
    ranked = e[order] / np.arange(1, s + 1)
    r = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    values = np.empty(s)
    values[order] = r
    out[chosen] = values
    return out
