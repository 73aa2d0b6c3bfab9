"""Tests of the synthetic cohort simulator (small sizes: the whole file runs in seconds)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tcrtrack.olga_source import generate_clonotypes, make_nonproductive, translate
from tcrtrack.simulate import (
    AIRR_COLUMNS,
    CATEGORIES,
    PRODUCT_TRUTH_COLUMNS,
    SHEET_COLUMNS,
    _add_product,
    _simulate_patient,
    library_counts,
    simulate_cohort,
    simulate_demo,
)

SMALL = {
    "n_patients": 2,
    "n_clones": 2_000,
    "blood_depth": 6_000,
    "tumor_depth": 3_000,
    "n_planted": (12, 6, 6),
    "post_days": (14, 28),
    "tumor_days": (-7, 28, 56),
}
KEY = ["patient", "junction_aa", "v_gene", "j_gene"]


def _bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):
    return simulate_cohort(tmp_path_factory.mktemp("a"), seed=7, **SMALL)


@pytest.fixture(scope="module")
def counts(cohort) -> pl.DataFrame:
    """Long table of every productive TRB row: KEY + sample columns + count."""
    sheet = pl.read_csv(cohort.sheet, separator="\t")
    frames = []
    for row in sheet.iter_rows(named=True):
        df = pl.read_csv(cohort.out_dir / row["path"], separator="\t")
        frames.append(
            df.filter(pl.col("productive") == "T", pl.col("locus") == "TRB").select(
                pl.lit(row["patient"]).alias("patient"),
                "junction_aa",
                v_gene=pl.col("v_call").str.split(",").list.first().str.replace(r"\*.*", ""),
                j_gene=pl.col("j_call").str.replace(r"\*.*", ""),
                compartment=pl.lit(row["compartment"]),
                day=pl.lit(row["day"]),
                replicate=pl.lit(row["replicate"]),
                count=pl.col("duplicate_count"),
            )
        )
    return pl.concat(frames)


def test_same_seed_is_byte_identical_and_other_seed_differs(cohort, tmp_path):
    again = simulate_cohort(tmp_path / "b", seed=7, **SMALL)
    other = simulate_cohort(tmp_path / "c", seed=8, **SMALL)
    first = _bytes(cohort.out_dir)
    assert first == _bytes(again.out_dir)
    second = _bytes(other.out_dir)
    assert first.keys() == second.keys()
    assert all(first[k] != second[k] for k in first if k.endswith(".gz"))


def test_sheet_columns_ids_and_days(cohort):
    sheet = pl.read_csv(cohort.sheet, separator="\t")
    assert tuple(sheet.columns) == SHEET_COLUMNS
    assert sheet["sample"].n_unique() == sheet.height
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in sheet["sample"])
    assert sheet["patient"].unique().sort().to_list() == ["P01", "P02"]
    assert set(sheet["format"]) == {"airr"}
    assert set(sheet["compartment"]) == {"blood", "tumor"}
    assert set(sheet["response"]) <= {"responder", "non-responder"}
    for _pid, rows in sheet.group_by("patient"):
        blood = rows.filter(pl.col("compartment") == "blood")
        tumor = rows.filter(pl.col("compartment") == "tumor")
        assert sorted(blood["day"].unique()) == [0, 14, 28]
        assert blood.filter(pl.col("day") == 0)["replicate"].sort().to_list() == [1, 2]
        assert tumor["day"].sort().to_list() == [-7, 28, 56]
    for rel in sheet["path"]:
        assert not Path(rel).is_absolute() and (cohort.out_dir / rel).is_file()
        assert rel.endswith(".tsv.gz")


def test_replicate_fraction_and_missing_pre_biopsy(tmp_path):
    small = {**SMALL, "n_clones": 500, "n_planted": (3, 2, 1)}
    out = simulate_cohort(tmp_path, **small, replicate_patients=0.5, missing_pre_biopsy=(1,), seed=3)
    sheet = pl.read_csv(out.sheet, separator="\t")
    base = sheet.filter(pl.col("compartment") == "blood", pl.col("day") == 0)
    assert base.group_by("patient").len().sort("patient")["len"].to_list() == [2, 1]
    pre = sheet.filter(pl.col("compartment") == "tumor", pl.col("day") <= 0)
    assert pre["patient"].to_list() == ["P01"]


def test_every_file_is_airr_tsv_with_some_qc_failures(cohort):
    import airr

    n_rows = n_bad = n_tra = 0
    for path in cohort.files:
        df = pl.read_csv(path, separator="\t")
        assert tuple(df.columns) == AIRR_COLUMNS
        assert df["sequence_id"].n_unique() == df.height
        assert df["duplicate_count"].min() >= 1
        assert df["duplicate_count"].is_sorted(descending=True)
        assert set(df["productive"]) <= {"T", "F"} and set(df["locus"]) <= {"TRB", "TRA"}
        bad = df.filter(pl.col("productive") == "F")
        assert bad["junction_aa"].str.contains(r"[*_]").all()
        good = df.filter(pl.col("productive") == "T")
        assert good["junction_aa"].str.contains(r"^C[A-Z]+[FVW]$").all()
        tra = df.filter(pl.col("locus") == "TRA")
        assert tra["v_call"].str.starts_with("TRAV").all()
        assert tra["j_call"].str.starts_with("TRAJ").all()
        n_rows, n_bad, n_tra = n_rows + df.height, n_bad + bad.height, n_tra + tra.height
    assert 0.003 < n_bad / n_rows < 0.04 and 0 < n_tra / n_rows < 0.02
    records = list(airr.read_rearrangement(str(cohort.files[0]), validate=True))
    assert len(records) == pl.read_csv(cohort.files[0], separator="\t").height


def test_truth_table_matches_design(cohort):
    truth = pl.read_csv(cohort.truth, separator="\t")
    assert truth.columns[:5] == ["patient", "junction_aa", "v_gene", "j_gene", "category"]
    assert truth.select(KEY).n_unique() == truth.height
    assert not truth["v_gene"].str.contains(r"\*").any()
    per = truth.group_by("patient", "category").len()
    for cat, n in zip(CATEGORIES, SMALL["n_planted"], strict=True):
        assert per.filter(pl.col("category") == cat)["len"].to_list() == [n, n]
    new = truth.filter(pl.col("category") == "new_expanded_tumor")
    assert (new["blood_fold"] >= 10).all() and (new["blood_baseline_freq"] <= 1e-4).all()
    assert (new["tumor_post_freq"] > new["tumor_pre_freq"]).all()


def test_planted_clones_show_up_where_planted(cohort, counts):
    truth = pl.read_csv(cohort.truth, separator="\t").select(*KEY, "category")
    seen = truth.join(counts, on=KEY, how="left")

    def mean_count(category: str, compartment: str, when: str) -> float:
        day = pl.col("day") <= 0 if when == "pre" else pl.col("day") > 0
        rows = seen.filter(pl.col("category") == category, pl.col("compartment") == compartment)
        per_sample = rows.filter(day)["count"].sum()
        n_samples = rows.filter(day).select("day", "replicate").n_unique()
        n_clones = truth.filter(pl.col("category") == category).height
        return per_sample / max(n_samples, 1) / n_clones

    # newly expanded + tumour-enriched: ~0 at baseline, clearly up after infusion
    assert mean_count("new_expanded_tumor", "blood", "pre") < 1.0
    assert mean_count("new_expanded_tumor", "blood", "post") > 5.0
    assert mean_count("new_expanded_tumor", "tumor", "post") > 3 * max(
        mean_count("new_expanded_tumor", "tumor", "pre"), 0.3
    )
    assert mean_count("blood_only", "blood", "post") > 5.0
    assert mean_count("tumor_only", "tumor", "post") > 3 * max(mean_count("tumor_only", "tumor", "pre"), 0.3)


def test_null_clones_keep_their_proportions():
    pt = _simulate_patient(
        "P01",
        0,
        seed=1,
        n_clones=1_000,
        post_days=(14, 28),
        tumor_days=(-7, 28),
        n_planted=(5, 3, 2),
        exponent=2.2,
    )
    planted = (pt.clones.with_row_index().join(pt.truth, on=["junction_aa", "v_gene", "j_gene"]))["index"].to_numpy()
    null = np.ones(pt.clones.height, dtype=bool)
    null[planted] = False
    for compartment, days in (("blood", (0, 14, 28)), ("tumor", (-7, 28))):
        ref = pt.freqs[compartment, days[0]]
        for day in days:
            f = pt.freqs[compartment, day]
            assert f.sum() == pytest.approx(1.0)
            ratio = f[null & (ref > 0)] / ref[null & (ref > 0)]
            assert np.allclose(ratio, ratio[0])  # one compositional factor for all nulls
            assert 0.8 < ratio[0] <= 1.0 + 1e-9 or compartment == "tumor"


def test_technical_replicates_differ_but_correlate(counts):
    base = counts.filter(pl.col("compartment") == "blood", pl.col("day") == 0)
    wide = base.pivot(on="replicate", index=KEY, values="count").fill_null(0)
    r1, r2 = wide["1"].to_numpy(), wide["2"].to_numpy()
    assert not np.array_equal(r1, r2)
    assert 0.3 < np.corrcoef(np.log1p(r1), np.log1p(r2))[0, 1] < 0.99
    big = r1 >= 20  # large clones are seen again, at a similar size
    assert big.sum() >= 20
    assert (r2[big] > 0).mean() > 0.95
    assert np.median(np.abs(np.log(r2[big] + 0.5) - np.log(r1[big]))) < 1.0


def _replicate_log_ratio_excess(dispersion: float) -> float:
    """Var of log(c1/c2) over large clones / its Poisson expectation mean(1/c1 + 1/c2)."""
    rng = np.random.default_rng(0)
    freq = np.full(400, 1.0)
    freq /= freq.sum()
    a = library_counts(freq, depth=200_000, dispersion=dispersion, rng=rng)
    b = library_counts(freq, depth=200_000, dispersion=dispersion, rng=rng)
    return float(np.var(np.log(a / b)) / np.mean(1 / a + 1 / b))


def test_noise_is_overdispersed_only_when_asked():
    assert _replicate_log_ratio_excess(0.3) > 20  # trigamma(1/0.3) * 2 ≈ 0.7 vs ≈ 0.008
    assert 0.7 < _replicate_log_ratio_excess(0.0) < 1.4


def test_cohort_replicates_are_overdispersed(counts):
    base = counts.filter(pl.col("compartment") == "blood", pl.col("day") == 0)
    wide = base.pivot(on="replicate", index=KEY, values="count").fill_null(0)
    big = wide.filter(pl.col("1") >= 20, pl.col("2") >= 20)
    a, b = big["1"].to_numpy().astype(float), big["2"].to_numpy().astype(float)
    assert len(a) >= 10
    assert np.var(np.log(a / b)) > 3 * np.mean(1 / a + 1 / b)


def test_library_counts_depth_jitter_and_zeros():
    freq = np.array([0.5, 0.0, 0.25, 0.25])
    depths = []
    for s in range(30):
        c = library_counts(freq, depth=1_000, dispersion=0.3, rng=np.random.default_rng(s))
        assert c[1] == 0
        depths.append(c.sum())
    assert 800 <= min(depths) < max(depths) <= 1_200


def test_olga_is_seeded_distinct_and_leaves_global_rng_alone():
    np.random.seed(11)
    before = np.random.get_state()[1].copy()
    a = generate_clonotypes(300, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)
    assert a.equals(generate_clonotypes(300, seed=5))
    assert not a.equals(generate_clonotypes(300, seed=6))
    assert a.select("junction_aa", "v_gene", "j_gene").n_unique() == 300
    assert a["v_call"].str.contains(r"^TRBV[0-9-]+\*\d\d$").all()
    assert (a["v_gene"] == a["v_call"].str.replace(r"\*.*", "")).all()
    assert all(translate(nt) == aa for nt, aa in zip(a["junction"], a["junction_aa"], strict=True))
    tra = generate_clonotypes(20, seed=1, chain="TRA")
    assert tra["v_call"].str.starts_with("TRAV").all()


def test_make_nonproductive_breaks_the_frame_or_adds_a_stop():
    clones = generate_clonotypes(100, seed=2)
    broken = make_nonproductive(clones, rng=np.random.default_rng(0))
    assert broken.height == 100
    assert broken["junction_aa"].str.contains(r"[*_]").all()
    out_of_frame = broken["junction"].str.len_chars() % 3 != 0
    assert 20 < out_of_frame.sum() < 80
    assert translate("TGTGCC") == "CA" and translate("TGTGCCA") == "CA_"


def test_product_patient_gets_a_product_and_the_rest_is_unchanged(cohort, tmp_path):
    assert cohort.product_truth is None and not (cohort.out_dir / "product_truth.tsv").exists()
    out = simulate_cohort(
        tmp_path, seed=7, product_patients=(0,), n_product_clones=60, product_half_life_days=10.0, **SMALL
    )
    sheet = pl.read_csv(out.sheet, separator="\t")
    product = sheet.filter(pl.col("compartment") == "product")
    assert product.select("patient", "sample", "day", "replicate").rows() == [("P01", "P01_product_d0_r1", 0, 1)]
    before, after = _bytes(cohort.out_dir), _bytes(out.out_dir)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"samples.tsv", "P01/P01_blood_d14_r1.tsv.gz", "P01/P01_blood_d28_r1.tsv.gz"}
    truth = pl.read_csv(out.product_truth, separator="\t")
    assert tuple(truth.columns) == PRODUCT_TRUTH_COLUMNS and truth.height == 60
    assert set(truth["category"]) == {"product"} and set(truth["half_life_days"]) == {10.0}
    assert truth["product_freq"].sum() == pytest.approx(1.0)
    assert sorted(truth["product_rank"]) == list(range(1, 61))
    assert truth.join(pl.read_csv(out.truth, separator="\t"), on=KEY, how="semi").height == 0

    def seen(sample: str) -> pl.DataFrame:
        df = pl.read_csv(out.out_dir / f"P01/{sample}.tsv.gz", separator="\t")
        return df.select(
            "junction_aa",
            v_gene=pl.col("v_call").str.split(",").list.first().str.replace(r"\*.*", ""),
            j_gene=pl.col("j_call").str.replace(r"\*.*", ""),
            count=pl.col("duplicate_count"),
        )

    key = KEY[1:]
    product_file = seen("P01_product_d0_r1")
    assert product_file.join(truth, on=key, how="anti").height == 0  # only product clones in the product
    assert product_file.join(truth, on=key, how="semi").height >= 55
    for sample in ("P01_blood_d0_r1", "P01_blood_d0_r2", "P01_tumor_d-7_r1", "P01_tumor_d56_r1"):
        assert seen(sample).join(truth, on=key, how="semi").height == 0  # absent before and in tumour
    share = {
        d: seen(f"P01_blood_d{d}_r1").join(truth, on=key, how="semi")["count"].sum()
        / seen(f"P01_blood_d{d}_r1")["count"].sum()
        for d in (14, 28)
    }
    assert share[14] == pytest.approx(0.1 * 2**-1.4, rel=0.3) and share[28] < share[14] / 2


def test_product_true_frequencies_decay_exactly():
    pt = _simulate_patient(
        "P01", 0, seed=1, n_clones=1_000, post_days=(14, 28), tumor_days=(-7, 28), n_planted=(5, 3, 2), exponent=2.2
    )
    with_product, truth = _add_product(
        pt, "P01", 0, seed=1, n_product=40, post_days=(14, 28), blood_share=0.2, half_life=14.0, exponent=2.2
    )
    idx = np.arange(pt.clones.height, with_product.clones.height)
    pi = truth["product_freq"].to_numpy()
    assert with_product.clones.height == pt.clones.height + 40
    for day in (14, 28):
        f = with_product.freqs["blood", day]
        assert f.sum() == pytest.approx(1.0)
        assert np.allclose(f[idx], 0.2 * pi * 2.0 ** (-day / 14.0), rtol=1e-12)
        planted = pt.blood_planted
        assert np.allclose(f[planted], pt.freqs["blood", day][planted], rtol=1e-12)  # planted stay absolute
    for key in (("blood", 0), ("tumor", -7), ("tumor", 28)):
        assert np.array_equal(with_product.freqs[key][: pt.clones.height], pt.freqs[key])
        assert not with_product.freqs[key][idx].any()
    assert np.array_equal(with_product.freqs["product", 0][idx], pi)


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="dispersion"):
        simulate_cohort(tmp_path, dispersion=-1)
    with pytest.raises(ValueError, match="post_days"):
        simulate_cohort(tmp_path, post_days=(0, 14))
    with pytest.raises(ValueError, match="n_planted"):
        simulate_cohort(tmp_path, n_planted=(1, 2))
    with pytest.raises(ValueError, match="indices"):
        simulate_cohort(tmp_path, n_patients=2, replicate_patients=(2,))
    with pytest.raises(ValueError, match="indices"):
        simulate_cohort(tmp_path, n_patients=2, product_patients=(5,))
    with pytest.raises(ValueError, match="product_blood_share"):
        simulate_cohort(tmp_path, n_patients=2, product_patients=(0,), product_blood_share=0.6)
    with pytest.raises(ValueError, match="product_half_life_days"):
        simulate_cohort(tmp_path, n_patients=2, product_patients=(0,), product_half_life_days=0)


def test_demo_is_small(tmp_path):
    demo = simulate_demo(tmp_path)
    assert demo.total_bytes < 3_600_000
    sheet = pl.read_csv(demo.sheet, separator="\t")
    assert sheet["patient"].n_unique() == 4 and len(demo.files) == sheet.height


def test_bundled_demo_is_the_simulators_output(tmp_path):
    """config/demo is exactly `tcrtrack simulate --demo --seed 1` (nothing hand-edited, nothing stale)."""
    root = Path(__file__).resolve().parents[1]
    demo = simulate_demo(tmp_path / "demo", seed=1, sheet=tmp_path / "samples.tsv")
    assert (tmp_path / "samples.tsv").read_bytes() == (root / "config" / "samples.tsv").read_bytes()
    for path in (*demo.files, demo.truth):
        bundled = root / "config" / "demo" / path.relative_to(tmp_path / "demo")
        assert path.read_bytes() == bundled.read_bytes(), bundled


def test_truth_frequencies_are_returned_and_match_the_truth_tables(tmp_path):
    cohort = simulate_cohort(
        tmp_path, **{**SMALL, "product_patients": (1,), "n_product_clones": 30}, return_truth_frequencies=True
    )
    tf = cohort.truth_frequencies
    truth = pl.read_csv(cohort.truth, separator="\t")
    planted = tf.filter(pl.col("category").is_in(CATEGORIES))
    assert planted.sort(KEY).select(KEY, "category").equals(truth.sort(KEY).select(KEY, "category"))
    assert tf.filter(pl.col("category") == "product").height == 30
    assert (
        tf.filter(pl.col("patient") == "P01")["true_product_d0"].null_count()
        == tf.filter(pl.col("patient") == "P01").height
    )  # no product for P01
    for column in (c for c in tf.columns if c.startswith("true_")):
        sums = tf.group_by("patient").agg(pl.col(column).sum()).drop_nulls()[column]
        assert np.allclose(sums.filter(sums > 0), 1.0)
    baseline = planted.join(truth, on=KEY)
    assert np.allclose(baseline["true_blood_d0"], baseline["blood_baseline_freq"].fill_null(0.0))
    assert simulate_cohort(tmp_path / "again", **SMALL).truth_frequencies is None


def test_progress_is_injected_or_counted_without_click(tmp_path, capsys):
    import contextlib
    import subprocess
    import sys

    steps: list[int] = []

    class Bar:
        def update(self, n: int) -> None:
            steps.append(n)

    cohort = simulate_cohort(
        tmp_path / "a",
        **{**SMALL, "n_patients": 1, "replicate_patients": (0,)},
        progress=lambda n: contextlib.nullcontext(Bar()),
    )
    assert sum(steps) == 1 + len(cohort.files)
    simulate_cohort(tmp_path / "b", **{**SMALL, "n_patients": 1, "replicate_patients": (0,)}, progress=True)
    assert f"{sum(steps)}/{sum(steps)}" in capsys.readouterr().err
    code = "import sys, tcrtrack.simulate; assert 'click' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
