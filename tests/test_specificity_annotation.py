"""Antigen-specificity annotation: readers, normalisation, match modes, errors, false-annotation rate.

The VDJdb fixture is hand-written here, in the slim release's format (16 columns, with
``vdjdb.score``), 14 rows with planted viral junctions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from tcrtrack.errors import InputFileError, TcrtrackError
from tcrtrack.olga_source import generate_clonotypes
from tcrtrack.specificity import (
    annotate,
    antigen_group,
    false_annotation_rates,
    read_database,
    summarise_hits,
)
from tcrtrack.specificity.calibration import wilson_interval

A2, B8, B35 = "HLA-A*02:01", "HLA-B*08:01", "HLA-B*35:01"
SLIM_HEADER = (
    "gene",
    "cdr3",
    "species",
    "antigen.epitope",
    "antigen.gene",
    "antigen.species",
    "complex.id",
    "v.segm",
    "j.segm",
    "v.end",
    "j.start",
    "mhc.a",
    "mhc.b",
    "mhc.class",
    "reference.id",
    "vdjdb.score",
)
#: (gene, cdr3, species, epitope, antigen gene, antigen species, v, j, mhc.a, score)
RECORDS = (
    ("TRB", "CASSLAPGATNEKLFF", "HomoSapiens", "NLVPMVATV", "pp65", "CMV", "TRBV7-6*01", "TRBJ1-4*01", A2, 3),
    ("TRB", "CASSPVTGGIYGYTF", "HomoSapiens", "NLVPMVATV", "pp65", "CMV", "TRBV6-5*01", "TRBJ1-2*01", A2, 2),
    ("TRB", "CASSYQTGGNYGYTF", "HomoSapiens", "NLVPMVATV", "pp65", "CMV", "TRBV6-5", "TRBJ1-2", A2, 1),
    ("TRB", "CSARDRTGNGYTF", "HomoSapiens", "GLCTLVAML", "BMLF1", "EBV", "TRBV20-1*01", "TRBJ1-2*01", A2, 2),
    ("TRB", "CASSLGQAYEQYF", "HomoSapiens", "RAKFKQLL", "BZLF1", "EBV", "TRBV7-8", "TRBJ2-7", B8, 1),
    ("TRB", "ASSPDRVGQETQY", "HomoSapiens", "RAKFKQLL", "BZLF1", "EBV", "TRBV7-9", "TRBJ2-5", B8, 1),
    ("TRB", "CASSIRSSYEQYF", "HomoSapiens", "GILGFVFTL", "M", "InfluenzaA", "TRBV19*01", "TRBJ2-7*01", A2, 3),
    ("TRB", "CASSSRSSYEQYF", "HomoSapiens", "GILGFVFTL", "M", "InfluenzaA", "TRBV19", "TRBJ2-7", A2, 1),
    ("TRB", "CASSLAPGTTNEKLFF", "HomoSapiens", "NLVPMVATV", "pp65", "CMV", "TRBV7-6", "TRBJ1-4", A2, 0),
    ("TRB", "CASSLGGRDTEAFF", "HomoSapiens", "ELAGIGILTV", "MLANA", "HomoSapiens", "TRBV5-1", "TRBJ1-1", A2, 1),
    ("TRB", "CASSQEGLAGASQETQYF", "HomoSapiens", "YLQPRTFLL", "Spike", "SARS-CoV-2", "TRBV4-1", "TRBJ2-5", A2, 1),
    ("TRA", "CAVNFGGGKLIF", "HomoSapiens", "GILGFVFTL", "M", "InfluenzaA", "TRAV12-2", "TRAJ10", A2, 2),
    ("TRB", "CASSDAGGRNTLYF", "MusMusculus", "SSIEFARL", "gB", "HSV-1", "TRBV13-2", "TRBJ2-4", "H-2Kb", 2),
    ("TRB", "CASSQDRDGQPQHF", "HomoSapiens", "HPVGEADYFEY", "EBNA1", "EBV", "TRBV4-1", "TRBJ1-5", B35, 2),
)


def write_vdjdb_fixture(path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """Write :data:`RECORDS` as a VDJdb slim file, optionally without some columns."""
    rows = []
    for k, (gene, cdr3, species, epitope, agene, aspecies, v, j, mhc_a, score) in enumerate(RECORDS):
        row = {
            "gene": gene,
            "cdr3": cdr3,
            "species": species,
            "antigen.epitope": epitope,
            "antigen.gene": agene,
            "antigen.species": aspecies,
            "complex.id": str(k + 1),
            "v.segm": v,
            "j.segm": j,
            "v.end": "",
            "j.start": "",
            "mhc.a": mhc_a,
            "mhc.b": "B2M",
            "mhc.class": "MHCI",
            "reference.id": f"PMID:{1000 + k}",
            "vdjdb.score": str(score),
        }
        rows.append("\t".join(row[c] for c in SLIM_HEADER if c not in drop))
    path.write_text("\t".join(c for c in SLIM_HEADER if c not in drop) + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def vdjdb(tmp_path: Path):
    return read_database(write_vdjdb_fixture(tmp_path / "vdjdb.slim.txt"), fmt="vdjdb")


CLONES = pl.DataFrame(
    {
        "clone_id": ["cmv_exact", "ebv_other_v", "flu_1mm", "flu_1mm_other_v", "ebv_trimmed", "nohit"],
        "junction_aa": [
            "CASSLAPGATNEKLFF",
            "CSARDRTGNGYTF",
            "CASSIRSSYEQFF",
            "CASSIRSAYEQYF",
            "CASSPDRVGQETQYF",
            "CAWSVAPDRGGYTF",
        ],
        "v_gene": ["TRBV7-6", "TRBV29-1", "TRBV19", "TRBV28", "TRBV7-9", "TRBV30"],
    }
)


def test_reader_normalises_and_filters(vdjdb):
    records = vdjdb.records
    assert vdjdb.dropped["other_species"] == 1 and vdjdb.dropped["other_locus"] == 1
    assert records.height == 12 and vdjdb.has_scores
    assert set(records["v_gene"]) >= {"TRBV7-6", "TRBV19", "TRBV20-1"}  # alleles stripped
    assert not records["v_gene"].str.contains(r"\*").any() and not records["j_gene"].str.contains(r"\*").any()
    trimmed = records.filter(pl.col("cdr3_as_given") == "ASSPDRVGQETQY")
    assert trimmed["junction_aa"].to_list() == ["CASSPDRVGQETQYF"]  # C104 and F118 added
    assert records.filter(pl.col("epitope") == "GILGFVFTL")["antigen_group"].unique().to_list() == ["Influenza"]
    assert records.filter(pl.col("epitope") == "ELAGIGILTV")["viral"].to_list() == [False]
    assert vdjdb.sha256 == hashlib.sha256(vdjdb.path.read_bytes()).hexdigest()  # for provenance.json


def test_reader_accepts_build_without_optional_columns(tmp_path):
    path = write_vdjdb_fixture(tmp_path / "chunks.tsv", drop=("vdjdb.score", "complex.id", "v.end", "j.start"))
    db = read_database(path, fmt="vdjdb", min_score=1)  # no scores: min_score cannot apply, all kept
    assert db.records.height == 12 and not db.has_scores and db.records["score"].null_count() == 12


def test_exact_hits_found(vdjdb):
    hits = annotate(CLONES, vdjdb, mode="exact")
    assert set(hits["clone_id"]) == {"cmv_exact", "ebv_other_v", "ebv_trimmed"}
    cmv = hits.filter(pl.col("clone_id") == "cmv_exact").row(0, named=True)
    assert (
        cmv["epitope"],
        cmv["antigen_gene"],
        cmv["antigen_group"],
        cmv["mhc_a"],
        cmv["score"],
        cmv["reference"],
        cmv["match"],
        cmv["mode"],
    ) == ("NLVPMVATV", "pp65", "CMV", A2, 3, "PMID:1000", "exact", "exact")


def test_exact_v_excludes_v_mismatch(vdjdb):
    hits = annotate(CLONES, vdjdb, mode="exact_v")
    assert set(hits["clone_id"]) == {"cmv_exact", "ebv_trimmed"}  # ebv_other_v has TRBV29-1, database TRBV20-1
    assert set(hits["match"]) == {"exact_v"}


def test_one_mismatch_labelled_and_needs_v(vdjdb):
    hits = annotate(CLONES, vdjdb, mode="one_mismatch")
    flu = hits.filter(pl.col("clone_id") == "flu_1mm")
    assert flu["db_junction_aa"].to_list() == ["CASSIRSSYEQYF"]  # CASSSRSSYEQYF is 2 mismatches away
    assert flu["match"].to_list() == ["one_mismatch"] and flu["mismatches"].to_list() == [1]
    assert "flu_1mm_other_v" not in set(hits["clone_id"])  # Hamming 1 but another V gene
    assert hits.filter(pl.col("clone_id") == "cmv_exact")["match"].to_list()[0] == "exact_v"
    # the one-mismatch neighbour CASSLAPGTTNEKLFF (score 0) is also a hit, and min_score removes it
    cmv = hits.filter(pl.col("clone_id") == "cmv_exact")
    assert set(cmv["match"]) == {"exact_v", "one_mismatch"}
    scored = annotate(CLONES, vdjdb, mode="one_mismatch", min_score=1)
    assert set(scored.filter(pl.col("clone_id") == "cmv_exact")["match"]) == {"exact_v"}


def test_summary_labels_viral_bystanders(vdjdb):
    hits = annotate(CLONES, vdjdb, mode="one_mismatch")
    summary = summarise_hits(hits, by=["clone_id"]).sort("clone_id")
    row = summary.filter(pl.col("clone_id") == "cmv_exact").row(0, named=True)
    assert row["known_specificity"] == "CMV:pp65:NLVPMVATV" and row["viral_bystander"]
    assert row["best_match"] == "exact_v"
    assert summary.filter(pl.col("clone_id") == "flu_1mm")["known_specificity"].item() == "Influenza:M:GILGFVFTL"


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "not found"),
        ("just some text\nwithout the columns\n", "column(s)"),
        (b"\xff\xfe\x00\x00\x01binary", "column(s)"),
    ],
)
def test_bad_database_file_is_one_line_error(tmp_path, content, problem):
    path = tmp_path / "vdjdb.slim.txt"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        read_database(path, fmt="vdjdb")
    message = str(info.value)
    assert isinstance(info.value, TcrtrackError) and "\n" not in message
    assert str(path) in message and problem in message and "Fix:" in message


def test_folder_and_zip_archive_are_one_line_errors(tmp_path):
    import zipfile

    archive = tmp_path / "vdjdb-2025-02-21.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("vdjdb.slim.txt", write_vdjdb_fixture(tmp_path / "inner.txt").read_text())
    for path, problem in ((tmp_path, "is a folder"), (archive, "is a zip archive")):
        with pytest.raises(InputFileError) as info:
            read_database(path, fmt="vdjdb")
        message = str(info.value)
        assert "\n" not in message and str(path) in message and problem in message and "Fix:" in message


def test_unknown_format_and_empty_database(tmp_path):
    path = write_vdjdb_fixture(tmp_path / "v.tsv")
    with pytest.raises(InputFileError, match="unknown annotation database format"):
        read_database(path, fmt="iedb")  # type: ignore[arg-type]
    with pytest.raises(InputFileError, match="no MusMusculus TRA record"):
        read_database(path, fmt="vdjdb", species="MusMusculus", locus="TRA")


def test_mcpas_and_lab_table_readers(tmp_path):
    mcpas = tmp_path / "McPAS-TCR.csv"
    mcpas.write_text(
        "CDR3.alpha.aa,CDR3.beta.aa,Species,Category,Pathology,Antigen.protein,Epitope.peptide,MHC,TRBV,TRBJ,"
        "PubMed.ID\n"
        'CAVNFGGGKLIF,CASSIRSSYEQYF,Human,Pathogens,Influenza,"Matrix protein (M1)",GILGFVFTL,HLA-A*02:01,'
        "TRBV19,TRBJ2-7,123\n"
        ",ASSLAPGATNEKL,Human,Pathogens,Cytomegalovirus (CMV),pp65,NLVPMVATV,HLA-A*02:01,TRBV07-06,TRBJ01-04,456\n"
        ",CASSDAGGRNTLYF,Mouse,Pathogens,Herpes simplex virus,gB,SSIEFARL,H-2Kb,TRBV13-2,TRBJ2-4,789\n"
    )
    db = read_database(mcpas, fmt="mcpas")
    assert db.records.height == 2 and set(db.records["antigen_group"]) == {"Influenza", "CMV"}
    assert set(db.records["junction_aa"]) == {"CASSIRSSYEQYF", "CASSLAPGATNEKLF"}  # J1-4 ends in F
    assert "TRBV7-6" in set(db.records["v_gene"])  # vendor-style TRBV07-06 standardised
    lab = tmp_path / "tetramer.tsv"
    lab.write_text(
        "junction_aa\tv_gene\tj_gene\tepitope\tantigen_species\tsource\n"
        "CASSLGGRDTEAFF\tTRBV5-1\tTRBJ1-1\tKIFGSLAFL\tHomoSapiens\ttrial tetramer sort\n"
    )
    table = read_database(lab, fmt="table")
    assert table.records["source"].to_list() == ["trial tetramer sort"] and not table.records["viral"].any()
    assert (
        annotate(
            CLONES.with_columns(junction_aa=pl.lit("CASSLGGRDTEAFF"), v_gene=pl.lit("TRBV5-1")).head(1),
            table,
            mode="exact_v",
        ).height
        == 1
    )


def test_antigen_groups():
    assert [antigen_group(s) for s in ("CMV", "InfluenzaA", "Epstein Barr virus (EBV)", "HomoSapiens", None)] == [
        "CMV",
        "Influenza",
        "EBV",
        "HomoSapiens",
        None,
    ]


def test_false_annotation_rate_near_zero_for_exact(vdjdb):
    clones = generate_clonotypes(300, seed=11).select("junction_aa", "v_gene")
    clones = pl.concat([clones, CLONES.select("junction_aa", "v_gene")])
    rates = false_annotation_rates(clones, vdjdb, n_random=5_000, seed=3)
    exact = rates.filter(pl.col("mode") == "exact").row(0, named=True)
    assert exact["clones_hit"] == 3 and exact["n_random"] == 5_000
    assert exact["false_annotation_rate"] < 1e-3 and exact["far_ci_high"] < 2e-3
    fuzzy = rates.filter(pl.col("mode") == "one_mismatch").row(0, named=True)
    assert fuzzy["false_annotation_rate"] < 5e-3


def test_wilson_interval():
    low, high = wilson_interval(0, 100)
    assert low == 0 and 0.03 < high < 0.04  # 0/100: upper bound about 3.7%
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and abs((low + high) / 2 - 0.5) < 1e-12


def test_junction_fast_path_equals_tidytcells():
    import tidytcells

    from tcrtrack.specificity.databases import _standard_junctions

    cdr3 = [
        "CASSIRSSYEQYF",
        "CASSIRSSYEQYW",
        "ASSIRSSYEQY",
        "casslapgatneklff",
        "CASSPTGGSPSPLHFG",
        "CAS*F",
        "CAVNFGGGKLIF",
        "CAVNFGGGKLIW",
        "",
        None,
    ]
    j = ["TRBJ2-7", "TRBJ2-7", "TRBJ2-7", "TRBJ1-4", "TRBJ1-6", None, "TRAJ10", None, None, None]
    ours = _standard_junctions(pl.Series(cdr3, dtype=pl.Utf8), pl.Series(j, dtype=pl.Utf8)).to_list()
    theirs = [
        tidytcells.junction.standardize(s, j_symbol=g, log_failures=False) if s else None
        for s, g in zip(cdr3, j, strict=True)
    ]
    assert ours == theirs and ours[2] == "CASSIRSSYEQYF"
