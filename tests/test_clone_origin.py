"""Tests of tcrtrack.clone_origin: planted classes, and depth-aware expectations under thinning."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tcrtrack.clone_origin import CLASSES, clone_origin, origin_summary

SHEET = pl.DataFrame(
    {
        "patient": ["P01"] * 5,
        "sample": ["B0", "B14", "T0", "T28", "PR"],
        "compartment": ["blood", "blood", "tumor", "tumor", "product"],
        "day": [0, 14, -7, 28, 0],
        "replicate": [1, 1, 1, 1, 1],
    }
)
# clone: B0, B14, T0, T28, PR; planted class of the T28 clones
HAND = {
    "c01": (5, 3, 4, 10, 0),  # 1 pre_tumor (also in blood)
    "c02": (0, 0, 2, 3, 0),  # 1
    "c03": (0, 0, 1, 1, 0),  # 1
    "c04": (2, 9, 0, 4, 0),  # 2 baseline_blood
    "c05": (1, 0, 0, 2, 0),  # 2
    "c06": (0, 7, 0, 6, 0),  # 3 post_blood (flagged, expanded)
    "c07": (0, 2, 0, 1, 0),  # 3 (expanded)
    "c08": (0, 0, 0, 0, 3),  # not in T28
    "c09": (0, 0, 0, 2, 5),  # 3 via the product
    "c10": (0, 0, 0, 5, 0),  # 4 novel
    "c11": (0, 0, 3, 0, 0),  # pre only
    "c12": (4, 0, 0, 0, 0),  # blood only
}


def _wide() -> pl.DataFrame:
    counts = np.array(list(HAND.values()))
    return pl.DataFrame(
        {
            "clone_id": list(HAND),
            **{f"count_{s}": counts[:, j] for j, s in enumerate(["B0", "B14", "T0", "T28", "PR"])},
            "expanded_in_blood": [c in ("c04", "c06", "c07") for c in HAND],
            "flagged": [c == "c06" for c in HAND],
        }
    )


def test_planted_classes_counts_and_shares():
    out = clone_origin(_wide(), SHEET)
    assert out["origin"].to_list() == list(CLASSES) and out["biopsy_day"].unique().to_list() == [28]
    assert out["n_clones"].to_list() == [3, 2, 3, 1]
    assert out["templates"].to_list() == [14, 6, 9, 5]  # T28 total 34
    assert out["clone_share"].to_list() == pytest.approx([3 / 9, 2 / 9, 3 / 9, 1 / 9])
    assert out["template_share"].sum() == pytest.approx(1.0)
    assert out["n_expanded"].to_list() == [0, 1, 2, 0]
    assert out["expanded_share"].to_list()[1:3] == pytest.approx([0.5, 2 / 3])
    assert out["n_flagged"].to_list() == [0, 0, 1, 0]
    assert out["flagged_template_share"][2] == pytest.approx(6 / 9)
    assert out["biopsy_depth"][0] == 34 and out["pre_biopsy_depth"][0] == 10
    # without the product, c09 has no blood source: novel
    no_product = clone_origin(_wide(), SHEET, include_product=False)
    assert no_product["n_clones"].to_list() == [3, 2, 2, 2]


def test_conditional_expectation_by_hand():
    out = clone_origin(_wide(), SHEET)
    w = 10 / (10 + 34)
    # pooled T0 + T28 counts of every clone seen in either biopsy, with its blood class (1, 2, 3 for B0, B14/PR, none)
    t = {"c01": 14, "c02": 5, "c03": 2, "c04": 4, "c05": 2, "c06": 6, "c07": 1, "c09": 2, "c10": 5, "c11": 3}
    blood = {"c01": 1, "c02": 3, "c03": 3, "c04": 1, "c05": 1, "c06": 2, "c07": 2, "c09": 2, "c10": 3, "c11": 3}
    e_post = sum(1 - w**v for v in t.values())
    e1 = sum(1 - (1 - w) ** v - w**v for v in t.values())
    e = [e1] + [sum((1 - w) ** t[c] for c in t if blood[c] == k) for k in (1, 2, 3)]
    assert out["expected_clone_share"].to_list() == pytest.approx([x / e_post for x in e], rel=1e-12)
    assert out["expected_clone_share"].sum() == pytest.approx(1.0)
    e_templates = [sum(v * (1 - w) - v * (1 - w) ** v for v in t.values())] + [
        sum(t[c] * (1 - w) ** t[c] for c in t if blood[c] == k) for k in (1, 2, 3)
    ]
    assert out["expected_template_share"].to_list() == pytest.approx(
        [x / sum(v * (1 - w) for v in t.values()) for x in e_templates], rel=1e-12
    )
    plugin = clone_origin(_wide(), SHEET, expectation="plugin")
    b = {"c01": 10, "c02": 3, "c03": 1, "c04": 4, "c05": 2, "c06": 6, "c07": 1, "c09": 2, "c10": 5}
    p = {c: 1 - (1 - v / 34) ** 10 for c, v in b.items()}
    assert plugin["expected_clone_share"][0] == pytest.approx(sum(p.values()) / 9, rel=1e-12)


def _biopsies(seed: int, *, novel_share: float, thin: float, n: int = 4000, depth: int = 15_000):
    """One tumour repertoire (Pareto weights) sampled twice; ``novel_share`` of clones absent before."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.2, size=n) + 1
    f = weights / weights.sum()
    novel = np.zeros(n, dtype=bool)
    novel[rng.choice(n, int(novel_share * n), replace=False)] = True
    f_pre = np.where(novel, 0.0, f)
    pre = rng.multinomial(depth, f_pre / f_pre.sum())
    post = rng.multinomial(depth, f)
    pre = rng.binomial(pre, thin)  # binomial thinning of the pre-treatment biopsy
    wide = pl.DataFrame(
        {
            "clone_id": [f"c{i}" for i in range(n)],
            "count_T0": pre,
            "count_T1": post,
            "count_B0": np.zeros(n, dtype=np.int64),
        }
    )
    sheet = pl.DataFrame(
        {
            "patient": ["P"] * 3,
            "sample": ["T0", "T1", "B0"],
            "compartment": ["tumor", "tumor", "blood"],
            "day": [-7, 28, 0],
            "replicate": [1] * 3,
        }
    )
    return wide, sheet


