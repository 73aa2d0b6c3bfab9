"""Ingest: AIRR reading, filters, gene calls, clonotypes and the QC identity."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcrtrack.errors import InputFileError
from tcrtrack.genes import translate
from tcrtrack.ingest import DROP_REASONS, ingest_airr

HEADER = ["sequence_id", "productive", "locus", "v_call", "j_call", "junction", "junction_aa", "duplicate_count"]


def write_airr(path: Path, rows: list[dict[str, object]], *, columns: list[str] = HEADER) -> Path:
    lines = ["\t".join(columns)]
    for index, row in enumerate(rows):
        values = {"sequence_id": f"r{index}", **row}
        lines.append("\t".join("" if values.get(c) is None else str(values.get(c)) for c in columns))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def row(junction_aa="CASSLGQGYEQYF", v="TRBV5-1*01", j="TRBJ2-7*01", count=10, productive="T", locus="TRB",
        junction=None):
    return {"productive": productive, "locus": locus, "v_call": v, "j_call": j, "junction": junction,
            "junction_aa": junction_aa, "duplicate_count": count}


MIXED = [
    row(count=10),
    row(count=5, v="TRBV5-1*02"),                      # same gene, other allele: same clonotype
    row(junction_aa="CASSPDRGYTF", count=7, v="TRBV6-2*01,TRBV6-3*01"),  # ambiguous V
    row(junction_aa="CASSPDRGYTF", count=3, v="TRBV7-9*01"),            # other V: other aa_vj clonotype
    row(count=4, productive="F"),                      # non_productive
    row(count=6, locus="TRA", v="TRAV1-2*01", j="TRAJ33*01"),  # wrong_locus
    row(junction_aa=None, count=2),                    # missing_junction
    row(junction_aa="CASS*GYF", count=8),              # stop_codon
    row(junction_aa="CASS_GYF", count=9),              # out_of_frame
    row(junction_aa="CAS", count=11),                  # too_short
    row(count=0),                                      # zero_count
    row(count=None),                                   # missing_count
    row(v="TRAV1-2*01", count=12),                     # locus column TRB, V gene TRA
]


def test_fates_and_clonotypes_on_a_hand_made_file(tmp_path):
    result = ingest_airr(write_airr(tmp_path / "s.tsv", MIXED))
    qc = result.qc.row(0, named=True)
    expected_rows = {"kept": 4, "non_productive": 1, "wrong_locus": 1, "missing_junction": 1, "stop_codon": 1,
                     "out_of_frame": 1, "too_short": 1, "zero_count": 1, "missing_count": 1,
                     "locus_gene_mismatch": 1, "productive_missing": 0}
    for fate, rows in expected_rows.items():
        assert qc[f"{fate}_rows"] == rows, fate
    assert qc["kept_count"] == 10 + 5 + 7 + 3
    assert qc["input_rows"] == len(MIXED)
    assert qc["input_count"] == sum(r["duplicate_count"] or 0 for r in MIXED)
    assert qc["count_source"] == "duplicate_count"
    assert qc["v_ambiguous_rows"] == 1
    clonotypes = result.clonotypes
    assert clonotypes["clone_id"].to_list() == ["CASSLGQGYEQYF|TRBV5-1|TRBJ2-7", "CASSPDRGYTF|TRBV6-2|TRBJ2-7",
                                                "CASSPDRGYTF|TRBV7-9|TRBJ2-7"]
    assert clonotypes["count"].to_list() == [15, 7, 3]
    assert clonotypes["frequency"].to_list() == pytest.approx([15 / 25, 7 / 25, 3 / 25])
    assert clonotypes["v_ambiguous"].to_list() == [False, True, False]


def test_aa_definition_merges_v_genes_and_keeps_the_largest_rows_genes(tmp_path):
    result = ingest_airr(write_airr(tmp_path / "s.tsv", MIXED), definition="aa")
    counts = dict(result.clonotypes.select("clone_id", "count").iter_rows())
    assert counts == {"CASSLGQGYEQYF": 15, "CASSPDRGYTF": 10}
    assert result.clonotypes.filter(pl.col("clone_id") == "CASSPDRGYTF")["v_gene"][0] == "TRBV6-2"


def test_productive_only_off_keeps_non_productive_in_frame_rows(tmp_path):
    result = ingest_airr(write_airr(tmp_path / "s.tsv", MIXED), productive_only=False)
    assert result.qc["non_productive_rows"][0] == 0
    assert result.qc["kept_rows"][0] == 5


def test_gzipped_equals_plain(tmp_path):
    plain = ingest_airr(write_airr(tmp_path / "s.tsv", MIXED))
    gzipped = ingest_airr(write_airr(tmp_path / "s.tsv.gz", MIXED))
    assert plain.clonotypes.equals(gzipped.clonotypes)


def test_junction_is_translated_when_junction_aa_is_missing(tmp_path):
    # TGT GCC AGC AGT TTA GGG CAA GGC TAC GAG CAG TAC TTC = C A S S L G Q G Y E Q Y F
    nt = "TGTGCCAGCAGTTTAGGGCAAGGCTACGAGCAGTACTTC"
    assert translate(nt) == "CASSLGQGYEQYF"
    assert translate(nt[:-1]) == "CASSLGQGYEQY_"
    result = ingest_airr(write_airr(tmp_path / "s.tsv", [row(junction_aa=None, junction=nt)]))
    assert result.clonotypes["junction_aa"].to_list() == ["CASSLGQGYEQYF"]


def test_nt_definition_splits_synonymous_junctions(tmp_path):
    a = "TGTGCCAGCAGTTTAGGGCAAGGCTACGAGCAGTACTTC"
    b = "TGTGCCAGCAGTCTAGGGCAAGGCTACGAGCAGTACTTC"  # TTA -> CTA, both Leu
    rows = [row(junction=a, count=3), row(junction=b, count=4)]
    assert ingest_airr(write_airr(tmp_path / "s.tsv", rows), definition="nt").clonotypes.height == 2
    assert ingest_airr(write_airr(tmp_path / "s.tsv", rows), definition="aa_vj").clonotypes.height == 1


def test_without_count_column_each_row_counts_one(tmp_path):
    columns = [c for c in HEADER if c != "duplicate_count"]
    result = ingest_airr(write_airr(tmp_path / "s.tsv", [row(), row(), row(junction_aa="CASSQDF")], columns=columns))
    assert result.qc["count_source"][0].startswith("rows")
    assert result.clonotypes["count"].to_list() == [2, 1]


def test_umi_count_is_used_when_duplicate_count_is_absent(tmp_path):
    columns = [c if c != "duplicate_count" else "umi_count" for c in HEADER]
    rows = [{**row(), "umi_count": 4}, {**row(junction_aa="CASSQDF"), "umi_count": 9}]
    result = ingest_airr(write_airr(tmp_path / "s.tsv", rows, columns=columns))
    assert result.qc["count_source"][0] == "umi_count"
    assert result.clonotypes["count"].to_list() == [9, 4]


def test_single_cell_counts_cells_not_contigs(tmp_path):
    columns = [*HEADER, "cell_id"]
    rows = [{**row(count=50), "cell_id": "AAAC-1"}, {**row(count=20), "cell_id": "AAAC-1"},
            {**row(count=30), "cell_id": "CCCG-1"}, {**row(junction_aa="CASSQDF", count=99), "cell_id": "GGGT-1"}]
    result = ingest_airr(write_airr(tmp_path / "s.tsv", rows, columns=columns))
    assert dict(result.clonotypes.select("junction_aa", "count").iter_rows()) == {"CASSLGQGYEQYF": 2, "CASSQDF": 1}
    assert result.qc["count_source"][0].startswith("cells")


@pytest.mark.parametrize("value", ["abc", "-3", "2.5"])
def test_bad_counts_name_file_row_and_column(tmp_path, value):
    path = write_airr(tmp_path / "s.tsv", [row(), row(count=value)])
    with pytest.raises(InputFileError, match=rf"s\.tsv: row 3, column 'duplicate_count': '{value}'"):
        ingest_airr(path)


def test_unknown_productive_value_is_refused(tmp_path):
    path = write_airr(tmp_path / "s.tsv", [row(productive="yes")])
    with pytest.raises(InputFileError, match="row 2, column 'productive': 'yes'.*Fix: write productive as T or F"):
        ingest_airr(path)


def test_missing_required_column(tmp_path):
    path = write_airr(tmp_path / "s.tsv", [row()], columns=[c for c in HEADER if c != "j_call"])
    with pytest.raises(InputFileError, match="required AIRR column.*j_call"):
        ingest_airr(path)


def test_nothing_kept_is_refused_with_the_fates(tmp_path):
    path = write_airr(tmp_path / "s.tsv", [row(locus="IGH", v="IGHV1-2*01", j="IGHJ4*02")])
    with pytest.raises(InputFileError, match="no row is kept: 1 of 1 rows wrong_locus"):
        ingest_airr(path)


def test_huge_counts_do_not_overflow(tmp_path):
    result = ingest_airr(write_airr(tmp_path / "s.tsv", [row(count=2**40), row(junction_aa="CASSQDF", count=1)]))
    assert result.clonotypes["count"].to_list() == [2**40, 1]


junctions = st.one_of(st.none(), st.text(alphabet="ACDEFGHIKLMNPQRSTVWY*_", min_size=0, max_size=15))
rows_strategy = st.lists(st.builds(
    row, junction_aa=junctions, v=st.sampled_from(["TRBV5-1*01", "TRBV6-2*01,TRBV6-3*01", "TRAV1-2*01", None]),
    count=st.one_of(st.none(), st.integers(0, 10**6)), productive=st.sampled_from(["T", "F", None]),
    locus=st.sampled_from(["TRB", "TRA", None])), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_accounting_identity_on_random_files(tmp_path, rows):
    path = write_airr(tmp_path / "fuzz.tsv", rows)
    try:
        result = ingest_airr(path)
    except InputFileError as error:
        assert "no row is kept" in str(error)
        return
    qc = result.qc.row(0, named=True)
    for unit in ("rows", "count"):
        assert qc[f"input_{unit}"] == qc[f"kept_{unit}"] + sum(qc[f"{r}_{unit}"] for r in DROP_REASONS)
    assert result.clonotypes["count"].sum() == qc["kept_count"]
    assert result.clonotypes["frequency"].sum() == pytest.approx(1.0)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent (outside the project's CI)")


@needs_shared
def test_real_airr_community_files_are_accounted_for():
    for name in ("good_rearrangement.tsv", "good_rearrangement.tsv.gz", "rearrangement-example.tsv.gz"):
        path = SHARED / "airr-standards" / name
        raw = pl.read_csv(path, separator="\t", infer_schema=False)
        result = ingest_airr(path, locus="IGH")
        qc = result.qc.row(0, named=True)
        assert qc["input_rows"] == raw.height
        assert qc["input_count"] == raw["duplicate_count"].cast(pl.Int64).fill_null(0).sum()
        # independently: productive IGH rows with a clean junction
        productive = raw.filter((pl.col("productive") == "T") & ~pl.col("junction_aa").str.contains(r"[*_~]")
                                & pl.col("v_call").str.starts_with("IGH"))
        assert qc["kept_rows"] == productive.height


@needs_shared
def test_antibody_file_in_a_tcr_run_is_refused_clearly():
    with pytest.raises(InputFileError, match="no row is kept: 9 of 9 rows wrong_locus"):
        ingest_airr(SHARED / "airr-standards" / "good_rearrangement.tsv")


@needs_shared
def test_misspelled_column_and_productive_yes_in_the_bad_airr_file():
    with pytest.raises(InputFileError, match="productive"):
        ingest_airr(SHARED / "airr-standards" / "bad_rearrangement.tsv", locus="IGH")
