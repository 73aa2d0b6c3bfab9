"""The issue-16 stages at library level (no Snakemake): the per-patient association metrics, the tables
the association stage writes, and the simulator's planted response difference found by the association."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tcrtrack.association_stage import association_metrics, association_table, survival_table
from tcrtrack.simulate import simulate_cohort


def _expansion(**extra) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient": ["A", "B", "C", "D"],
            "expanded_in_blood": [5, 7, 1, 2],
            "new_expanded_in_blood": [1, 1, 0, 0],
            "accumulating_in_tumor": [2, 3, 1, 0],
            "flagged": [4, 6, 0, 1],
            "flagged_share_max_biopsy": [0.1, 0.2, None, 0.01],
            **extra,
        }
    )


def _diversity() -> pl.DataFrame:
    rows = []
    for patient, shift in (("A", 0.5), ("B", 0.4), ("C", -0.1), ("D", 0.0)):
        for compartment, days in (("blood", (0, 0, 14, 28)), ("tumor", (-7, 28))):
            for k, day in enumerate(days):
                value = 3.0 + (shift * (day == max(days)))
                rows.append(
                    {
                        "patient": patient,
                        "sample": f"{patient}{compartment}{k}",
                        "compartment": compartment,
                        "day": day,
                        "depth_type": "rarefied",
                        "shannon_nats": value,
                        "clonality": 1 / value,
                    }
                )
    return pl.DataFrame(rows)


def test_association_metrics_come_from_the_cohort_tables():
    metrics = association_metrics(expansion=_expansion(), diversity=_diversity())
    assert metrics["patient"].to_list() == ["A", "B", "C", "D"]
    assert metrics["flagged"].dtype == pl.Int64 and metrics["flagged_tumor_share"][2] is None
    # change = last post-treatment day - the reference (latest day <= 0, replicates averaged)
    assert metrics["blood_shannon_change"].to_list() == pytest.approx([0.5, 0.4, -0.1, 0.0])
    assert metrics["tumor_clonality_change"][0] == pytest.approx(1 / 3.5 - 1 / 3.0)


def test_association_table_counts_missing_and_says_why_a_column_is_not_tested():
    metrics = association_metrics(expansion=_expansion())
    groups = pl.DataFrame(
        {"patient": ["A", "B", "C", "D"], "response": ["R", "R", "N", "N"], "arm": ["x", "x", "x", "x"]}
    )
    table = association_table(metrics, groups, columns=["response", "arm", "missing"], n_boot=200)
    share = table.filter((pl.col("grouping") == "response") & (pl.col("metric") == "flagged_tumor_share")).row(
        0, named=True
    )
    assert share["n_missing"] == 1 and share["missing_patients"] == "C" and share["n_per_group"] == "1|2"
    flagged = table.filter((pl.col("grouping") == "response") & (pl.col("metric") == "flagged")).row(0, named=True)
    assert flagged["groups"] == "N|R" and flagged["effect"] > 0 and flagged["test"].startswith("mann_whitney")
    assert flagged["n_tests"] == metrics.width - 1
    reasons = dict(table.filter(pl.col("test") == "not_tested").select("grouping", "missing_patients").iter_rows())
    assert reasons == {"arm": "fewer than two groups", "missing": "no such sheet column"}


def test_survival_table_only_with_survival_columns():
    metrics = association_metrics(expansion=_expansion())
    groups = pl.DataFrame({"patient": ["A", "B", "C", "D"], "response": ["R", "R", "N", "N"]})
    assert survival_table(metrics, groups, by=["response"]).height == 0
    with_os = groups.with_columns(os_days=pl.Series([400, 380, 90, 120]), os_event=pl.Series([0, 1, 1, 1]))
    result = survival_table(metrics, with_os, by=["response"])
    assert set(result["by"]) == {"response", "flagged"} and set(result["endpoint"]) == {"os"}
    assert result["test"].to_list() == ["logrank", "logrank"] and result["p"].is_between(0, 1).all()


def test_simulated_response_difference_is_found_by_the_association(tmp_path: Path):
    """Responders simulated with 3x the planted flag-able clones (``responder_planted_fold``): the workflow's
    calls (ingest + analyse_patient, as the expansion step runs them) flag more clones in responders,
    and the association's effect has the planted sign."""
    from tcrtrack.formats import ingest_converted
    from tcrtrack.patient import ANNOTATION, CallSettings, analyse_patient
    from tcrtrack.samplesheet import read_sample_sheet

    cohort = simulate_cohort(
        tmp_path,
        n_patients=8,
        n_clones=3000,
        blood_depth=15000,
        tumor_depth=8000,
        n_planted=(6, 3, 3),
        post_days=(14, 28),
        tumor_days=(-7, 28),
        replicate_patients=(),
        seed=5,
        responder_planted_fold=3.0,
    )
    truth = pl.read_csv(cohort.truth, separator="\t").filter(pl.col("category") == "new_expanded_tumor")
    planted = dict(truth.group_by("patient").len().iter_rows())
    assert planted == {f"P{p:02d}": 18 if p % 2 else 6 for p in range(1, 9)}
    sheet = read_sample_sheet(cohort.sheet, check_files=False)
    rows = []
    for (patient,), samples in sheet.group_by("patient", maintain_order=True):
        tables = {
            r["sample"]: ingest_converted(
                cohort.out_dir / r["path"],
                fmt="airr",
                locus="TRB",
                productive_only=True,
                min_junction_aa_length=5,
                definition="aa_vj",
            ).clonotypes.select(*ANNOTATION, "count", "frequency")
            for r in samples.iter_rows(named=True)
        }
        calls = analyse_patient(samples, tables, settings=CallSettings())
        rows.append({"patient": patient, "flagged": calls.flagged.height})
    metrics = pl.DataFrame(rows)
    groups = sheet.group_by("patient", maintain_order=True).agg(pl.col("response").first())
    result = association_table(metrics, groups, columns=["response"], n_boot=500).row(0, named=True)
    assert result["groups"] == "non-responder|responder"
    medians = [float(m) for m in result["medians"].split("|")]
    assert medians[1] > medians[0] and result["effect"] > 0
    by_group = metrics.join(groups, on="patient").group_by("response").agg(pl.col("flagged").sum())
    totals = dict(by_group.iter_rows())
    assert totals["responder"] > 2 * totals["non-responder"]
    assert result["p"] < 0.5  # 4 vs 4 patients: the exact test's smallest p is 0.029


def test_the_default_simulation_is_unchanged_by_the_response_option(tmp_path: Path):
    small = {
        "n_patients": 2,
        "n_clones": 400,
        "blood_depth": 1000,
        "tumor_depth": 500,
        "n_planted": (3, 2, 1),
        "post_days": (14,),
        "tumor_days": (-7, 28),
        "replicate_patients": (),
    }
    a = simulate_cohort(tmp_path / "a", **small)
    b = simulate_cohort(tmp_path / "b", **small, responder_planted_fold=1.0)
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    with pytest.raises(ValueError, match="responder_planted_fold"):
        simulate_cohort(tmp_path / "c", **small, responder_planted_fold=0)
