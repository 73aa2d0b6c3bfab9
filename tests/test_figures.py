"""Figures on a small hand-made patient: the data behind each figure, the files, edge cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tcrtrack.io import read_tsv, write_tsv
from tcrtrack.noise import NoiseModel
from tcrtrack.overlap import patient_overlap
from tcrtrack.patient import CallSettings, analyse_patient
from tcrtrack.pipeline import figures_cohort_step, figures_step
from tcrtrack.plots import COHORT_FIGURES, PATIENT_FIGURES
from tcrtrack.plots.cohort import NO_GROUP, _pairs, patient_groups
from tcrtrack.plots.expansion import expansion_scatter, fold_change_bound, scatter_panels
from tcrtrack.plots.noise import noise_diagnostic
from tcrtrack.plots.noise_betabinomial import dispersion_by_bin, model_from_rows
from tcrtrack.plots.patient import overlap_heatmap
from tcrtrack.plots.style import save_figure
from tcrtrack.plots.tracking import clone_tracking, tracked_clones
from tcrtrack.schema import CLONOTYPE_SCHEMA

# hand-made samples of ~10k templates: "new" needs a baseline bound above the default 1e-5
SETTINGS = CallSettings(model="overdispersed", new_max_frequency=1e-3)
SAMPLES = [
    ("b0r1", "blood", 0, 1),
    ("b0r2", "blood", 0, 2),
    ("b14", "blood", 14, 1),
    ("b28", "blood", 28, 1),
    ("t0", "tumor", -7, 1),
    ("t28", "tumor", 28, 1),
]


def table(counts: dict[str, int]) -> pl.DataFrame:
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


def sheet(patient: str = "P1", response: str = "responder") -> pl.DataFrame:
    return pl.DataFrame(
        SAMPLES,
        schema={"sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64, "replicate": pl.Int64},
        orient="row",
    ).with_columns(patient=pl.lit(patient), response=pl.lit(response))


@pytest.fixture(scope="module")
def patient():
    rng = np.random.default_rng(0)
    background = {f"CASSBG{i:04d}F": int(c) for i, c in enumerate(rng.integers(2, 60, 300))}
    tables = {
        "b0r1": table({**background, "CASSOLDF": 40}),
        "b0r2": table({**background, "CASSOLDF": 35}),
        "b14": table({**background, "CASSNEWF": 80, "CASSOLDF": 38, "CASSBLDF": 60}),
        "b28": table({**background, "CASSNEWF": 200, "CASSOLDF": 36, "CASSBLDF": 90}),
        "t0": table({**background, "CASSTUMF": 2}),
        "t28": table({**background, "CASSNEWF": 30, "CASSTUMF": 60}),
    }
    samples = sheet()
    calls = analyse_patient(samples, tables, settings=SETTINGS)
    return samples, tables, calls


def non_blank_png(path) -> bool:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    return pixels.std() > 0.02


def test_scatter_panels_classify_flagged_expanded_and_new(patient):
    samples, _, calls = patient
    baseline, panels = scatter_panels(calls.clones, samples, settings=SETTINGS)
    assert baseline.day == 0 and baseline.samples == ("b0r1", "b0r2")
    assert [p.day for p in panels] == [14, 28]
    d28 = panels[1]
    category = dict(d28.data.select("junction_aa", "category").iter_rows())
    assert category["CASSNEWF"] == "flagged"
    assert category["CASSBLDF"] == "expanded_new"  # new and expanded in blood, never in the tumour
    assert category["CASSOLDF"] == "other"
    assert "CASSTUMF" not in category  # absent at baseline and at day 28: not drawn
    assert d28.n_expanded == int(calls.clones["blood_d28_significant"].fill_null(False).sum())
    assert d28.depth_baseline == sum(
        int(t) for t in calls.clones.select(pl.col("count_b0r1") + pl.col("count_b0r2")).sum().row(0)
    )


def test_fold_change_bound_is_where_log2fc_equals_the_threshold():
    # a = 10, b = 21 of 1000 each, pseudocount 1: log2(((21 + 1)/1000) / ((10 + 1)/1000)) = 1 exactly
    bound = fold_change_bound(np.array([0.010]), min_log2fc=1, pseudocount=1, depth_baseline=1000, depth_later=1000)
    assert bound[0] == pytest.approx(0.021)
    assert fold_change_bound(np.zeros(1), min_log2fc=1, pseudocount=1, depth_baseline=1000, depth_later=1000)[
        0
    ] == pytest.approx(0.001)


def test_tracked_clones_put_flagged_first(patient):
    _, _, calls = patient
    picked = tracked_clones(calls.clones, max_flagged=10, n_top_expanded=5)
    assert picked["junction_aa"][0] == "CASSNEWF" and picked["kind"][0] == "flagged"
    assert "CASSBLDF" in picked.filter(pl.col("kind") == "expanded")["junction_aa"].to_list()


def test_dispersion_index_hand_worked():
    # a = (2, 0, 4), b = (2, 4, 0): p0 = 1/2, n = 4 each; residuals 0, 4, 4 over 3 * 4 * 1/4 -> 8/3
    flat = dispersion_by_bin([2, 0, 4], [2, 4, 0], model=NoiseModel(source="poisson"), min_clones=1)
    assert flat["observed"][0] == pytest.approx(8 / 3) and flat["expected"][0] == pytest.approx(1.0)
    rho = NoiseModel(source="bulk", log10_freq=(-1.0,), rho_bins=(0.1,), n_clones=(3,), p_null=(0.5,))
    assert dispersion_by_bin([2, 0, 4], [2, 4, 0], model=rho, min_clones=1)["expected"][0] == pytest.approx(1.3)


def test_dispersion_index_matches_simulated_binomial_and_beta_binomial():
    rng = np.random.default_rng(1)
    n = rng.integers(2, 400, 20_000)
    binomial_b = rng.binomial(n, 0.5)
    flat = dispersion_by_bin(n - binomial_b, binomial_b, model=NoiseModel(source="poisson"), min_clones=500)
    assert np.allclose(flat["observed"].to_numpy(), 1.0, atol=0.15)
    rho = 0.02
    model = NoiseModel(source="bulk", log10_freq=(-6.0, -1.0), rho_bins=(rho, rho), n_clones=(1, 1), p_null=(0.5, 0.5))
    alpha = beta = 0.5 * (1 / rho - 1)
    bb = stats.betabinom.rvs(n, alpha, beta, random_state=2)
    over = dispersion_by_bin(n - bb, bb, model=model, min_clones=500)
    assert np.allclose(over["observed"].to_numpy() / over["expected"].to_numpy(), 1.0, atol=0.2)
    assert (over["expected"].to_numpy() > 1.5).any()


def test_noise_model_rows_round_trip(patient):
    samples, tables, _ = patient
    calls = analyse_patient(samples, tables, settings=CallSettings(model="betabinomial"))  # the rho table
    comparison = calls.noise["comparison"][0]
    rows = calls.noise.filter(pl.col("comparison") == comparison)
    model = model_from_rows(rows)
    assert model.source == rows["source"][0]
    assert model.rho_bins == tuple(rows["rho"])


def test_patient_figure_step_writes_every_figure(tmp_path, patient, monkeypatch):
    import tcrtrack.plots

    monkeypatch.setattr(tcrtrack.plots, "WRITE_PDF", True)  # as run_step sets it when the rule declares PDFs
    samples, tables, calls = patient
    sheet_path = tmp_path / "samples.tsv"
    write_tsv(samples.with_columns(path=pl.col("sample") + ".tsv"), sheet_path)
    clones = tmp_path / "clones.parquet"
    calls.clones.write_parquet(clones)
    noise = tmp_path / "noise.tsv"
    write_tsv(calls.noise, noise)
    overlap = tmp_path / "overlap.tsv"
    write_tsv(patient_overlap(samples, tables), overlap)
    from tcrtrack.diversity import sample_diversity

    diversity = []
    for name, frame in tables.items():
        path = tmp_path / f"div_{name}.parquet"
        sample_diversity(frame["count"].to_numpy(), depth=1000, n_iterations=2, seed=0).with_columns(
            sample=pl.lit(name)
        ).write_parquet(path)
        diversity.append(str(path))
    figures = {name: str(tmp_path / "figures" / f"{name}.png") for name in PATIENT_FIGURES}
    figures_step(
        patient="P1",
        clones=str(clones),
        noise=str(noise),
        overlap=str(overlap),
        diversity=diversity,
        sheet=str(sheet_path),
        settings=SETTINGS.__dict__,
        figures=figures,
    )
    for png in figures.values():
        assert non_blank_png(png), png
        pdf = tmp_path / "figures" / png.replace(".png", ".pdf").split("/")[-1]
        assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="unknown figures"):
        figures_step(
            patient="P1",
            clones=str(clones),
            noise=str(noise),
            overlap=str(overlap),
            diversity=diversity,
            sheet=str(sheet_path),
            settings=SETTINGS.__dict__,
            figures={"volcano": str(tmp_path / "v.png")},
        )


def test_titles_name_the_patient_and_the_days(patient):
    samples, tables, calls = patient
    scatter = expansion_scatter(calls.clones, samples, patient="P1", settings=SETTINGS)
    assert scatter._suptitle.get_text().startswith("P1 ·") and "day 0" in scatter._suptitle.get_text()
    assert [ax.get_title().split("\n")[0] for ax in scatter.axes if ax.get_visible()][:2] == [
        "day 14 vs baseline (day 0)",
        "day 28 vs baseline (day 0)",
    ]
    heatmap = overlap_heatmap(patient_overlap(samples, tables), samples, patient="P1")
    assert "blood days 0, 14, 28 · tumour days −7, 28" in heatmap._suptitle.get_text()
    assert "technical replicates" in heatmap._suptitle.get_text()


def test_figures_are_byte_identical_across_saves(tmp_path, patient):
    samples, _, calls = patient
    first = save_figure(
        expansion_scatter(calls.clones, samples, patient="P1", settings=SETTINGS), tmp_path / "a.png", pdf=True
    )
    second = save_figure(
        expansion_scatter(calls.clones, samples, patient="P1", settings=SETTINGS), tmp_path / "b.png", pdf=True
    )
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes()


def test_many_clones_are_drawn_as_density(tmp_path, patient, monkeypatch):
    from tcrtrack.plots import expansion

    samples, _, calls = patient
    monkeypatch.setattr(expansion, "MAX_POINTS", 10)
    fig = expansion_scatter(calls.clones, samples, patient="P1", settings=SETTINGS)
    assert any(type(c).__name__ == "PolyCollection" for ax in fig.axes for c in ax.collections)  # hexbin
    assert "shade = number of clones" in " ".join(t.get_text() for t in fig.legends[0].get_texts())
    save_figure(fig, tmp_path / "dense.png")
    assert non_blank_png(tmp_path / "dense.png")


def test_edge_cases_draw_a_message_instead_of_failing(tmp_path, patient):
    samples, tables, calls = patient
    unflagged = calls.clones.with_columns(flagged=pl.lit(False), expanded_in_blood=pl.lit(False))
    save_figure(clone_tracking(unflagged, samples, patient="P1"), tmp_path / "none.png")
    tumour_only = samples.filter(pl.col("compartment") == "tumor")
    scatter = expansion_scatter(calls.clones, tumour_only, patient="P1", settings=SETTINGS)
    assert "not tested" in " ".join(t.get_text() for ax in scatter.axes for t in ax.texts)
    single = samples.filter(pl.col("sample") == "b14")
    save_figure(
        overlap_heatmap(patient_overlap(single, {"b14": tables["b14"]}), single, patient="P1"), tmp_path / "one.png"
    )
    save_figure(noise_diagnostic(pl.DataFrame(), calls.clones, samples, patient="P1"), tmp_path / "noise.png")
    assert non_blank_png(tmp_path / "none.png")


def test_groups_fall_back_to_one_group_without_the_column():
    samples = pl.concat([sheet("P1", "responder"), sheet("P2", "non-responder")])
    groups, note = patient_groups(samples, "response")
    assert groups == {"P1": "responder", "P2": "non-responder"} and note == "grouped by response"
    groups, note = patient_groups(samples, "arm")
    assert set(groups.values()) == {NO_GROUP} and "no column 'arm'" in note
    assert patient_groups(samples, None)[0] == {"P1": NO_GROUP, "P2": NO_GROUP}


def test_overlap_summary_pairs(patient):
    samples, tables, _ = patient
    overlap = patient_overlap(samples, tables).with_columns(patient=pl.lit("P1"))
    blood = _pairs(overlap, "blood", baseline_day=None)
    assert blood.filter(~pl.col("reference"))["day"].to_list() == [14, 28]
    assert blood.filter(pl.col("reference"))["day"].to_list() == [0]  # the replicate pair
    expected = overlap.filter((pl.col("sample_b") == "b14") & pl.col("sample_a").is_in(["b0r1", "b0r2"]))
    assert blood.filter(pl.col("day") == 14)["value"][0] == pytest.approx(expected["morisita_horn"].mean())
    tumour = _pairs(overlap, "tumor", baseline_day=None)
    assert tumour["day"].to_list() == [28]
    cross = _pairs(overlap, "blood_tumor", baseline_day=None)
    assert cross["day"].to_list() == [-7, 28]  # t0 (day -7) vs blood day 0; t28 vs blood day 28
    t28 = overlap.filter((pl.col("sample_a") == "b28") & (pl.col("sample_b") == "t28"))["morisita_horn"][0]
    assert cross.filter(pl.col("day") == 28)["value"][0] == pytest.approx(t28)


def test_cohort_figure_step(tmp_path, patient):
    samples, tables, calls = patient
    both = pl.concat([samples, sheet("P2", "non-responder").with_columns(pl.col("sample") + "_2")]).with_columns(
        path=pl.col("sample") + ".tsv"
    )
    write_tsv(both, tmp_path / "samples.tsv")
    from tcrtrack.diversity import sample_diversity

    diversity = pl.concat(
        [
            sample_diversity(
                tables[s.removesuffix("_2")]["count"].to_numpy(), depth=1000, n_iterations=2, seed=0
            ).with_columns(patient=pl.lit(p), sample=pl.lit(s))
            for p, s in both.select("patient", "sample").iter_rows()
        ]
    )
    write_tsv(diversity, tmp_path / "diversity.tsv")
    write_tsv(
        pl.DataFrame(
            {
                "patient": ["P1", "P2"],
                "expanded_in_blood": [2, 0],
                "flagged": [1, 0],
                "flagged_share_max_biopsy": [0.01, None],
                "flagged_share_by_biopsy": ["d28=0.01", None],
            }
        ),
        tmp_path / "summary.tsv",
    )
    overlap = patient_overlap(samples, tables).with_columns(patient=pl.lit("P1"))
    write_tsv(overlap, tmp_path / "overlap.tsv")
    write_tsv(pl.DataFrame(schema={"junction_aa": pl.Utf8, "n_flagged_patients": pl.Int64}), tmp_path / "pub.tsv")
    figures = {name: str(tmp_path / f"{name}.png") for name in COHORT_FIGURES}
    figures_cohort_step(
        diversity=str(tmp_path / "diversity.tsv"),
        summary=str(tmp_path / "summary.tsv"),
        overlap=str(tmp_path / "overlap.tsv"),
        public=str(tmp_path / "pub.tsv"),
        sheet=str(tmp_path / "samples.tsv"),
        group_by="response",
        baseline_day=None,
        figures=figures,
    )
    for png in figures.values():
        assert non_blank_png(png)
    assert read_tsv(tmp_path / "summary.tsv").height == 2
