"""The specificity stage's steps on small hand-made tables (no snakemake): clone sets, cohort groups with the
network figure (planted one-mismatch variants in two patients), contamination per clone, the annotation
summary, and empty inputs (no database, no group)."""

from __future__ import annotations

import polars as pl

from tcrtrack.io import read_tsv
from tcrtrack.plots.specificity import specificity_network
from tcrtrack.specificity.cohort_step import _group_tables, annotation_summary, contamination
from tcrtrack.specificity.steps import SPECIFICITY_SCHEMA, annotate_clones, clone_sets

SAMPLES = pl.DataFrame(
    {
        "patient": ["P1"] * 4,
        "sample": ["b0", "b7", "t28", "prod"],
        "compartment": ["blood", "blood", "tumor", "product"],
        "day": [0, 7, 28, 0],
    }
)


def _clones() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient": ["P1"] * 5,
            "clone_id": [f"c{i}" for i in range(5)],
            "junction_aa": ["CASSLAPGATNEKLFF", "CASSIRSSYEQYF", "CASSPDRVGQETQYF", "CASSQQQQQQF", "CASSWWWWF"],
            "v_gene": ["TRBV7-6", "TRBV19", "TRBV7-9", "TRBV5-1", "TRBV5-1"],
            "j_gene": ["TRBJ1-4"] * 5,
            "count_t28": [50, 0, 3, 0, 0],
            "freq_t28": [0.05, 0.0, 0.003, 0.0, 0.0],
            "count_prod": [0, 9, 0, 1, 0],
            "flagged": [True, False, False, False, False],
            "expanded_in_blood": [True, True, False, False, False],
            "accumulates_in_tumor": [True, False, False, False, False],
            "new_in_blood": [True, False, None, None, None],
            "blood_log2fc": [5.0, 3.0, None, None, None],
            "blood_qvalue": [1e-6, 1e-3, None, None, None],
        }
    )


def test_clone_sets_pick_flagged_expanded_and_top_clones():
    sets = clone_sets(_clones(), SAMPLES, top_n=1)
    assert sets["clone_id"].to_list() == ["c0", "c1"]  # c0: flagged and top tumour; c1: expanded and top product
    assert sets["clone_set"].to_list() == [
        "flagged;expanded_in_blood;accumulates_in_tumor;top_tumor",
        "expanded_in_blood;top_product",
    ]
    assert sets["tumor_post_templates"].to_list() == [50, 0]
    wider = clone_sets(_clones(), SAMPLES, top_n=5)
    assert set(wider["clone_id"]) == {"c0", "c1", "c2", "c3"}  # c4: in no set


def test_no_database_gives_empty_hits_with_the_header():
    hits = annotate_clones(clone_sets(_clones(), SAMPLES, top_n=1), [], modes=["exact"], min_score=None)
    assert hits.height == 0
    assert {"patient", "clone_id", "clone_set", "mode", "match", "epitope", "antigen_species", "database"} <= set(
        hits.columns
    )


def _spec_rows() -> pl.DataFrame:
    """Four one-mismatch variants (TRBV7-6), two per patient, and one unrelated clone."""
    junctions = ["CASSLAPGATNEKLFF", "CASSLAPGTTNEKLFF", "CASSLAPGATNEKLYF", "CASSLAPGSTNEKLFF", "CSARDRTGNGYTF"]
    frame = pl.DataFrame(
        {
            "patient": ["P1", "P1", "P2", "P2", "P2"],
            "clone_id": [f"c{i}" for i in range(5)],
            "junction_aa": junctions,
            "v_gene": ["TRBV7-6"] * 4 + ["TRBV20-1"],
            "j_gene": ["TRBJ1-4"] * 5,
            "flagged": [True, True, True, False, False],
            "expanded_in_blood": [True] * 5,
            "accumulates_in_tumor": [True, False, True, False, False],
            "tumor_max_post_frequency": [0.05, 0.001, 0.02, None, 0.0],
            "tumor_post_templates": [50, 1, 20, 0, 0],
            "known_specificity": ["CMV:pp65:NLVPMVATV", None, None, None, None],
            "viral_bystander": [True, False, False, False, False],
        }
    )
    return frame.select(
        [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in SPECIFICITY_SCHEMA.items()]
    )


def test_cross_patient_group_table_and_network(tmp_path):
    grouped, groups, edges = _group_tables(_spec_rows(), 12)
    assert groups.height == 1
    row = groups.row(0, named=True)
    assert row["size"] == 4 and row["n_patients"] == 2 and row["members_per_patient"] == "P1:2,P2:2"
    assert row["n_flagged"] == 3 and row["report"] and row["known_specificity"] == "CMV:pp65:NLVPMVATV"
    assert row["v_genes"] == "TRBV7-6:4" and row["n_viral"] == 1
    fig = specificity_network(grouped, edges, groups, n_clones=grouped.height, n_patients=2)
    from tcrtrack.plots.style import save_figure

    png, pdf = save_figure(fig, tmp_path / "network.png", pdf=True)
    assert png.stat().st_size > 10_000 and pdf.read_bytes()[:5] == b"%PDF-"


def test_no_group_gives_an_empty_table_and_a_message_figure(tmp_path):
    lonely = _spec_rows().filter(pl.col("clone_id").is_in(["c0", "c4"]))
    grouped, groups, edges = _group_tables(lonely, 12)
    assert groups.height == 0 and "members_per_patient" in groups.columns
    fig = specificity_network(grouped, edges, groups, n_clones=2, n_patients=2)
    assert "No specificity group" in fig.axes[0].texts[0].get_text()


