"""Regression guard for the accuracy benchmark (``benchmarks/accuracy.py``), with generous bounds.

One small simulated cohort (2 patients x 3000 clones, dispersion 0.1, one seed), analysed in-process
with both models and scored against the simulator's truth. The full benchmark and its numbers are in
``benchmarks/ACCURACY.md``; this only catches a regression that breaks FDR control of the
overdispersed model, or the benchmark itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("tcrtrack_accuracy_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


accuracy = _load_benchmark()


@pytest.fixture(scope="module")
def records() -> tuple[pl.DataFrame, pl.DataFrame]:
    setting = accuracy.Setting(dispersion=0.1, blood_depth=20_000, tumor_depth=8_000, seed=0, n_patients=2,
                               n_clones=3_000, n_planted=(12, 6, 6))
    patients, comparisons, _ = accuracy.run_setting(setting)
    return pl.DataFrame(patients), pl.DataFrame(comparisons)


def _blood(patients: pl.DataFrame, model: str) -> dict[str, float]:
    row = patients.filter(pl.col("model") == model).select(pl.col("blood_calls", "blood_tp", "blood_true").sum()).row(
        0, named=True)
    calls, tp = row["blood_calls"], row["blood_tp"]
    return {"calls": calls, "fdp": (calls - tp) / calls if calls else 0.0, "recall": tp / row["blood_true"]}


def test_overdispersed_blood_calls_keep_fdr(records):
    patients, _ = records
    od = _blood(patients, "overdispersed")
    assert od["calls"] > 0
    assert od["fdp"] <= 0.2, od
    assert od["recall"] > 0.3, od


def test_fisher_overshoots_on_overdispersed_data(records):
    patients, _ = records
    od, fisher = _blood(patients, "overdispersed"), _blood(patients, "fisher")
    assert fisher["fdp"] > od["fdp"], (fisher, od)
    assert fisher["fdp"] > 0.2, fisher  # at dispersion 0.1 the Poisson test calls many null clones


def test_per_comparison_fdr_of_overdispersed_model(records):
    _, comparisons = records
    blood = comparisons.filter(pl.col("model") == "overdispersed", pl.col("compartment") == "blood")
    assert blood.height == 2 * len(accuracy.POST_DAYS)
    fdp = blood.select((pl.col("fp_exact") / pl.col("calls")).fill_nan(0.0).mean()).item()
    assert fdp <= 0.2
    # The benchmark's re-derivation of the calls from the fitted noise model matches tcrtrack's own calls.
    assert blood["as_run_mismatch"].sum() == 0


def test_flagged_precision_and_report(records):
    patients, comparisons = records
    od = patients.filter(pl.col("model") == "overdispersed").select(pl.col("flag_calls", "flag_tp").sum()).row(0)
    assert od[0] > 0 and od[1] / od[0] >= 0.8
    tables = accuracy.render_tables(patients, comparisons)
    assert {"blood", "comparison", "tumor", "source", "calibration", "flag_rules", "variants"} <= tables.keys()
    assert "| 0.1 | 20k/8k | overdispersed |" in tables["blood"]


def test_pvalues_agree_with_scipy():
    check = accuracy.crosscheck_pvalues(n_sub=120)
    assert check["fisher_max_rel_p_gt_1e-300"] < 1e-8
    assert check["bb_max_rel_vs_scipy_p_gt_1e-10"] < 1e-5  # scipy: 1 - cdf, ~1e-7 relative near p = 1e-6
    assert check["bb_max_rel_vs_exact_sum"] < 1e-8
