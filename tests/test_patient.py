"""Per-patient calls on hand-made repertoires: pooling, p-values, rules, flags and edge cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from scipy.stats import fisher_exact

from tcrtrack.patient import CallSettings, analyse_patient, wide_counts
from tcrtrack.schema import CLONOTYPE_SCHEMA

# the hand-made samples hold ~10k templates: a clone absent at baseline is only known to be below ~3e-4
FISHER = CallSettings(model="fisher", min_count=3, tumor_min_count=3, new_max_frequency=1e-3)
DEFAULT = CallSettings(model="overdispersed", new_max_frequency=1e-3)


def table(counts: dict[str, int]) -> pl.DataFrame:
    """A clonotype table from {junction_aa: count} (V/J fixed)."""
    total = sum(counts.values())
    rows = [
        {
            "clone_id": f"{aa}|TRBV5-1|TRBJ2-7",
            "junction_aa": aa,
            "v_gene": "TRBV5-1",
            "j_gene": "TRBJ2-7",
            "junction": None,
            "count": n,
            "frequency": n / total,
            "v_ambiguous": False,
            "j_ambiguous": False,
        }
        for aa, n in counts.items()
        if n > 0
    ]
    return pl.DataFrame(rows, schema=CLONOTYPE_SCHEMA)


def background(seed: int, n: int = 300) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    return {f"CASSBG{i:04d}F": int(c) for i, c in enumerate(rng.integers(5, 60, n))}


def sheet(rows: list[tuple[str, str, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64, "replicate": pl.Int64}, orient="row"
    ).with_columns(patient=pl.lit("P1"))


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
    samples = sheet(
        [
            ("b0r1", "blood", 0, 1),
            ("b0r2", "blood", 0, 2),
            ("b14", "blood", 14, 1),
            ("b28", "blood", 28, 1),
            ("t0", "tumor", -7, 1),
            ("t28", "tumor", 28, 1),
        ]
    )
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
    counts = long.pivot(
        on="sample", index="clone_id", values="count", aggregate_function="sum", on_columns=list(clonotypes)
    )
    counts = counts.rename({s: f"count_{s}" for s in clonotypes}).fill_null(0)
    totals = {s: int(t["count"].sum()) for s, t in clonotypes.items()}
    return (
        annotation.join(counts, on="clone_id")
        .with_columns((pl.col(f"count_{s}") / totals[s]).alias(f"freq_{s}") for s in clonotypes)
        .sort("clone_id")
    )


def test_wide_table_equals_the_pivot_it_replaces():
    rng = np.random.default_rng(3)
    pool = [f"CAS{i:03d}F" for i in range(400)]
    tables = {}
    for k, sample in enumerate(["s2", "s1", "s3"]):  # not in name order: columns keep the mapping's order
        picked = rng.choice(pool, size=250, replace=False)
        counts = rng.integers(1, 100, size=picked.size)
        frame = pl.DataFrame({"junction_aa": picked, "count": counts}).with_columns(
            clone_id=pl.col("junction_aa"),  # as definition "aa": V/J may differ between samples
            v_gene=pl.lit(f"TRBV{k + 1}"),
            j_gene=pl.lit("TRBJ2-7"),
            junction=None,
            frequency=None,
            v_ambiguous=False,
            j_ambiguous=False,
        )
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
    for settings in (FISHER, DEFAULT, CallSettings(model="betabinomial", new_max_frequency=1e-3)):
        calls = analyse_patient(samples, tables, settings=settings)
        new = clone(calls, "CASSNEWF")
        assert new["expanded_in_blood"] and new["new_in_blood"] and new["accumulates_in_tumor"] and new["flagged"]
        assert new["n_expanded_timepoints"] == 2 and new["peak_day"] == 28
        assert calls.flagged["junction_aa"].to_list() == ["CASSNEWF"]
        old = clone(calls, "CASSOLDF")
        assert not old["expanded_in_blood"] and not old["flagged"]
        tumour_only = clone(calls, "CASSTUMF")
        assert tumour_only["accumulates_in_tumor"] and not tumour_only["flagged"]


def test_replicates_give_a_floor_never_the_whole_null(cohort):
    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=DEFAULT)
    sources = dict(calls.noise.group_by("comparison").agg(pl.col("source").first()).iter_rows())
    assert sources["replicates b0r1 vs b0r2"] == "replicates"
    assert sources["blood_d14 vs blood_d0"] in ("bulk", "fallback")
    assert sources["tumor_d28 vs tumor_d-7"] in ("bulk", "fallback")
    floor = calls.noise.filter(pl.col("comparison") == "replicates b0r1 vs b0r2").sort("log10_freq")
    blood = calls.noise.filter(pl.col("comparison") == "blood_d14 vs blood_d0").sort("log10_freq")
    # a pooled pair of replicates against one library: floor variance s_L^2 (1/2 + 1), s_L^2 = pair / 2
    assert (blood["sd"].to_numpy() >= floor["sd"].to_numpy() * np.sqrt(0.75) - 1e-9).all()
    legacy = analyse_patient(samples, tables, settings=CallSettings(model="betabinomial"))
    legacy_sources = dict(legacy.noise.group_by("comparison").agg(pl.col("source").first()).iter_rows())
    assert legacy_sources["blood_d14 vs blood_d0"] == "replicates"


def test_every_pre_infusion_draw_is_pooled_into_the_baseline(cohort):
    samples, tables = cohort
    samples = pl.concat([samples, sheet([("bm14", "blood", -14, 1)])], how="diagonal_relaxed")
    tables = {**tables, "bm14": table({**background(1), "CASSOLDF": 30})}
    calls = analyse_patient(samples, tables, settings=DEFAULT)
    old = clone(calls, "CASSOLDF")
    assert old["baseline_count"] == 40 + 35 + 30
    assert any(c.startswith("draws ") for c in calls.noise["comparison"].unique())
    assert "blood_d14 vs blood baseline (days -14, 0 pooled)" in calls.noise["comparison"].to_list()


def test_new_in_blood_by_the_upper_bound_of_the_baseline_frequency(cohort):
    """Garwood's 95% upper bound chi2_0.95(2(a+1)) / (2 N) <= new_max_frequency, by hand."""
    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=FISHER)
    base = calls.clones["baseline_count"].to_numpy()
    depth = int(tables["b0r1"]["count"].sum() + tables["b0r2"]["count"].sum())
    from scipy.stats import chi2

    upper = chi2.ppf(0.95, 2 * (base + 1)) / (2 * depth)
    assert calls.clones["baseline_frequency_upper"].to_numpy() == pytest.approx(upper)
    assert calls.clones["new_in_blood"].to_list() == list(upper <= 1e-3)
    strict = analyse_patient(samples, tables, settings=CallSettings(model="fisher"))  # default 1e-5
    assert not strict.clones["new_in_blood"].any()
    assert any("no clone can be called new" in note for note in strict.notes)


