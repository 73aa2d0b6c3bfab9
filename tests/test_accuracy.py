"""Regression guard for the accuracy harness (``benchmarks/scenarios.py``, ``scoring.py``, ``accuracy.py``).

Unit tests of the scoring on hand-made frames, properties of the independent scenario generator, and one
small easy scenario (multinomial sampling only) on which Fisher's exact test must recover the planted truth:
an independent check of the harness, not of the models. The full benchmark is ``benchmarks/accuracy.py``.
"""

from __future__ import annotations

import accuracy
import numpy as np
import polars as pl
import pytest
import scenarios
import scoring


def _truth(rows):
    cols = ["clone_id", "category", "max_post_blood_count", "max_post_tumor_count"]
    t = pl.DataFrame(rows, schema=cols, orient="row")
    return t.with_columns(
        blood_true=pl.col("category").is_in(scenarios.BLOOD_TRUE),
        flag_true=pl.col("category").is_in(scenarios.FLAG_TRUE),
        product=pl.col("category") == "product",
    )


TRUTH = _truth(
    [
        ("c1", "new_expanded_tumor", 50, 10),  # reachable for flags
        ("c2", "new_expanded_tumor", 50, 2),  # blood-reachable only
        ("c3", "blood_only", 30, 0),
        ("c4", "tumor_only", 5, 20),
        ("c5", "background", 3, 0),
        ("c6", "background", 1, 1),
        ("c7", "product", 900, 50),
    ]
)


def test_scoring_by_hand():
    calls = pl.DataFrame(
        {
            "clone_id": ["c1", "c3", "c4", "c5", "c7"],
            "expanded_in_blood": [True, True, True, True, True],
            "flagged": [True, False, True, False, True],
        }
    )
    s = scoring.score_calls(calls, TRUTH)
    # blood: calls c1 c3 c4 c5 (c7 product excluded) -> 4 calls, 2 false (c4, c5); 3 planted blood clones, 2 found
    assert (s["blood_calls"], s["blood_false"], s["blood_true"], s["blood_tp"]) == (4, 2, 3, 2)
    assert s["blood_fdp"] == pytest.approx(0.5) and s["blood_recall"] == pytest.approx(2 / 3)
    assert s["blood_reachable"] == 3 and s["blood_recall_reachable"] == pytest.approx(2 / 3)
    # flags: c1 (true), c4 (false, tumor_only); truth c1, c2; reachable c1 only
    assert (s["flag_calls"], s["flag_false"], s["flag_tp"], s["flag_false_tumor_only"]) == (2, 1, 1, 1)
    assert s["flag_fdp"] == pytest.approx(0.5) and s["flag_recall"] == pytest.approx(0.5)
    assert s["flag_reachable"] == 1 and s["flag_recall_reachable"] == pytest.approx(1.0)


def test_scoring_without_calls_and_missing_clones():
    calls = pl.DataFrame(
        {"clone_id": ["c6"], "expanded_in_blood": [False], "flagged": [None]},
        schema={"clone_id": pl.Utf8, "expanded_in_blood": pl.Boolean, "flagged": pl.Boolean},
    )
    s = scoring.score_calls(calls, TRUTH)
    assert s["blood_calls"] == 0 and s["blood_fdp"] == 0.0 and s["flag_fdp"] == 0.0 and s["blood_recall"] == 0.0


def test_summarise_pools_patients_then_averages_seeds():
    base = {k: 0 for k in scoring.COUNTS}
    rec = [
        {
            **base,
            "scenario": "x",
            "method": "m",
            "seed": 0,
            "blood_calls": 10,
            "blood_false": 1,
            "blood_true": 5,
            "blood_tp": 5,
        },
        {
            **base,
            "scenario": "x",
            "method": "m",
            "seed": 0,
            "blood_calls": 10,
            "blood_false": 3,
            "blood_true": 5,
            "blood_tp": 4,
        },
        {**base, "scenario": "x", "method": "m", "seed": 1, "blood_calls": 0, "blood_true": 10},
    ]
    out = scoring.summarise(pl.DataFrame(rec)).row(0, named=True)
    assert out["blood_fdp"] == pytest.approx((4 / 20 + 0.0) / 2)
    assert out["blood_fdp_max"] == pytest.approx(0.2)
    assert out["blood_recall"] == pytest.approx((9 / 10 + 0.0) / 2)


