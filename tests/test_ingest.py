"""Ingest: AIRR reading, filters, gene calls, clonotypes and the QC identity."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcrtrack.airr_reader import _read_columns, _read_lines, _sniff, airr_field_types
from tcrtrack.errors import InputFileError
from tcrtrack.genes import translate
from tcrtrack.ingest import COUNT_FIELDS, DROP_REASONS, READ_FIELDS, ingest_airr

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


def row(
    junction_aa="CASSLGQGYEQYF", v="TRBV5-1*01", j="TRBJ2-7*01", count=10, productive="T", locus="TRB", junction=None
):
    return {
        "productive": productive,
        "locus": locus,
        "v_call": v,
        "j_call": j,
        "junction": junction,
        "junction_aa": junction_aa,
        "duplicate_count": count,
    }


MIXED = [
    row(count=10),
    row(count=5, v="TRBV5-1*02"),  # same gene, other allele: same clonotype
    row(junction_aa="CASSPDRGYTF", count=7, v="TRBV6-2*01,TRBV6-3*01"),  # ambiguous V
    row(junction_aa="CASSPDRGYTF", count=3, v="TRBV7-9*01"),  # other V: other aa_vj clonotype
    row(count=4, productive="F"),  # non_productive
    row(count=6, locus="TRA", v="TRAV1-2*01", j="TRAJ33*01"),  # wrong_locus
    row(junction_aa=None, count=2),  # missing_junction
    row(junction_aa="CASS*GYF", count=8),  # stop_codon
    row(junction_aa="CASS_GYF", count=9),  # out_of_frame
    row(junction_aa="CAS", count=11),  # too_short
    row(count=0),  # zero_count
    row(count=None),  # missing_count
    row(v="TRAV1-2*01", count=12),  # locus column TRB, V gene TRA
]


def test_fates_and_clonotypes_on_a_hand_made_file(tmp_path):
    result = ingest_airr(write_airr(tmp_path / "s.tsv", MIXED))
    qc = result.qc.row(0, named=True)
    expected_rows = {
        "kept": 4,
        "non_productive": 1,
        "wrong_locus": 1,
        "missing_junction": 1,
        "stop_codon": 1,
        "out_of_frame": 1,
        "too_short": 1,
        "zero_count": 1,
        "missing_count": 1,
        "locus_gene_mismatch": 1,
        "productive_missing": 0,
    }
    for fate, rows in expected_rows.items():
        assert qc[f"{fate}_rows"] == rows, fate
    assert qc["kept_count"] == 10 + 5 + 7 + 3
    assert qc["input_rows"] == len(MIXED)
    assert qc["input_count"] == sum(r["duplicate_count"] or 0 for r in MIXED)
    assert qc["count_source"] == "duplicate_count"
    assert qc["v_ambiguous_rows"] == 1
    clonotypes = result.clonotypes
    assert clonotypes["clone_id"].to_list() == [
        "CASSLGQGYEQYF|TRBV5-1|TRBJ2-7",
        "CASSPDRGYTF|TRBV6-2|TRBJ2-7",
        "CASSPDRGYTF|TRBV7-9|TRBJ2-7",
    ]
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
    rows = [
        {**row(count=50), "cell_id": "AAAC-1"},
        {**row(count=20), "cell_id": "AAAC-1"},
        {**row(count=30), "cell_id": "CCCG-1"},
        {**row(junction_aa="CASSQDF", count=99), "cell_id": "GGGT-1"},
    ]
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
rows_strategy = st.lists(
    st.builds(
        row,
        junction_aa=junctions,
        v=st.sampled_from(["TRBV5-1*01", "TRBV6-2*01,TRBV6-3*01", "TRAV1-2*01", None]),
        count=st.one_of(st.none(), st.integers(0, 10**6)),
        productive=st.sampled_from(["T", "F", None]),
        locus=st.sampled_from(["TRB", "TRA", None]),
    ),
    min_size=1,
    max_size=40,
)


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


def test_count_and_productive_fields_have_the_types_ingest_parses():
    """ingest parses COUNT_FIELDS as integers and productive as a boolean without loading the AIRR schema
    (~0.1 s per job): the airr package's spec must agree."""
    types = airr_field_types()
    assert [types[name] for name in COUNT_FIELDS] == ["integer"] * len(COUNT_FIELDS)
    assert types["productive"] == "boolean"
    assert all(types[name] == "string" for name in READ_FIELDS if name not in (*COUNT_FIELDS, "productive"))


# ---- the two readers of tcrtrack.airr_reader: Polars' line split (fast) and Arrow's CSV reader ---------------


def polars_split(path: Path) -> pl.DataFrame | None:
    """The fast reader's frame, or None when it leaves the file to Arrow's reader."""
    sniffed = _sniff(path)
    return _read_lines(path, sniffed, [name for name in READ_FIELDS if name in sniffed.names])