def test_product_clones_leave_the_fit_and_the_depths(cohort):
    samples, tables = cohort
    product = {f"CASSPROD{i:03d}F": 500 for i in range(20)}
    samples = pl.concat([samples, sheet([("prod", "product", 0, 1)])], how="diagonal_relaxed")
    tables = {
        **tables,
        "prod": table(product),
        "b14": table({**background(0), "CASSNEWF": 80, "CASSOLDF": 38, **product}),
    }
    with_product = analyse_patient(samples, tables, settings=FISHER)
    plain = analyse_patient(
        samples.filter(pl.col("sample") != "prod"), {k: v for k, v in tables.items() if k != "prod"}, settings=FISHER
    )
    product_clone = clone(with_product, "CASSPROD000F")
    assert product_clone["in_product"] and product_clone["blood_d14_pvalue"] is None  # not in the family
    assert not product_clone["expanded_in_blood"] and not product_clone["flagged"]
    # the product's 10,000 templates leave the day-14 depth: other clones keep their fold change
    old_with, old_plain = clone(with_product, "CASSOLDF"), clone(plain, "CASSOLDF")
    assert old_with["blood_d14_log2fc"] > old_plain["blood_d14_log2fc"] + 0.5


def test_require_new_excludes_clones_present_at_baseline(cohort):
    samples, tables = cohort
    tables = {**tables, "b0r1": table({**background(0), "CASSNEWF": 5, "CASSOLDF": 40})}
    # ~18k baseline templates: 0 of them bounds the frequency by 1.7e-4, 5 of them by 5.8e-4
    settings = CallSettings(model="fisher", new_max_frequency=3e-4)
    calls = analyse_patient(samples, tables, settings=settings)
    assert clone(calls, "CASSNEWF")["flagged"] and not clone(calls, "CASSNEWF")["new_in_blood"]
    strict = analyse_patient(
        samples, tables, settings=CallSettings(model="fisher", new_max_frequency=3e-4, require_new=True)
    )
    assert strict.flagged.height == 0