def test_contamination_names_the_other_sample_and_counts_qc():
    rows = pl.DataFrame(
        {
            "patient": ["P1", "P1", "P2"],
            "sample": ["P1_t", "P1_b", "P2_b"],
            "clone_id": ["x", "y", "x2"],
            "junction": ["TGTGCC", "TGTAAA", "tgtgcc"],
            "frequency": [0.2, 0.1, 0.001],
        }
    )
    per_clone, qc = contamination(rows, min_ratio=20, min_frequency=1e-4)
    assert per_clone.to_dicts() == [
        {
            "patient": "P2",
            "clone_id": "x2",
            "possible_contamination": True,
            "contamination_source": "P1_t (in P2_b)",
            "contamination_ratio": 200.0,
        }
    ]
    assert qc.filter(pl.col("sample") == "P2_b")["contamination_clones"].item() == 1
    assert qc.filter(pl.col("patient") == "P1")["contamination_clones"].sum() == 0


def test_annotation_summary_shares():
    spec = _spec_rows()
    flagged = (
        spec.filter(pl.col("flagged"))
        .select("patient", "clone_id")
        .with_columns(specificity_group=pl.lit("SG1"), possible_contamination=pl.lit(False))
    )
    summary = annotation_summary(spec, flagged, ["P1", "P2"], n_databases=1)
    p1 = summary.filter(pl.col("patient") == "P1").row(0, named=True)
    assert p1["flagged"] == 2 and p1["flagged_viral"] == 1 and p1["share_flagged_viral"] == 0.5
    assert p1["share_tumor_templates_viral"] == 50 / 51
    none = annotation_summary(spec, flagged, ["P1"], n_databases=0).row(0, named=True)
    assert none["share_flagged_viral"] is None


def test_cohort_step_on_files_and_exclude_viral(tmp_path):
    """specificity_cohort_step on hand-written files: the flagged table keeps its columns and rows and gains the
    annotation columns; exclude_viral leaves the viral bystander out; a carried-over junction is named."""
    from tcrtrack.cohort_tables import FLAGGED_COLUMNS
    from tcrtrack.io import write_parquet, write_tsv
    from tcrtrack.specificity.cohort_step import FLAGGED_EXTRA, specificity_cohort_step

    spec = _spec_rows()
    sheet = tmp_path / "samples.tsv"
    pl.DataFrame(
        {
            "patient": ["P1", "P2"],
            "sample": ["P1_t", "P2_b"],
            "compartment": ["tumor", "blood"],
            "day": [28, 7],
            "replicate": [1, 1],
            "path": ["a.tsv", "b.tsv"],
            "format": ["airr", "airr"],
            "response": ["yes", "no"],
        }
    ).write_csv(sheet, separator="\t")
    files = []
    for patient in ("P1", "P2"):
        write_tsv(spec.filter(pl.col("patient") == patient), tmp_path / f"{patient}_specificity.tsv")
        files.append(str(tmp_path / f"{patient}_specificity.tsv"))
    clonotypes = []
    for patient, sample, ids, nts, freqs in (
        ("P1", "P1_t", ["c0", "c1"], ["TGTGCC", "TGTAAA"], [0.3, 0.1]),
        ("P2", "P2_b", ["c2", "c3"], ["TGTCCC", "TGTGCC"], [0.2, 0.001]),
    ):
        (tmp_path / patient).mkdir()
        write_parquet(
            pl.DataFrame({"clone_id": ids, "junction": nts, "frequency": freqs}),
            tmp_path / patient / f"{sample}.parquet",
        )
        clonotypes.append(str(tmp_path / patient / f"{sample}.parquet"))
    flagged = spec.filter(pl.col("flagged")).select(
        [pl.col(c) if c in spec.columns else pl.lit(None).alias(c) for c in FLAGGED_COLUMNS]
    )
    flagged = flagged.with_columns(pl.col("clone_id").replace({"c2": "c3"}))  # c3 (P2) carries P1's c0 junction
    write_tsv(flagged, tmp_path / "flagged.tsv")
    out = {name: str(tmp_path / f"{name}.tsv") for name in ("groups", "flagged_out", "summary", "contamination")}
    for exclude in (False, True):
        specificity_cohort_step(
            specificity=files,
            flagged=str(tmp_path / "flagged.tsv"),
            clonotypes=clonotypes,
            sheet=str(sheet),
            settings={"group_distance": 12, "exclude_viral": exclude},
            n_databases=1,
            groups_out=out["groups"],
            flagged_out=out["flagged_out"],
            summary_out=out["summary"],
            contamination_out=out["contamination"],
            figure_png=str(tmp_path / "network.png"),
        )
        annotated = read_tsv(out["flagged_out"])
        assert annotated.columns == [*FLAGGED_COLUMNS, *FLAGGED_EXTRA]
        if not exclude:
            assert annotated["clone_id"].to_list() == ["c0", "c1", "c3"]
            c3 = annotated.filter(pl.col("clone_id") == "c3").row(0, named=True)
            assert c3["possible_contamination"] and c3["contamination_source"] == "P1_t (in P2_b)"
            assert annotated.filter(pl.col("clone_id") == "c0")["viral_bystander"].item()
        else:
            assert annotated["clone_id"].to_list() == ["c1", "c3"]  # c0 is the viral bystander
    assert read_tsv(out["summary"])["response"].to_list() == ["yes", "no"]
    assert read_tsv(out["contamination"]).filter(pl.col("sample") == "P2_b")["contamination_clones"].item() == 1
    assert not (tmp_path / "network.pdf").exists()  # PDFs on request: tcrtrack.plots.WRITE_PDF