def test_bh_simes_tarone_by_hand():
    q = scoring.bh(np.array([0.01, 0.04, 0.03, 0.5]))
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> step-up minimum 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(q, [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    p = np.array([[0.01, 0.04, 0.5], [0.2, np.nan, 0.3]])
    testable = np.array([[True, True, True], [True, False, False]])
    np.testing.assert_allclose(scoring.simes(p, testable), [min(3 * 0.01, 3 * 0.04 / 2, 0.5), 0.2])
    kept = scoring.tarone(np.array([0.001, 0.2, 0.3]), np.array([1e-4, 0.5, 1e-4]), 0.05)
    assert np.isnan(kept[1]) and kept[0] == 0.001 and kept[2] == 0.3


def test_generator_counts_sum_to_depths_and_seeds_reproduce():
    design = scenarios.Design().quick()
    samples, clonotypes, truth, state = scenarios.generate_patient("lognormal_0.2", seed=3, design=design)
    for lib in state.libraries:
        assert int(clonotypes[lib.sample]["count"].sum()) == lib.depth
        assert (clonotypes[lib.sample]["count"] > 0).all()
    assert set(samples.columns) == {"patient", "sample", "compartment", "day", "replicate"}
    assert samples.filter(pl.col("day") == 0)["replicate"].to_list() == [1, 2]  # patient 0 has replicates
    assert truth.filter(pl.col("category") == "tumor_only").height == design.n_tumor_only
    again = scenarios.generate_patient("lognormal_0.2", seed=3, design=design)
    assert all(clonotypes[s].equals(again[1][s]) for s in clonotypes)
    other = scenarios.generate_patient("lognormal_0.2", seed=4, design=design)
    assert not clonotypes[state.libraries[0].sample].equals(other[1][state.libraries[0].sample])
    assert all(
        len(j) >= 8 and j.startswith("CASS") and j.endswith("F")
        for j in clonotypes[state.libraries[0].sample]["junction_aa"].head(20)
    )


def test_product_share_is_half_of_post_blood():
    _, clonotypes, truth, state = scenarios.generate_patient("product_50", seed=0, design=scenarios.Design().quick())
    product = set(truth.filter(pl.col("product"))["clone_id"])
    for lib in state.libraries:
        table = clonotypes[lib.sample]
        share = table.filter(pl.col("clone_id").is_in(product))["count"].sum() / table["count"].sum()
        if lib.compartment == "blood" and lib.day > 0:
            assert 0.4 < share < 0.6, (lib.sample, share)
        elif lib.compartment == "blood":
            assert share == 0
    assert "product" in {lib.compartment for lib in state.libraries}


def test_easy_scenario_fisher_recovers_planted_truth():
    records = accuracy.run_task(
        {
            "scenario": "easy",
            "seed": 0,
            "patients": 1,
            "models": ["fisher"],
            "quick": True,
            "oracle": False,
            "oracle_replicates": 5,
        }
    )
    (r,) = records
    assert r["blood_recall_reachable"] >= 0.9, r
    assert r["blood_fdp"] <= 0.1, r
    assert r["flag_fdp"] <= 0.1 and r["flag_recall_reachable"] >= 0.7, r


def test_unknown_models_are_skipped():
    known, unknown = scoring.methods_available(["fisher", "no_such_model"])
    assert known == ["fisher"] and unknown == ["no_such_model"]


def test_oracle_on_easy_scenario_calls_planted_clones():
    _, _, truth, state = scenarios.generate_patient("easy", seed=0, design=scenarios.Design().quick())
    calls = scoring.oracle_calls(state, replicates=5)
    s = scoring.score_calls(calls, truth)
    assert s["blood_calls"] > 0 and s["blood_fdp"] <= 0.2, s
    assert s["blood_recall_reachable"] >= 0.5, s


def test_null_law_pvalues_are_add_one_tails():
    a = np.array([0, 1, 2, 3, 1])
    b = np.array([1, 0, 1, 0, 1])  # n = 1, 1, 3, 3, 2
    law = scoring.NullLaw(a, b, 100, 100)
    p = law.pvalues(np.array([0, 0, 0]), np.array([1, 3, 0]))
    # n = 1: null b/n in {1, 0}; b/n = 1 exceeded by 1 of 2 -> (1 + 1) / 3; n = 3, b = 3: none of 2 -> 1/3
    np.testing.assert_allclose(p[:2], [2 / 3, 1 / 3])
    assert np.isnan(p[2])