def test_tumour_rule_significant_only_needs_enrichment(cohort):
    samples, tables = cohort
    # CASSNEWF: 0 -> 30 in the tumour; with 'significant' it still needs q < fdr, which 0 -> 30 gives
    calls = analyse_patient(samples, tables, settings=CallSettings(model="fisher", tumor_rule="significant"))
    assert clone(calls, "CASSNEWF")["accumulates_in_tumor"]
    # a clone absent before and at 3 after is 'new' in the tumour but not significant
    tables = {**tables, "t28": table({**background(0), "CASSNEWF": 3, "CASSTUMF": 60})}
    liberal = analyse_patient(samples, tables, settings=CallSettings(model="fisher", tumor_rule="significant_or_new"))
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
    no_post = analyse_patient(samples.filter(pl.col("sample") == "b0r1"), {"b0r1": tables["b0r1"]}, settings=FISHER)
    assert any("no post-infusion blood" in note for note in no_post.notes)


def test_single_post_timepoint_without_replicates(cohort):
    samples, tables = cohort
    keep = ["b0r1", "b28", "t0", "t28"]
    calls = analyse_patient(
        samples.filter(pl.col("sample").is_in(keep)),
        {k: tables[k] for k in keep},
        settings=CallSettings(model="overdispersed"),
    )
    new = clone(calls, "CASSNEWF")
    assert new["flagged"] and new["peak_day"] == 28 and new["baseline_count"] == 0
    assert set(calls.noise["source"]) <= {"bulk", "fallback"}


def test_explicit_baseline_day(cohort):
    samples, tables = cohort
    samples = pl.concat([samples, sheet([("bm7", "blood", -7, 1)])], how="diagonal_relaxed")
    tables = {**tables, "bm7": table({**background(0), "CASSNEWF": 150})}
    latest = analyse_patient(samples, tables, settings=FISHER)
    early = analyse_patient(samples, tables, settings=CallSettings(model="fisher", baseline_day=-7))
    assert clone(latest, "CASSNEWF")["expanded_in_blood"]  # baseline day 0: absent, then 80-200
    assert not clone(early, "CASSNEWF")["expanded_in_blood"]  # baseline day -7: already 150


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0 in the Simes sort, masked after
def fisher_p_min(c: pl.DataFrame, reference: list[str], later: list[str]) -> np.ndarray:
    """Smallest reachable one-sided Fisher p-value of each clone: all its templates in the later sample."""
    from scipy.stats import hypergeom

    a = sum(c[f"count_{s}"].to_numpy() for s in reference)
    b = sum(c[f"count_{s}"].to_numpy() for s in later)
    n_a, n_b = a.sum(), b.sum()
    return np.where(a + b > 0, hypergeom.sf(a + b - 1, n_a + n_b, n_b, a + b), np.nan)


def blood_and_tumour_evidence(c: pl.DataFrame) -> tuple[np.ndarray, ...]:
    """Simes blood p and p_min over days 14 and 28, and the day-28 biopsy's p and p_min, by hand."""

    def hand_simes(p):
        d = (~np.isnan(p)).sum(axis=1)
        srt = np.sort(np.where(np.isnan(p), np.inf, p), axis=1)
        with np.errstate(invalid="ignore"):  # inf * 0 for clones tested nowhere: NaN, as simes gives
            return np.min(srt * d[:, None] / np.arange(1, 3)[None, :], axis=1)

    p_blood = np.column_stack([c[f"{d}_pvalue"].fill_null(np.nan).to_numpy() for d in ("blood_d14", "blood_d28")])
    pm_blood = np.column_stack([fisher_p_min(c, ["b0r1", "b0r2"], ["b14"]), fisher_p_min(c, ["b0r1", "b0r2"], ["b28"])])
    return (
        hand_simes(p_blood),
        hand_simes(pm_blood),
        c["tumor_d28_pvalue"].fill_null(np.nan).to_numpy(),
        fisher_p_min(c, ["t0"], ["t28"]),
    )


