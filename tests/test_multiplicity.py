"""Multiplicity: Simes, Tarone's testable set, testable-only BH, clone-level calls and conjunctions, against
brute-force computations and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from tcrtrack.multiplicity import (
    bh_over_testable,
    bh_qvalues,
    clone_level,
    conjunction_pvalues,
    replicability_rvalues,
    simes,
    tarone_testable,
)


def brute_simes(row):
    row = np.sort(row[~np.isnan(row)])
    return min(1.0, min(row * row.size / np.arange(1, row.size + 1))) if row.size else np.nan


def test_simes_by_hand_and_brute_force():
    p = np.array([[0.01, 0.04, np.nan], [0.5, 0.2, 0.03], [np.nan, np.nan, np.nan]])
    assert simes(p)[0] == pytest.approx(0.02)  # min(2*0.01/1, 2*0.04/2)
    assert simes(p)[1] == pytest.approx(0.09)  # min(3*0.03, 3*0.2/2, 3*0.5/3)
    assert np.isnan(simes(p)[2])
    rng = np.random.default_rng(1)
    q = rng.random((200, 4))
    q[rng.random(q.shape) < 0.3] = np.nan
    assert np.allclose(simes(q), [brute_simes(r) for r in q], equal_nan=True)


def test_testable_set_equals_tarone_loop():
    rng = np.random.default_rng(2)
    for _ in range(20):
        p_min = rng.random(rng.integers(1, 400)) ** rng.uniform(1, 6)
        for k in range(1, p_min.size + 1):  # Tarone 1990: the smallest K with #{p_min <= alpha/K} <= K
            if (p_min <= 0.05 / k).sum() <= k:
                break
        assert np.array_equal(tarone_testable(p_min, alpha=0.05), p_min <= 0.05 / k)


def test_testable_bh_is_bh_over_the_testable_only():
    p_min = np.array([1e-6, 1e-6, 0.2, 0.5, 1e-4, np.nan])
    p = np.array([1e-5, 0.03, 0.3, 0.6, 0.01, np.nan])
    q = bh_over_testable(p, p_min, alpha=0.05)
    keep = tarone_testable(p_min, alpha=0.05)
    assert keep.tolist() == [True, True, False, False, True, False]
    assert q[keep] == pytest.approx(false_discovery_control(p[keep], method="bh"))
    assert q[2] == q[3] == 1.0 and np.isnan(q[5])
    assert bh_qvalues(p[:5]) == pytest.approx(false_discovery_control(p[:5], method="bh"))


def test_clone_level_controls_fdr_over_clones_where_per_day_union_does_not():
    """Brute-force simulation: 3 days sharing a reference (positively correlated p-values), 5% of clones
    truly expanded. BH per day then 'any day' over-shoots; Simes then BH over clones keeps the FDR."""
    rng = np.random.default_rng(3)
    fdp_union, fdp_clone = [], []
    for _ in range(200):
        m, days = 2000, 3
        truth = rng.random(m) < 0.05
        shared = rng.normal(size=(m, 1))
        z = (shared + rng.normal(size=(m, days))) / np.sqrt(2) + np.where(truth[:, None], 3.0, 0.0)
        p = 1 - __import__("scipy").stats.norm.cdf(z)
        union = np.zeros(m, bool)
        for j in range(days):
            union |= false_discovery_control(p[:, j], method="bh") < 0.1
        q, called = clone_level(p, np.zeros_like(p), alpha=0.1)
        clone = q < 0.1
        for calls, out in ((union, fdp_union), (clone, fdp_clone)):
            out.append((calls & ~truth).sum() / max(calls.sum(), 1))
        assert not (called.any(axis=1) & ~clone).any()  # days are called only inside selected clones
    assert np.mean(fdp_clone) <= 0.1 * 1.1
    assert np.mean(fdp_union) > np.mean(fdp_clone)


def test_conjunction_controls_fdr_with_many_tumour_only_clones():
    """Many clones enriched in the tumour but not in blood: BH on max(p_blood, p_tumour) keeps the FDR of
    'both', where selecting on blood and re-testing the tumour among the selected does not."""
    rng = np.random.default_rng(4)
    fdp_conj, fdp_select = [], []
    norm = __import__("scipy").stats.norm
    for _ in range(300):
        m = 3000
        both = np.zeros(m, bool)
        both[:30] = True
        tumour_only = np.zeros(m, bool)
        tumour_only[30:630] = True
        p_blood = 1 - norm.cdf(rng.normal(size=m) + np.where(both, 3.5, 0.0))
        p_tumour = 1 - norm.cdf(rng.normal(size=m) + np.where(both | tumour_only, 4.0, 0.0))
        conj = bh_qvalues(conjunction_pvalues(p_blood, p_tumour)) < 0.05
        blood = bh_qvalues(p_blood) < 0.05
        select = np.zeros(m, bool)
        if blood.any():
            select[blood] = bh_qvalues(p_tumour[blood]) < 0.05
        for calls, out in ((conj, fdp_conj), (select, fdp_select)):
            out.append((calls & ~both).sum() / max(calls.sum(), 1))
    assert np.mean(fdp_conj) <= 0.05
    assert np.mean(fdp_select) > np.mean(fdp_conj)


def test_conjunction_pvalue_is_the_larger_part():
    assert conjunction_pvalues([0.01, 0.5, np.nan], [0.2, 0.001, 0.1]).tolist()[:2] == [0.2, 0.5]
    assert np.isnan(conjunction_pvalues([np.nan], [0.1])[0])


def brute_replicability(p1, p2, selected, m, q, c):
    """Bogomolov & Heller (2013) step-up by its definition: the largest R with #{i in S : p1 <= R c q / m and
    p2 <= R (1 - c) q / S} >= R, then the discoveries are those clones (R = 0: none)."""
    s = int(selected.sum())
    for r in range(s, 0, -1):
        hit = selected & (p1 <= r * c * q / m) & (p2 <= r * (1 - c) * q / s)
        if hit.sum() >= r:
            return hit
    return np.zeros_like(selected)


def test_replicability_rvalues_equal_the_step_up_definition():
    rng = np.random.default_rng(7)
    for _ in range(200):
        m = int(rng.integers(5, 200))
        p1 = rng.random(m) ** rng.uniform(1, 8)
        p2 = rng.random(m) ** rng.uniform(1, 8)
        selected = rng.random(m) < rng.uniform(0.1, 0.9)
        c = float(rng.uniform(0.2, 0.8))
        r = replicability_rvalues(p1, p2, selected=selected, m_primary=m, emphasis=c)
        assert np.isnan(r[~selected]).all()
        for q in (0.01, 0.05, 0.2):
            expected = brute_replicability(p1, p2, selected, m, q, c)
            assert np.array_equal(np.nan_to_num(r, nan=1.0) <= q, expected)


def test_replicability_controls_the_fdr_of_the_conjunction_with_many_tumour_only_clones():
    """Blood primary (selected by BH at q/2 ... here by p1 <= q c), tumour follow-up of the selected: false
    discoveries are clones null in either study; simulated FDR stays under q."""
    norm = __import__("scipy").stats.norm
    rng = np.random.default_rng(8)
    fdp = []
    for _ in range(300):
        m = 3000
        both = np.zeros(m, bool)
        both[:30] = True
        blood_only, tumour_only = np.zeros(m, bool), np.zeros(m, bool)
        blood_only[30:130] = True
        tumour_only[130:730] = True
        p1 = norm.sf(rng.normal(size=m) + np.where(both | blood_only, 3.5, 0.0))
        p2 = norm.sf(rng.normal(size=m) + np.where(both | tumour_only, 4.0, 0.0))
        selected = bh_qvalues(p1) < 0.05
        calls = np.nan_to_num(replicability_rvalues(p1, p2, selected=selected, m_primary=m), nan=1.0) <= 0.05
        fdp.append((calls & ~both).sum() / max(calls.sum(), 1))
    assert np.mean(fdp) <= 0.05
