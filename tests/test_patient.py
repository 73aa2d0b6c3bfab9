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


def pivot_wide_counts(clonotypes: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The wide table as the earlier concat + pivot + join + sort built it (the oracle)."""
    names = ("clone_id", "junction_aa", "v_gene", "j_gene")
    long = pl.concat([t.select(*names, "count").with_columns(sample=pl.lit(s)) for s, t in clonotypes.items()])
    annotation = long.group_by("clone_id", maintain_order=True).agg(pl.col(c).first() for c in names[1:])
    counts = long.pivot(on="sample", index="clone_id", values="count", aggregate_function="sum",
                        on_columns=list(clonotypes))
    counts = counts.rename({s: f"count_{s}" for s in clonotypes}).fill_null(0)
    totals = {s: int(t["count"].sum()) for s, t in clonotypes.items()}
    return annotation.join(counts, on="clone_id").with_columns(
        (pl.col(f"count_{s}") / totals[s]).alias(f"freq_{s}") for s in clonotypes).sort("clone_id")


def test_wide_table_equals_the_pivot_it_replaces():
    rng = np.random.default_rng(3)
    pool = [f"CAS{i:03d}F" for i in range(400)]
    tables = {}
    for k, sample in enumerate(["s2", "s1", "s3"]):  # not in name order: columns keep the mapping's order
        picked = rng.choice(pool, size=250, replace=False)
        counts = rng.integers(1, 100, size=picked.size)
        frame = pl.DataFrame({"junction_aa": picked, "count": counts}).with_columns(
            clone_id=pl.col("junction_aa"),  # as definition "aa": V/J may differ between samples
            v_gene=pl.lit(f"TRBV{k + 1}"), j_gene=pl.lit("TRBJ2-7"), junction=None, frequency=None,
            v_ambiguous=False, j_ambiguous=False)
        tables[sample] = frame.select(list(CLONOTYPE_SCHEMA)).cast(CLONOTYPE_SCHEMA)
    tables["dup"] = pl.concat([tables["s1"].head(5), tables["s1"].head(3)])  # a repeated clone_id: summed
    tables["empty"] = tables["s1"].clear()
    assert wide_counts(tables).equals(pivot_wide_counts(tables))
    assert wide_counts({"empty": tables["empty"]}).height == 0


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


def test_best_comparison_and_peak_day():
    from tcrtrack.patient import Comparison, Timepoint, _best, _peak_day

    def comparison(day, q, significant, freq):
        tested = ~np.isnan(q)
        stats = {"qvalue": np.nan_to_num(q), "significant": np.array(significant, dtype=bool),
                 "log2fc": np.full(q.size, day / 10), "freq_post": np.array(freq, dtype=float)}
        return Comparison(Timepoint("blood", day, (f"b{day}",)), tested, stats)

    nan = np.nan
    early = comparison(14, np.array([0.04, 0.01, 0.2, 0.02, nan, nan]), [1, 0, 0, 1, 0, 0], [0.3, 0.5, 0, 0.1, 0, 0])
    late = comparison(28, np.array([0.01, 0.04, 0.3, 0.02, nan, 0.5]), [1, 1, 0, 1, 0, 0], [0.2, 0.1, 0, 0.1, 0, 0])
    log2fc, qvalue = _best([early, late], n=6, prefix="blood")
    # smallest q among significant; significant before smaller non-significant q; else smallest q; first on ties
    assert qvalue.to_list() == [0.01, 0.04, 0.2, 0.02, None, 0.5]
    assert log2fc.to_list() == [2.8, 2.8, 1.4, 1.4, None, 2.8]
    expanded = np.array([True, True, False, True, False, False])
    # the highest frequency among the days the clone was expanded (first on ties)
    assert _peak_day([early, late], expanded, n=6).to_list() == [14, 28, None, 14, None, None]
    assert _best([], n=2, prefix="tumor")[1].to_list() == [None, None]
