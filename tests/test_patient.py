"""Per-patient calls on hand-made repertoires: pooling, p-values, rules, flags and edge cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import fisher_exact

from tcrtrack.patient import CallSettings, analyse_patient, wide_counts
from tcrtrack.schema import CLONOTYPE_SCHEMA

FISHER = CallSettings(model="fisher", min_count=3, tumor_min_count=3)


def table(counts: dict[str, int]) -> pl.DataFrame:
    """A clonotype table from {junction_aa: count} (V/J fixed)."""
    total = sum(counts.values())
    rows = [{"clone_id": f"{aa}|TRBV5-1|TRBJ2-7", "junction_aa": aa, "v_gene": "TRBV5-1", "j_gene": "TRBJ2-7",
             "junction": None, "count": n, "frequency": n / total, "v_ambiguous": False, "j_ambiguous": False}
            for aa, n in counts.items() if n > 0]
    return pl.DataFrame(rows, schema=CLONOTYPE_SCHEMA)


def background(seed: int, n: int = 300) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    return {f"CASSBG{i:04d}F": int(c) for i, c in enumerate(rng.integers(5, 60, n))}


def sheet(rows: list[tuple[str, str, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64,
                                      "replicate": pl.Int64}, orient="row").with_columns(patient=pl.lit("P1"))


def clone(calls, aa: str) -> dict:
    return calls.clones.filter(pl.col("junction_aa") == aa).row(0, named=True)


@pytest.fixture
def cohort():
    bg = background(0)
    tables = {
        "b0r1": table({**bg, "CASSNEWF": 0, "CASSOLDF": 40}),
        "b0r2": table({**bg, "CASSNEWF": 0, "CASSOLDF": 35}),
        "b14": table({**bg, "CASSNEWF": 80, "CASSOLDF": 38}),
        "b28": table({**bg, "CASSNEWF": 200, "CASSOLDF": 36}),
        "t0": table({**bg, "CASSNEWF": 0, "CASSTUMF": 2}),
        "t28": table({**bg, "CASSNEWF": 30, "CASSTUMF": 60}),
    }
    samples = sheet([("b0r1", "blood", 0, 1), ("b0r2", "blood", 0, 2), ("b14", "blood", 14, 1),
                     ("b28", "blood", 28, 1), ("t0", "tumor", -7, 1), ("t28", "tumor", 28, 1)])
    return samples, tables


def test_wide_table_keeps_every_count(cohort):
    _, tables = cohort
    wide = wide_counts(tables)
    for sample, frame in tables.items():
        assert wide[f"count_{sample}"].sum() == frame["count"].sum()
        assert wide[f"freq_{sample}"].sum() == pytest.approx(1.0)


def test_fisher_pvalue_pools_replicates_and_matches_scipy(cohort):
    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=FISHER)
    n_a = int(tables["b0r1"]["count"].sum() + tables["b0r2"]["count"].sum())
    n_b = int(tables["b14"]["count"].sum())
    for aa, a, b in (("CASSOLDF", 40 + 35, 38), ("CASSNEWF", 0, 80)):  # baseline replicates pooled
        row = clone(calls, aa)
        expected = fisher_exact([[b, n_b - b], [a, n_a - a]], alternative="greater").pvalue
        assert row["blood_d14_pvalue"] == pytest.approx(expected, rel=1e-9)
        assert row["blood_d14_log2fc"] == pytest.approx(np.log2(((b + 1) / n_b) / ((a + 1) / n_a)))
        assert row["baseline_count"] == a


def test_new_clone_expanding_in_blood_and_tumour_is_flagged(cohort):
    samples, tables = cohort
    for settings in (FISHER, CallSettings(model="overdispersed")):
        calls = analyse_patient(samples, tables, settings=settings)
        new = clone(calls, "CASSNEWF")
        assert new["expanded_in_blood"] and new["new_in_blood"] and new["accumulates_in_tumor"] and new["flagged"]
        assert new["n_expanded_timepoints"] == 2 and new["peak_day"] == 28
        assert calls.flagged["junction_aa"].to_list() == ["CASSNEWF"]
        old = clone(calls, "CASSOLDF")
        assert not old["expanded_in_blood"] and not old["flagged"]
        tumour_only = clone(calls, "CASSTUMF")
        assert tumour_only["accumulates_in_tumor"] and not tumour_only["flagged"]


def test_replicates_drive_the_noise_model(cohort):
    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=CallSettings(model="overdispersed"))
    sources = dict(calls.noise.group_by("comparison").agg(pl.col("source").first()).iter_rows())
    assert sources["blood_d14 vs blood_d0"] == "replicates"
    assert sources["tumor_d28 vs tumor_d-7"] == "bulk"


def test_require_new_excludes_clones_present_at_baseline(cohort):
    samples, tables = cohort
    tables = {**tables, "b0r1": table({**background(0), "CASSNEWF": 5, "CASSOLDF": 40})}
    calls = analyse_patient(samples, tables, settings=FISHER)
    assert clone(calls, "CASSNEWF")["flagged"] and not clone(calls, "CASSNEWF")["new_in_blood"]
    strict = analyse_patient(samples, tables, settings=CallSettings(model="fisher", require_new=True))
    assert strict.flagged.height == 0


def test_tumour_rule_significant_only_needs_enrichment(cohort):
    samples, tables = cohort
    # CASSNEWF: 0 -> 30 in the tumour; with 'significant' it still needs q < fdr, which 0 -> 30 gives
    calls = analyse_patient(samples, tables, settings=CallSettings(model="fisher", tumor_rule="significant"))
    assert clone(calls, "CASSNEWF")["accumulates_in_tumor"]
    # a clone absent before and at 3 after is 'new' in the tumour but not significant
    tables = {**tables, "t28": table({**background(0), "CASSNEWF": 3, "CASSTUMF": 60})}
    liberal = analyse_patient(samples, tables,
                              settings=CallSettings(model="fisher", tumor_rule="significant_or_new"))
    strict = analyse_patient(samples, tables, settings=FISHER)
    assert clone(liberal, "CASSNEWF")["accumulates_in_tumor"]
    assert not clone(strict, "CASSNEWF")["accumulates_in_tumor"]


def test_no_pre_treatment_biopsy_uses_presence(cohort):
    samples, tables = cohort
    samples = samples.filter(pl.col("sample") != "t0")
    tables = {k: v for k, v in tables.items() if k != "t0"}
    calls = analyse_patient(samples, tables, settings=FISHER)
    assert any("no pre-treatment biopsy" in note for note in calls.notes)
    assert clone(calls, "CASSNEWF")["flagged"]
    assert clone(calls, "CASSNEWF")["tumor_pre_count"] is None


def test_no_tumour_samples(cohort):
    samples, tables = cohort
    samples = samples.filter(pl.col("compartment") == "blood")
    tables = {k: v for k, v in tables.items() if k.startswith("b")}
    calls = analyse_patient(samples, tables, settings=FISHER)
    assert any("no post-treatment biopsy" in note for note in calls.notes)
    assert clone(calls, "CASSNEWF")["expanded_in_blood"]
    assert calls.flagged.height == 0


def test_single_sample_and_no_baseline(cohort):
    samples, tables = cohort
    one = analyse_patient(samples.filter(pl.col("sample") == "b14"), {"b14": tables["b14"]}, settings=FISHER)
    assert one.flagged.height == 0 and not one.clones["expanded_in_blood"].any()
    assert any("no baseline blood" in note for note in one.notes)
    no_post = analyse_patient(samples.filter(pl.col("sample") == "b0r1"), {"b0r1": tables["b0r1"]},
                              settings=FISHER)
    assert any("no post-infusion blood" in note for note in no_post.notes)


def test_single_post_timepoint_without_replicates(cohort):
    samples, tables = cohort
    keep = ["b0r1", "b28", "t0", "t28"]
    calls = analyse_patient(samples.filter(pl.col("sample").is_in(keep)), {k: tables[k] for k in keep},
                            settings=CallSettings(model="overdispersed"))
    new = clone(calls, "CASSNEWF")
    assert new["flagged"] and new["peak_day"] == 28 and new["baseline_count"] == 0
    assert set(calls.noise["source"]) == {"bulk"}


def test_explicit_baseline_day(cohort):
    samples, tables = cohort
    samples = pl.concat([samples, sheet([("bm7", "blood", -7, 1)])], how="diagonal_relaxed")
    tables = {**tables, "bm7": table({**background(0), "CASSNEWF": 150})}
    latest = analyse_patient(samples, tables, settings=FISHER)
    early = analyse_patient(samples, tables, settings=CallSettings(model="fisher", baseline_day=-7))
    assert clone(latest, "CASSNEWF")["expanded_in_blood"]   # baseline day 0: absent, then 80-200
    assert not clone(early, "CASSNEWF")["expanded_in_blood"]  # baseline day -7: already 150


def test_flag_evidence_is_bh_among_blood_expanded_clones_only(cohort):
    from scipy.stats import false_discovery_control

    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=FISHER)
    expanded = calls.clones.filter(pl.col("expanded_in_blood") & pl.col("tumor_d28_pvalue").is_not_null())
    expected = false_discovery_control(expanded["tumor_d28_pvalue"].to_numpy(), method="bh")
    assert expanded["tumor_d28_flag_qvalue"].to_numpy() == pytest.approx(expected)
    # far fewer tests than the whole-repertoire q-value, never a larger q
    assert (expanded["tumor_d28_flag_qvalue"] <= expanded["tumor_d28_qvalue"] + 1e-12).all()
    assert calls.clones.filter(~pl.col("expanded_in_blood"))["tumor_d28_flag_qvalue"].is_null().all()
    new = clone(calls, "CASSNEWF")
    assert new["tumor_qvalue"] == pytest.approx(new["tumor_d28_flag_qvalue"])


def test_replicate_rho_is_carried_over_to_pooled_libraries():
    from tcrtrack.noise import NoiseModel, for_pooled_libraries

    pair = NoiseModel(source="replicates", log10_freq=(-4.0, -3.0), rho_bins=(0.05, 0.2), n_clones=(300, 300),
                      p_null=(float("nan"),) * 2)
    dispersion = np.array([2 * 0.05 / 0.95, 2 * 0.2 / 0.8])  # D = 2 rho / (1 - rho)
    pooled = for_pooled_libraries(pair, k_a=2, k_b=1)
    assert pooled.rho_bins == pytest.approx(tuple(dispersion / (3 + dispersion)))
    assert for_pooled_libraries(pair, k_a=1, k_b=1) is pair
    bulk = NoiseModel(source="bulk", log10_freq=(-4.0,), rho_bins=(0.1,), n_clones=(300,), p_null=(0.5,))
    assert for_pooled_libraries(bulk, k_a=2, k_b=1) is bulk