def arrow_read(path: Path) -> pl.DataFrame:
    sniffed = _sniff(path)
    return _read_columns(path, sniffed, [name for name in READ_FIELDS if name in sniffed.names])[0]


cells = st.sampled_from(
    [
        "",
        "T",
        "F",
        "TRB",
        "TRA",
        "TRBV5-1*01",
        "TRBV6-2*01,TRBV6-3*01",
        "CASSLGQGYEQYF",
        "12",
        " 7 ",
        "0",
        "n/a",
        "é",
        "\x00",
        "NA",
    ]
)
layouts = st.fixed_dictionaries(
    {
        "newline": st.sampled_from(["\n", "\r\n"]),
        "bom": st.booleans(),
        "gzip": st.booleans(),
        "blank_after": st.sets(st.integers(0, 20), max_size=3),
        "note_last": st.booleans(),
        "notes": st.sampled_from([1, 12]),  # 12 unread columns after the read ones: the split stops before them
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cells, min_size=len(HEADER), max_size=len(HEADER)), min_size=1, max_size=20), layout=layouts
)
def test_polars_line_split_reads_what_arrow_reads(tmp_path, rows, layout):
    notes = [f"note{index}" for index in range(layout["notes"])]
    header = [*HEADER, *notes] if layout["note_last"] else [*notes, *HEADER]
    lines = ["\t".join(header)]
    for index, fields in enumerate(rows):
        values = [f"a note, {name}" for name in notes]
        lines.append("\t".join([*fields, *values] if layout["note_last"] else [*values, *fields]))
        lines.extend([""] * (index in layout["blank_after"]))
    text = ("\ufeff" if layout["bom"] else "") + layout["newline"].join(lines) + layout["newline"]
    path = tmp_path / ("s.tsv.gz" if layout["gzip"] else "s.tsv")
    path.write_bytes(gzip.compress(text.encode()) if layout["gzip"] else text.encode())
    fast, arrow = polars_split(path), arrow_read(path)
    assert fast is not None
    assert fast.schema == arrow.schema
    assert fast.equals(arrow)


GOOD_LINE = "r1\tT\tTRB\tTRBV5-1*01\tTRBJ2-7*01\t\tCASSLGQGYEQYF\t12"


RAGGED = {
    "too few fields": lambda good: "r2\tT\tTRB",
    "an extra field": lambda good: good + "\textra",
    "a trailing tab": lambda good: good + "\t",
    "a tab in the last column": lambda good: good[:-2] + "\t" + good[-2:],
    "the last column missing": lambda good: good.rsplit("\t", 1)[0],
    "a lone CR": lambda good: good.replace("\tTRB\t", "\tTRB\r\t"),  # Arrow ends the line there
}


@pytest.mark.parametrize("notes", [0, 1, 12])  # 12 unread columns after the read ones: the split stops before them
@pytest.mark.parametrize("case", list(RAGGED))
def test_polars_line_split_leaves_ragged_lines_to_arrow(tmp_path, case, notes):
    names = [f"note{index}" for index in range(notes)]
    header = "\t".join([*HEADER, *names])
    good = "\t".join([GOOD_LINE, *names])
    path = tmp_path / "s.tsv"
    path.write_text("\n".join([header, good, RAGGED[case](good), good]) + "\n")
    assert polars_split(path) is None
    path.write_text("\n".join([header, good, good]) + "\n")
    assert polars_split(path) is not None


def test_polars_line_split_leaves_latin1_and_truncated_gzip_to_arrow(tmp_path):
    header = "\t".join([*HEADER, "note"])
    path = tmp_path / "latin1.tsv"
    path.write_bytes(("\n".join([header, GOOD_LINE + "\tMüller"]) + "\n").encode("latin-1"))
    assert polars_split(path) is None
    assert arrow_read(path).height == 1  # the Latin-1 is in a column tcrtrack does not read
    data = gzip.compress(("\n".join([header] + [GOOD_LINE + "\tnote"] * 5000) + "\n").encode())
    path = tmp_path / "cut.tsv.gz"
    path.write_bytes(data[:-8])
    assert polars_split(path) is None


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
        productive = raw.filter(
            (pl.col("productive") == "T")
            & ~pl.col("junction_aa").str.contains(r"[*_~]")
            & pl.col("v_call").str.starts_with("IGH")
        )
        assert qc["kept_rows"] == productive.height


@needs_shared
def test_antibody_file_in_a_tcr_run_is_refused_clearly():
    with pytest.raises(InputFileError, match="no row is kept: 9 of 9 rows wrong_locus"):
        ingest_airr(SHARED / "airr-standards" / "good_rearrangement.tsv")


@needs_shared
def test_misspelled_column_and_productive_yes_in_the_bad_airr_file():
    with pytest.raises(InputFileError, match="productive"):
        ingest_airr(SHARED / "airr-standards" / "bad_rearrangement.tsv", locus="IGH")
