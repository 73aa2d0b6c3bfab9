"""The noise-model figure for each model's table, and panel B's spread check against hand computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tcrtrack.io import read_tsv, write_tsv
from tcrtrack.patient import CallSettings, analyse_patient
from tcrtrack.plots.noise import noise_diagnostic
from tcrtrack.plots.noise_fits import null_fits, null_sd_from_rows, resolve_timepoint, robust_sd, spread_by_bin
from tcrtrack.plots.style import save_figure
from tcrtrack.schema import CLONOTYPE_SCHEMA

SAMPLES = [
    ("bm14", "blood", -14, 1),
    ("b0r1", "blood", 0, 1),
    ("b0r2", "blood", 0, 2),
    ("b14", "blood", 14, 1),
    ("b28", "blood", 28, 1),
    ("t0", "tumor", -7, 1),
    ("t28", "tumor", 28, 1),
]
MODELS = ("overdispersed", "betabinomial", "fisher")


def table(counts: np.ndarray) -> pl.DataFrame:
    total = int(counts.sum())
    rows = [
        {
            "clone_id": f"CASS{i:05d}F|TRBV5-1|TRBJ2-7",
            "junction_aa": f"CASS{i:05d}F",
            "v_gene": "TRBV5-1",
            "j_gene": "TRBJ2-7",
            "junction": None,
            "count": int(n),
            "frequency": n / total,
            "v_ambiguous": False,
            "j_ambiguous": False,
        }
        for i, n in enumerate(counts)
        if n > 0
    ]
    return pl.DataFrame(rows, schema=CLONOTYPE_SCHEMA)


def sheet() -> pl.DataFrame:
    return pl.DataFrame(
        SAMPLES,
        schema={"sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64, "replicate": pl.Int64},
        orient="row",
    ).with_columns(patient=pl.lit("P1"))


@pytest.fixture(scope="module")
def patient():
    """Poisson-log-normal libraries (log-normal factor per library and clone): two pre-infusion draws (day 0
    in two replicates), two post-infusion draws with 30 clones 20-fold up, two biopsies."""
    rng = np.random.default_rng(5)
    k = 1500
    freq = rng.lognormal(0.0, 1.5, k)

    def draw(depth: int, sigma: float, up: bool = False) -> pl.DataFrame:
        lam = freq * np.exp(sigma * rng.standard_normal(k)) * np.where(up & (np.arange(k) < 30), 20.0, 1.0)
        return table(rng.poisson(lam / lam.sum() * depth))

    tables = {
        "bm14": draw(20_000, 0.4),
        "b0r1": draw(25_000, 0.2),
        "b0r2": draw(20_000, 0.2),
        "b14": draw(30_000, 0.4, up=True),
        "b28": draw(15_000, 0.4, up=True),
        "t0": draw(5_000, 0.7),
        "t28": draw(6_000, 0.7),
    }
    samples = sheet()
    return samples, {model: analyse_patient(samples, tables, settings=CallSettings(model=model)) for model in MODELS}


def non_blank_png(path) -> bool:
    import matplotlib.image

    return matplotlib.image.imread(str(path)).std() > 0.02


def texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
    for legend in fig.legends:
        parts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(parts)


@pytest.mark.parametrize("model", MODELS)
def test_figure_renders_for_each_models_table(tmp_path, patient, model):
    samples, calls = patient
    noise = tmp_path / "noise.tsv"  # through the file, as the workflow reads it (empty notes become NA)
    write_tsv(calls[model].noise.select(pl.lit("P1").alias("patient"), pl.all()), noise)
    fig = noise_diagnostic(read_tsv(noise), calls[model].clones, samples, patient="P1")
    words = texts(fig)
    assert words.startswith("P1 ·")
    if model == "overdispersed":
        assert "A · fitted noise" in words and "B · check" in words
        assert "blood day 14 vs baseline (days −14, 0)" in words and "tumour day 28 vs day −7" in words
        assert "replicates b0r1 vs b0r2" in words and "draws bm14 vs b0r1" in words
        assert "lower-tail check" in words
    elif model == "fisher":
        assert "no noise model is fitted" in words and "Poisson sampling only" in words
    else:
        assert "overdispersion ρ" in words
    save_figure(fig, tmp_path / f"{model}.png")
    assert non_blank_png(tmp_path / f"{model}.png")


def test_panel_b_is_drawn_for_every_comparison(patient):
    samples, calls = patient
    fits = null_fits(calls["overdispersed"].noise, calls["overdispersed"].clones, samples)
    by_name = {fit.comparison: fit for fit in fits}
    assert {f.floor for f in fits} == {True, False}
    for name, fit in by_name.items():
        assert fit.floor == name.startswith(("replicates", "draws"))
        assert fit.floor or fit.spread.height >= 2, name
    # the pooled baseline is every pre-infusion sample
    blood = by_name["blood_d14 vs blood baseline (days -14, 0 pooled)"]
    assert blood.spread["n_clones"].sum() > 500
    # where counts are large the model's expected spread is near the observed one (the model fits)
    big = blood.spread.filter(pl.col("median_min_count") >= 10)
    assert big.height >= 2
    ratio = (big["observed"] / big["expected"]).to_numpy()
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_spread_by_bin_equals_a_hand_computation():
    a = np.array([10, 20, 5, 40, 0, 3, 8, 1])
    b = np.array([12, 15, 9, 30, 3, 0, 20, 2])
    n_a, n_b = 1000.0, 2000.0

    def sd_null(f):
        return np.full(np.shape(f), 0.3)

    table = spread_by_bin(a, b, n_a=n_a, n_b=n_b, null_sd=sd_null, bin_width=10.0, min_clones=1)
    # independent: clones seen in both samples, log((b/N_b)/(a/N_a)), MAD about the median
    both = (a > 0) & (b > 0)
    y = np.log(b[both] / n_b) - np.log(a[both] / n_a)
    mad = np.median(np.abs(y - np.median(y)))
    expected = np.median(np.sqrt(0.09 + 1.0 / a[both] + 1.0 / b[both]))
    assert table.height == 1 and table["n_clones"][0] == 6
    assert table["observed"][0] == pytest.approx(1.4826 * mad, rel=1e-12)
    assert table["expected"][0] == pytest.approx(expected, rel=1e-12)
    assert table["poisson"][0] == pytest.approx(np.median(np.sqrt(1.0 / a[both] + 1.0 / b[both])), rel=1e-12)
    assert table["log10_freq"][0] == pytest.approx(np.mean(np.log10((a[both] + b[both]) / 3000.0)))
    # narrower bins split the clones by abundance: log10((a+b)/3000) floors at -3 and -2 with width 1
    split = spread_by_bin(a, b, n_a=n_a, n_b=n_b, null_sd=None, bin_width=1.0, min_clones=1)
    f = (a[both] + b[both]) / 3000.0
    assert split["n_clones"].to_list() == [int((f < 0.01).sum()), int((f >= 0.01).sum())]
    low = both & ((a + b) / 3000.0 < 0.01)
    y_low = np.log(b[low] / n_b) - np.log(a[low] / n_a)
    assert split["observed"][0] == pytest.approx(1.4826 * np.median(np.abs(y_low - np.median(y_low))))
    assert split["expected"][0] == pytest.approx(np.median(np.sqrt(1.0 / a[low] + 1.0 / b[low])))


def test_spread_by_bin_recovers_simulated_noise():
    rng = np.random.default_rng(2)
    k, sigma = 40_000, 0.3  # each library multiplies a clone by exp(sigma z): null sd sqrt(2) sigma
    lam = np.exp(rng.uniform(np.log(5), np.log(2000), k))
    a = rng.poisson(lam * np.exp(sigma * rng.standard_normal(k)))
    b = rng.poisson(2 * lam * np.exp(sigma * rng.standard_normal(k)))
    table = spread_by_bin(
        a,
        b,
        n_a=float(a.sum()),
        n_b=float(b.sum()),
        null_sd=lambda f: np.full(np.shape(f), np.sqrt(2) * sigma),
        min_clones=500,
    )
    big = table.filter(pl.col("median_min_count") >= 20)
    assert big.height >= 3
    assert np.allclose(big["observed"].to_numpy() / big["expected"].to_numpy(), 1.0, atol=0.08)
    assert (big["observed"].to_numpy() > 1.3 * big["poisson"].to_numpy()).all()  # Poisson alone is too narrow


def test_spread_by_bin_odd_inputs():
    empty = spread_by_bin([], [], n_a=0, n_b=0, null_sd=None)
    assert empty.height == 0 and "observed" in empty.columns
    assert spread_by_bin([0, 3], [2, 0], n_a=10, n_b=10, null_sd=None, min_clones=1).height == 0
    assert spread_by_bin([1, 2], [1, 2], n_a=10, n_b=10, null_sd=None, min_clones=20).height == 0
    assert np.isnan(robust_sd([]))


def test_null_sd_interpolates_on_the_log_scale():
    rows = pl.DataFrame({"log10_freq": [-6.0, -4.0], "sd": [1.0, 0.25]})
    sd = null_sd_from_rows(rows)
    assert sd(np.array([1e-5]))[0] == pytest.approx(0.5)  # geometric mean: sd is a power of f
    assert sd(np.array([1e-9, 0.5])) == pytest.approx([1.0, 0.25])  # held beyond the grid
    zeros = null_sd_from_rows(pl.DataFrame({"log10_freq": [-6.0, -4.0], "sd": [0.0, 0.0]}))
    assert zeros(np.array([1e-5]))[0] == 0.0


def test_resolve_timepoint_pools_the_baseline():
    samples = sheet()
    pooled = resolve_timepoint(samples, "blood baseline (days -14, 0 pooled)")
    assert pooled.samples == ("bm14", "b0r1", "b0r2") and pooled.days == (-14, 0)
    assert resolve_timepoint(samples, "blood_d0").samples == ("b0r1", "b0r2")
    assert resolve_timepoint(samples, "tumor_d-7").samples == ("t0",)
    assert resolve_timepoint(samples, "blood_d99") is None and resolve_timepoint(samples, "nonsense") is None


def test_no_comparisons_or_missing_samples_draw_a_message(tmp_path, patient):
    samples, calls = patient
    clones = calls["overdispersed"].clones
    for noise in (
        pl.DataFrame(),
        pl.DataFrame(schema={"comparison": pl.Utf8}),
        pl.DataFrame(schema={"comparison": pl.Utf8, "source": pl.Utf8, "sd": pl.Float64}),
    ):
        fig = noise_diagnostic(noise, clones, samples, patient="P1")
        assert "no comparisons tested" in texts(fig)
        save_figure(fig, tmp_path / "empty.png")
    # a sheet without the compared samples: the fits are drawn, the check says there is none
    other = samples.with_columns(day=pl.col("day") + 1000)
    fig = noise_diagnostic(calls["overdispersed"].noise, clones, other, patient="P1")
    assert "no check" in texts(fig)
    save_figure(fig, tmp_path / "nocheck.png")
    assert non_blank_png(tmp_path / "nocheck.png")


def test_a_borrowed_fit_is_marked_and_its_check_attributed(tmp_path):
    """Biopsies of 40 templates share too few clones to fit: the tumour comparison borrows a blood fit."""
    rng = np.random.default_rng(7)
    freq = rng.lognormal(0.0, 1.5, 1500)

    def draw(depth: int) -> pl.DataFrame:
        lam = freq * np.exp(0.4 * rng.standard_normal(freq.size))
        return table(rng.poisson(lam / lam.sum() * depth))

    depths = {"bm14": 20_000, "b0r1": 25_000, "b0r2": 20_000, "b14": 30_000, "b28": 15_000, "t0": 40, "t28": 40}
    samples = sheet()
    calls = analyse_patient(samples, {name: draw(d) for name, d in depths.items()})
    tumour = calls.noise.filter(pl.col("comparison") == "tumor_d28 vs tumor_d-7")
    assert tumour["source"][0] == "fallback"
    fig = noise_diagnostic(calls.noise, calls.clones, samples, patient="P1")
    words = texts(fig)
    assert (
        "tumour day 28 vs day −7 (too few shared clones: shape borrowed) · lower-tail check of the borrowed fit"
        in words
    )
    assert "note: only" in words
    save_figure(fig, tmp_path / "borrowed.png")
    assert non_blank_png(tmp_path / "borrowed.png")


def test_the_check_leaves_out_product_clones_and_uses_full_depths():
    samples = pl.DataFrame(
        {"sample": ["b0", "b14"], "compartment": ["blood", "blood"], "day": [0, 14], "replicate": [1, 1]}
    )
    a, b = np.array([10, 20, 30, 5]), np.array([12, 25, 300, 6])
    product = np.array([False, False, True, False])
    clones = pl.DataFrame(
        {"count_b0": a, "count_b14": b, "freq_b0": a / 100.0, "freq_b14": b / b.sum(), "in_product": product}
    )  # b0 a truncated export of 100 templates
    noise = pl.DataFrame(
        {
            "comparison": ["blood_d14 vs blood_d0"] * 2,
            "source": ["bulk"] * 2,
            "log10_freq": [-6.0, -1.0],
            "sd": [0.3, 0.3],
            "lower_tail_005": [0.05] * 2,
            "note": [None, None],
        }
    )
    (fit,) = null_fits(noise, clones, samples, bin_width=10.0, min_clones=1)
    keep = ~product
    n_a, n_b = 100 - 30, b.sum() - 300
    y = np.log((b[keep] / n_b) / (a[keep] / n_a))
    assert fit.spread["n_clones"][0] == 3
    assert fit.spread["observed"][0] == pytest.approx(1.4826 * np.median(np.abs(y - np.median(y))))
    assert fit.spread["log10_freq"][0] == pytest.approx(np.mean(np.log10((a + b)[keep] / (n_a + n_b))))
    assert fit.spread["expected"][0] == pytest.approx(np.median(np.sqrt(0.09 + 1 / a[keep] + 1 / b[keep])))
