"""Pgen against OLGA itself; convergence; cross-patient contamination."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import olga
import olga.generation_probability as olga_pgen
import olga.load_model as olga_load
import polars as pl
import pytest

from tcrtrack.specificity import add_convergence, add_pgen, compute_pgen, contamination_qc, flag_contamination

JUNCTIONS = ["CAWSVAPDRGGYTF", "CASSIRSSYEQYF", "CASSLAPGATNEKLFF", "CSARDRTGNGYTF"]


@pytest.fixture(scope="module")
def olga_reference():
    """OLGA's own GenerationProbabilityVDJ, loaded as its README shows."""
    folder = Path(olga.__file__).parent / "default_models" / "human_T_beta"
    genomic = olga_load.GenomicDataVDJ()
    genomic.load_igor_genomic_data(
        str(folder / "model_params.txt"),
        str(folder / "V_gene_CDR3_anchors.csv"),
        str(folder / "J_gene_CDR3_anchors.csv"),
    )
    model = olga_load.GenerativeModelVDJ()
    model.load_and_process_igor_model(str(folder / "model_marginals.txt"))
    return olga_pgen.GenerationProbabilityVDJ(model, genomic)


def test_pgen_equals_olga(olga_reference):
    ours = compute_pgen(JUNCTIONS)
    theirs = np.array([olga_reference.compute_aa_CDR3_pgen(s) for s in JUNCTIONS])
    assert (ours > 0).all() and np.allclose(ours, theirs, rtol=1e-12, atol=0)
    assert math.isclose(ours[0], 1.5756106696284584e-10, rel_tol=1e-6)  # OLGA's documented example
    conditioned = compute_pgen(["CAWSVAPDRGGYTF"], v_genes=["TRBV30*01"], j_genes=["TRBJ1-2*01"])
    assert math.isclose(
        conditioned[0], olga_reference.compute_aa_CDR3_pgen("CAWSVAPDRGGYTF", "TRBV30*01", "TRBJ1-2*01"), rel_tol=1e-12
    )


def test_add_pgen_handles_bad_symbols_and_unknown_genes():
    clones = pl.DataFrame(
        {"junction_aa": ["CASSIRSSYEQYF", "CASS*RSSYEQYF"], "v_gene": ["TRBV19", "TRBVX"], "j_gene": ["TRBJ2-7", None]}
    )
    out = add_pgen(clones, condition_on_genes=True)
    assert out["pgen"][0] > 0 and out["pgen"][1] == 0 and out["log10_pgen"][1] is None


def test_convergence_counts_distinct_nucleotide_junctions():
    clones = pl.DataFrame(
        {
            "patient": ["P1", "P1", "P1", "P1", "P2", "P2"],
            "junction_aa": ["CASSF", "CASSF", "CASSF", "CASKF", "CASSF", "CASKF"],
            "junction": ["TGTGCCAGCAGCTTT", "TGTGCTAGCAGCTTT", "tgtgccagcagcttt", None, "TGTGCAAGTAGTTTC", None],
        }
    )
    out = add_convergence(clones)
    assert out["n_nt_junctions"].to_list() == [2, 2, 2, None, 1, None]


def _cohort() -> pl.DataFrame:
    nt = "TGTGCCAGCAGTTTAGCGCCGGGAGCCACCAACGAAAAACTGTTTTTT"
    return pl.DataFrame(
        {
            "patient": ["P1", "P1", "P2", "P2", "P3"],
            "sample": ["P1_d0", "P1_d28", "P2_d0", "P2_d28", "P3_d0"],
            "junction": [nt, nt.lower(), nt, "TGTGCC", nt],
            "frequency": [0.05, 0.04, 0.0001, 0.2, 0.03],
        }
    )


def test_planted_nucleotide_clone_in_two_patients_is_flagged():
    out = flag_contamination(_cohort())
    row = out.filter(pl.col("sample") == "P2_d0").row(0, named=True)
    assert row["possible_contamination"] and row["contamination_source"] == "P1_d0"
    assert row["contamination_source_patient"] == "P1" and math.isclose(row["contamination_ratio"], 500)
    assert row["shared_nt_samples"] == 3  # P1_d0, P1_d28 (case-insensitive), P3_d0
    # the big clones are not flagged (no other sample 20x above them); the own patient never counts
    assert out.filter(pl.col("sample") != "P2_d0")["possible_contamination"].to_list() == [False] * 4
    assert out.columns[:4] == ["patient", "sample", "junction", "frequency"] and out.height == 5
    qc = contamination_qc(out)
    assert qc.filter(pl.col("sample") == "P2_d0")["contamination_clones"].item() == 1


def test_contamination_thresholds():
    assert not flag_contamination(_cohort(), min_ratio=1_000)["possible_contamination"].any()
    assert not flag_contamination(_cohort(), min_source_frequency=0.1)["possible_contamination"].any()
    with pytest.raises(ValueError, match="min_ratio"):
        flag_contamination(_cohort(), min_ratio=0.5)