def test_flag_is_bh_over_the_conjunction_pvalue(cohort):
    """flag_fdr='conjunction': tumor_qvalue = BH over Tarone-testable clones of max(Simes blood p, Simes tumour p),
    recomputed here."""
    from scipy.stats import false_discovery_control

    samples, tables = cohort
    calls = analyse_patient(samples, tables, settings=replace(FISHER, flag_fdr="conjunction"))
    c = calls.clones
    pb, pb_min, pt, pt_min = blood_and_tumour_evidence(c)
    conj, conj_min = np.maximum(pb, pt), np.maximum(pb_min, pt_min)
    ok = ~np.isnan(conj) & np.isfinite(conj)
    for k in range(1, ok.sum() + 1):  # Tarone's K
        if (conj_min[ok] <= 0.05 / k).sum() <= k:
            break
    keep = ok & (conj_min <= 0.05 / k)
    expected = false_discovery_control(conj[keep], method="bh")
    assert c["tumor_qvalue"].to_numpy()[keep] == pytest.approx(expected)
    assert (c["tumor_qvalue"].to_numpy()[ok & ~keep] == 1.0).all()
    new = clone(calls, "CASSNEWF")
    assert new["flagged"] and new["tumor_qvalue"] < 0.05


def test_replicability_flag_is_the_rvalue_of_blood_then_tumour(cohort):
    """flag_fdr='replicability' (the default): tumor_qvalue is the Bogomolov-Heller r-value of (Simes blood p,
    tumour p) with m = Tarone-testable blood clones, over the blood-expanded clones whose tumour test can
    reach q/2 (inputs recomputed here by hand; the r-values themselves are checked against their step-up
    definition in test_multiplicity)."""
    from tcrtrack.multiplicity import replicability_rvalues

    samples, tables = cohort
    assert FISHER.flag_fdr == "replicability"
    calls = analyse_patient(samples, tables, settings=FISHER)
    c = calls.clones
    pb, pb_min, pt, pt_min = blood_and_tumour_evidence(c)
    finite = np.where(np.isnan(pb_min), np.inf, pb_min)
    for k in range(1, finite.size + 1):  # Tarone's K over the blood tests
        if (finite <= 0.05 / k).sum() <= k:
            break
    m_blood = int((finite <= 0.05 / k).sum())
    follow = c["expanded_in_blood"].to_numpy() & (np.nan_to_num(pt_min, nan=1.0) <= 0.025)
    expected = replicability_rvalues(pb, pt, selected=follow, m_primary=m_blood, emphasis=0.5)
    got = c["tumor_qvalue"].fill_null(np.nan).to_numpy()
    assert np.allclose(got, expected, equal_nan=True)
    assert np.isnan(got[~c["expanded_in_blood"].to_numpy()]).all()  # the follow-up tests blood-expanded clones
    assert clone(calls, "CASSNEWF")["flagged"]
    with pytest.raises(ValueError, match="flag_fdr"):
        analyse_patient(samples, tables, settings=replace(FISHER, flag_fdr="both"))


def test_replicate_rho_is_carried_over_to_pooled_libraries():
    from tcrtrack.noise import NoiseModel, for_pooled_libraries

    pair = NoiseModel(
        source="replicates",
        log10_freq=(-4.0, -3.0),
        rho_bins=(0.05, 0.2),
        n_clones=(300, 300),
        p_null=(float("nan"),) * 2,
    )
    dispersion = np.array([2 * 0.05 / 0.95, 2 * 0.2 / 0.8])  # D = 2 rho / (1 - rho)
    pooled = for_pooled_libraries(pair, k_a=2, k_b=1)
    assert pooled.rho_bins == pytest.approx(tuple(dispersion / (3 + dispersion)))
    assert for_pooled_libraries(pair, k_a=1, k_b=1) is pair
    bulk = NoiseModel(source="bulk", log10_freq=(-4.0,), rho_bins=(0.1,), n_clones=(300,), p_null=(0.5,))
    assert for_pooled_libraries(bulk, k_a=2, k_b=1) is bulk