@pytest.mark.parametrize("seed", [1, 2])
def test_thinning_does_not_inflate_the_novel_class(seed):
    full = origin_summary(clone_origin(*_biopsies(seed, novel_share=0.0, thin=1.0)))
    thin = origin_summary(clone_origin(*_biopsies(seed, novel_share=0.0, thin=0.2)))
    raw_full, raw_thin = 1 - full["pre_tumor_clone_share"][0], 1 - thin["pre_tumor_clone_share"][0]
    assert raw_thin > raw_full + 0.3  # the raw "new to the tumour" share balloons (about 0.18 -> 0.64)
    for summary in (full, thin):  # no replacement: the depth-aware estimate stays near 0
        assert abs(summary["adjusted_new_share"][0]) < 0.05
        assert abs(summary["adjusted_new_template_share"][0]) < 0.05
        assert summary["novel_clone_share"][0] == pytest.approx(summary["novel_expected_clone_share"][0], abs=0.03)
    # a planted 20% replacement is detected at full depth and not inflated by thinning
    rep_full = origin_summary(clone_origin(*_biopsies(seed, novel_share=0.2, thin=1.0)))
    rep_thin = origin_summary(clone_origin(*_biopsies(seed, novel_share=0.2, thin=0.2)))
    assert 0.1 < rep_full["adjusted_new_share"][0] <= 0.25
    assert rep_thin["adjusted_new_share"][0] <= rep_full["adjusted_new_share"][0] + 0.02
    assert 0.1 < rep_thin["adjusted_new_template_share"][0] <= 0.25


def test_missing_pre_biopsy_is_noted():
    out = clone_origin(_wide(), SHEET.filter(pl.col("sample") != "T0"))
    assert out["n_clones"][0] == 0 and out["expected_clone_share"][0] == 0
    assert "no pre-treatment biopsy" in out["note"][0]


def test_classes_on_a_simulated_cohort_match_a_clone_by_clone_count_and_the_planted_truth(tmp_path):
    """A small simulated cohort through ingest and the calls: every class count equals a plain per-clone loop
    over the wide table, and the planted clones the simulator made absent from baseline blood and from the
    pre-treatment biopsy never land in classes 1-2; those seen in post-infusion blood are class 3."""
    from tcrtrack.formats import ingest_converted
    from tcrtrack.patient import ANNOTATION, CallSettings, analyse_patient
    from tcrtrack.samplesheet import read_sample_sheet
    from tcrtrack.simulate import simulate_cohort

    cohort = simulate_cohort(
        tmp_path,
        n_patients=2,
        n_clones=1500,
        blood_depth=5000,
        tumor_depth=3000,
        n_planted=(10, 4, 4),
        post_days=(14, 28),
        tumor_days=(-7, 28),
        replicate_patients=(),
        seed=3,
    )
    truth = pl.read_csv(cohort.truth, separator="\t").filter(pl.col("category") != "null")
    sheet = read_sample_sheet(cohort.sheet, check_files=False)
    checked_planted = 0
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
        wide = analyse_patient(samples, tables, settings=CallSettings()).clones
        out = clone_origin(wide, samples)
        by_name = {r["sample"]: r for r in samples.iter_rows(named=True)}
        pre = [s for s, r in by_name.items() if r["compartment"] == "tumor" and r["day"] <= 0]
        post = [s for s, r in by_name.items() if r["compartment"] == "tumor" and r["day"] > 0]
        base = [s for s, r in by_name.items() if r["compartment"] == "blood" and r["day"] <= 0]
        later = [
            s
            for s, r in by_name.items()
            if r["compartment"] == "product" or (r["compartment"] == "blood" and r["day"] > 0)
        ]
        assert len(post) == 1 and pre and base and later
        counts = {name: [0, 0, 0, 0] for name in ("clones", "templates")}
        classes = {}
        for row in wide.iter_rows(named=True):
            b = row[f"count_{post[0]}"]
            if b == 0:
                continue
            in_later = any(row[f"count_{s}"] > 0 for s in later)
            k = (
                0
                if any(row[f"count_{s}"] > 0 for s in pre)
                else 1
                if any(row[f"count_{s}"] > 0 for s in base)
                else 2
                if in_later
                else 3
            )
            counts["clones"][k] += 1
            counts["templates"][k] += b
            classes[(row["junction_aa"], row["v_gene"], row["j_gene"])] = (k, in_later)
        assert out["n_clones"].to_list() == counts["clones"]
        assert out["templates"].to_list() == counts["templates"]
        planted = truth.filter(
            (pl.col("patient") == patient) & (pl.col("blood_baseline_freq") == 0) & (pl.col("tumor_pre_freq") == 0)
        )
        for key in planted.select("junction_aa", "v_gene", "j_gene").iter_rows():
            if key in classes:
                k, in_later_blood = classes[key]
                assert k >= 2 and (k == 2) == in_later_blood, key
                checked_planted += 1
    assert checked_planted >= 3
