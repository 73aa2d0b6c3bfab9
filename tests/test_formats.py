"""Vendor formats -> AIRR: detection, per-format conversion, gene names, AIRR validity, and real exports.

Real exports are read from ``../shared/data`` (never copied into the repo); those tests skip when it
is absent. Expected totals and clonotype counts are computed independently with plain polars on the
raw file and compared with what ``to_airr`` followed by tcrtrack's ingest yields. No real MiXCR
export is available: the MiXCR tests use v3 and v4 headers reconstructed from the MiXCR export
documentation (default ``exportClones`` columns) with hand-made rows.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import airr
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcrtrack.errors import InputFileError
from tcrtrack.formats import FORMATS, convert, detect_format, ingest_converted, to_airr, write_airr_tsv
from tcrtrack.formats._genes import standardise_name
from tcrtrack.genes import translate
from tcrtrack.ingest import ingest_airr

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"real exports not found at {SHARED} (../shared/data next to the repo; absent in an outside clone)",
)
LYMPHOSEQ = {"day0": SHARED / "lymphoseq" / "TRB_Unsorted_0.tsv", "day32": SHARED / "lymphoseq" / "TRB_Unsorted_32.tsv"}
TENX_SMALL = SHARED / "scirpy-10x" / "filtered_contig_annotations.csv"
TENX_LARGE = SHARED / "scirpy-10x" / "vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz"
IMMUNARCH = SHARED / "immunarch"
ADAPTIVE_NULLS = ["null", "", "NA", "unresolved"]

_CODON = {
    "A": "GCC",
    "C": "TGT",
    "D": "GAT",
    "E": "GAG",
    "F": "TTC",
    "G": "GGC",
    "H": "CAC",
    "I": "ATC",
    "K": "AAG",
    "L": "CTG",
    "M": "ATG",
    "N": "AAC",
    "P": "CCC",
    "Q": "CAG",
    "R": "CGC",
    "S": "AGC",
    "T": "ACC",
    "V": "GTG",
    "W": "TGG",
    "Y": "TAC",
    "*": "TGA",
}


def back_translate(aa: str) -> str:
    return "".join(_CODON[residue] for residue in aa)


def write_table(path: Path, header: list[str], rows: list[dict[str, object]], *, separator: str = "\t") -> Path:
    lines = [separator.join(header)]
    lines += [separator.join("" if row.get(name) is None else str(row.get(name)) for name in header) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def kept_counts(result) -> dict[str, int]:
    """QC row as {field: value} for the fields these tests compare."""
    return result.qc.row(0, named=True)


# --- detection -------------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("lymphoseq/TRB_Unsorted_0.tsv", "immunoseq_v2"),
        ("immunarch/immunoseq_1.txt", "immunoseq_v3"),
        ("immunarch/immunoseq_2.txt", "immunoseq_v3"),
        ("scirpy-10x/filtered_contig_annotations.csv", "10x_contigs"),
        ("scirpy-10x/vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz", "10x_contigs"),
        ("scirpy-10x/rearrangement_trb.tsv", "airr"),
        ("airr-standards/good_rearrangement.tsv.gz", "airr"),
        ("airr-standards/rearrangement-example.tsv.gz", "airr"),
        ("airr-standards/bad_rearrangement.tsv", "airr"),  # ingest then reports its misspelled column clearly
    ],
)
def test_detect_real_exports(relative: str, expected: str) -> None:
    assert detect_format(SHARED / relative) == expected


def test_unknown_header_names_file_and_lists_formats(tmp_path: Path) -> None:
    path = write_table(tmp_path / "mystery.tsv", ["clone", "size", "cdr3"], [{"clone": 1}])
    with pytest.raises(InputFileError) as caught:
        detect_format(path)
    message = str(caught.value)
    assert "mystery.tsv" in message and "clone, size, cdr3" in message
    assert all(name in message for name in FORMATS)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        detect_format(tmp_path / "absent.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        to_airr(tmp_path / "empty.tsv")


@needs_shared
def test_explicit_wrong_format_names_missing_columns() -> None:
    with pytest.raises(InputFileError, match=r"mixcr export lacks column\(s\) 'aaSeqCDR3' or 'nSeqCDR3'"):
        to_airr(LYMPHOSEQ["day0"], fmt="mixcr")
    with pytest.raises(InputFileError, match="not known"):
        to_airr(LYMPHOSEQ["day0"], fmt="adaptive")


# --- gene names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_name", "expected", "status"),
    [
        ("TCRBV05-01", "TRBV5-1", "mapped"),
        ("TCRBV05-01*01", "TRBV5-1*01", "mapped"),
        ("TCRBJ02-07*01", "TRBJ2-7*01", "mapped"),
        ("TCRBD01-01", "TRBD1", "mapped"),
        ("TCRBV20-or09_02", "TRBV20/OR9-2", "mapped"),  # Adaptive orphon spelling
        ("TRBV12-3*00", "TRBV12-3", "mapped"),  # MiXCR placeholder allele
        ("TRAV29DV5", "TRAV29/DV5", "mapped"),  # 10x spelling
        ("IGKV1-33*01", "IGKV1-33*01", "mapped"),
        ("TCRBV03", "TRBV3", "family"),  # not completed to TRBV3-1
        ("TCRBV99-99", "TCRBV99-99", "unmapped"),  # kept as given
    ],
)
def test_standardise_name(given_name: str, expected: str, status: str) -> None:
    assert standardise_name(given_name) == (expected, status)


def vdjtools_rows() -> list[dict[str, object]]:
    return [
        {
            "#count": 100,
            "freq": 0.5,
            "cdr3nt": back_translate("CASSLGQGYEQYF"),
            "cdr3aa": "CASSLGQGYEQYF",
            "v": "TRBV7-9,TRBV7-6",
            "d": "TRBD1",
            "j": "TRBJ2-7",
        },
        {
            "#count": 60,
            "freq": 0.3,
            "cdr3nt": back_translate("CASSPDRGNTIYF"),
            "cdr3aa": "CASSPDRGNTIYF",
            "v": "TRBV5-1",
            "d": ".",
            "j": "TRBJ1-3",
        },
        {
            "#count": 25,
            "freq": 0.1,
            "cdr3nt": back_translate("CASS*GGTEAFF"),
            "cdr3aa": "CASS*GGTEAFF",
            "v": "TRBV6-5",
            "d": ".",
            "j": "TRBJ1-1",
        },
        {
            "#count": 15,
            "freq": 0.1,
            "cdr3nt": back_translate("CASSL") + "GG" + back_translate("YEQYF"),
            "cdr3aa": "CASSL_GYEQYF",
            "v": "TRBV99-1",
            "d": ".",
            "j": "TRBJ2-7",
        },
    ]


def test_tidytcells_called_once_per_distinct_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tidytcells

    calls: list[str] = []
    original = tidytcells.tr.standardize

    def counting(symbol: str, **options: object) -> str | None:
        calls.append(symbol)
        return original(symbol, **options)

    monkeypatch.setattr(tidytcells.tr, "standardize", counting)
    standardise_name.cache_clear()
    rows = vdjtools_rows() * 50
    header = ["#count", "freq", "cdr3nt", "cdr3aa", "v", "d", "j"]
    to_airr(write_table(tmp_path / "v.tsv", header, rows))
    names = {part for row in rows[:4] for key in "vdj" if row[key] != "." for part in str(row[key]).split(",")}
    assert sorted(calls) == sorted(names)
    standardise_name.cache_clear()


# --- VDJtools --------------------------------------------------------------------------------------------


def test_vdjtools_hash_header_ties_and_markers(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "vdjtools.txt", ["#count", "freq", "cdr3nt", "cdr3aa", "v", "d", "j"], vdjtools_rows()
    )
    assert detect_format(path) == "vdjtools"
    result = to_airr(path)
    frame = result.frame
    assert frame["productive"].to_list() == ["T", "T", "F", "F"]
    assert frame["v_call"][0] == "TRBV7-9,TRBV7-6" and frame["d_call"][1] is None
    assert frame["locus"].to_list() == ["TRB"] * 4
    assert result.unmapped_genes == 1 and frame["v_call"][3] == "TRBV99-1"
    qc = kept_counts(ingest_converted(path))
    assert (qc["kept_count"], qc["non_productive_count"], qc["input_count"]) == (160, 40, 200)
    assert qc["v_ambiguous_rows"] == 1


# --- MiXCR (reconstructed headers) ------------------------------------------------------------------------

MIXCR_V3_HEADER = (
    "cloneId cloneCount cloneFraction targetSequences targetQualities allVHitsWithScore "
    "allDHitsWithScore allJHitsWithScore allCHitsWithScore allVAlignments allDAlignments "
    "allJAlignments allCAlignments nSeqFR1 minQualFR1 nSeqCDR1 minQualCDR1 nSeqFR2 minQualFR2 "
    "nSeqCDR2 minQualCDR2 nSeqFR3 minQualFR3 nSeqCDR3 minQualCDR3 nSeqFR4 minQualFR4 aaSeqFR1 "
    "aaSeqCDR1 aaSeqFR2 aaSeqCDR2 aaSeqFR3 aaSeqCDR3 aaSeqFR4 refPoints"
).split()
MIXCR_V4_HEADER = [
    "cloneId",
    "readCount",
    "readFraction",
    "uniqueMoleculeCount",
    "uniqueMoleculeFraction",
    *MIXCR_V3_HEADER[3:],
]


def mixcr_rows(count_column: str) -> list[dict[str, object]]:
    def row(clone_id: int, count: object, v: str, j: str, aa: str, nt: str | None = None, **extra: object):
        return {
            "cloneId": clone_id,
            count_column: count,
            "allVHitsWithScore": v,
            "allJHitsWithScore": j,
            "allDHitsWithScore": "TRBD1*00(40)" if v.startswith("TRB") else "",
            "nSeqCDR3": nt or back_translate(aa),
            "aaSeqCDR3": aa,
            "minQualCDR3": 38,
            **extra,
        }

    return [
        row(
            0,
            1520.6,
            "TRBV12-3*00(1520.3),TRBV12-4*00(1520.3),TRBV12-5*00(980.1)",
            "TRBJ2-7*00(250.5)",
            "CASSLAGGYEQYF",
        ),
        row(1, 300, "TRBV5-1*00(1350),TRBV5-5*00(1100)", "TRBJ1-1*00(240)", "CASS*GGTEAFF"),
        row(
            2,
            12,
            "TRBV6-5*00(1300)",
            "TRBJ2-7*00(230)",
            "CASSL_GYEQYF",
            back_translate("CASSL") + "GG" + back_translate("YEQYF"),
        ),
        row(3, 5, "IGHV3-23*00(1400)", "IGHJ4*00(200)", "CAKDRGYW"),
        row(4, 0.4, "TRBV20-1*00(1290)", "TRBJ1-2*00(240)", "CSARDRGNYGYTF"),
    ]


def test_mixcr_v3_clones(tmp_path: Path) -> None:
    path = write_table(tmp_path / "clones.txt", MIXCR_V3_HEADER, mixcr_rows("cloneCount"))
    assert detect_format(path) == "mixcr"
    result = to_airr(path)
    frame = result.frame
    assert result.count_source == "cloneCount"
    assert frame["v_call"].to_list() == ["TRBV12-3,TRBV12-4", "TRBV5-1", "TRBV6-5", "IGHV3-23", "TRBV20-1"]
    assert frame["productive"].to_list() == ["T", "F", "F", "T", "T"]
    assert frame["locus"].to_list() == ["TRB", "TRB", "TRB", "IGH", "TRB"]
    assert frame["duplicate_count"].to_list() == ["1521", "300", "12", "5", "1"]
    assert any("2 fractional" in note for note in result.notes)
    assert frame["junction"][0] == back_translate("CASSLAGGYEQYF")
    qc = kept_counts(ingest_converted(path))
    assert (qc["kept_rows"], qc["kept_count"]) == (2, 1522)
    assert (qc["wrong_locus_rows"], qc["non_productive_rows"], qc["v_ambiguous_rows"]) == (1, 2, 1)


def test_mixcr_v4_prefers_umis(tmp_path: Path) -> None:
    rows = mixcr_rows("readCount")
    for row, umis in zip(rows, (40, 9, 2, 1, 1), strict=True):
        row["uniqueMoleculeCount"] = umis
    path = write_table(tmp_path / "clones.tsv", MIXCR_V4_HEADER, rows)
    result = to_airr(path)
    assert result.count_source == "uniqueMoleculeCount (UMIs)"
    assert result.frame["umi_count"].to_list() == ["40", "9", "2", "1", "1"]
    assert result.frame["duplicate_count"].null_count() == 5
    assert result.frame["consensus_count"][0] == "1521"
    assert kept_counts(ingest_converted(path))["kept_count"] == 41


def test_mixcr_v2_spaced_headers(tmp_path: Path) -> None:
    rows = [
        {
            "Clone ID": 0,
            "Clone count": 10,
            "All V hits": "TRBV9*00(900)",
            "All J hits": "TRBJ2-1*00(200)",
            "AA. Seq. CDR3": "CASSVGQGNEQFF",
            "N. Seq. CDR3": back_translate("CASSVGQGNEQFF"),
        }
    ]
    path = write_table(tmp_path / "old.txt", list(rows[0]), rows)
    assert detect_format(path) == "mixcr"
    assert to_airr(path).frame.row(0, named=True)["v_call"] == "TRBV9"


def test_bad_count_names_row_and_column(tmp_path: Path) -> None:
    rows = mixcr_rows("cloneCount")
    rows[2]["cloneCount"] = "many"
    path = write_table(tmp_path / "clones.txt", MIXCR_V3_HEADER, rows)
    with pytest.raises(InputFileError, match="row 4, column 'cloneCount': 'many'"):
        to_airr(path)


# --- immunoSEQ (synthetic edge cases) ---------------------------------------------------------------------

V3_HEADER = [
    "rearrangement",
    "amino_acid",
    "frame_type",
    "templates",
    "reads",
    "v_gene",
    "v_allele",
    "v_gene_ties",
    "v_family",
    "j_gene",
    "j_allele",
    "v_index",
    "locus",
]


def test_immunoseq_v3_zero_templates_fall_back_to_reads(tmp_path: Path) -> None:
    rows = [
        {
            "rearrangement": "AA" + back_translate("CASSLGQGYEQYF") + "GG",
            "amino_acid": "CASSLGQGYEQYF",
            "frame_type": "In",
            "templates": 0,
            "reads": 321,
            "v_gene": "TCRBV07-09",
            "v_allele": 1,
            "j_gene": "TCRBJ02-07",
            "j_allele": 1,
            "v_index": 2,
            "locus": "TCRB",
        },
        {
            "rearrangement": "ACGT",
            "amino_acid": "null",
            "frame_type": "Out",
            "templates": "null",
            "reads": 20,
            "v_gene": "unresolved",
            "v_gene_ties": "TCRBV06-02,TCRBV06-03",
            "j_gene": "TCRBJ01-01",
            "v_index": -1,
            "locus": "TCRB",
        },
        {
            "rearrangement": "ACGT",
            "amino_acid": "CARDYW",
            "frame_type": "In",
            "templates": 0,
            "reads": 7,
            "v_gene": "unresolved",
            "v_family": "TCRBV03",
            "j_gene": "TCRBJ01-02",
            "locus": "IGH",
        },
    ]
    path = write_table(tmp_path / "v3.tsv", V3_HEADER, rows)
    result = to_airr(path)
    frame = result.frame
    assert result.count_source == "reads (templates absent)"
    assert frame["v_call"].to_list() == ["TRBV7-9*01", "TRBV6-2,TRBV6-3", "TRBV3"]
    assert frame["junction"].to_list() == [back_translate("CASSLGQGYEQYF"), None, None]
    assert frame["productive"].to_list() == ["T", "F", "T"]
    assert frame["locus"].to_list() == ["TRB", "TRB", "IGH"]
    qc = kept_counts(ingest_converted(path))
    assert (qc["kept_count"], qc["non_productive_count"], qc["input_count"]) == (321, 20, 348)
    assert qc["wrong_locus_rows"] + qc["locus_gene_mismatch_rows"] == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["In", "Out", "Stop"]),
            st.integers(0, 500),
            st.text("ACDEFGHIKLMNPQRSTVWY", min_size=3, max_size=12),
            st.sampled_from(["TCRBV05-01", "TCRBV07-09", "unresolved"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_immunoseq_qc_identity_property(tmp_path: Path, rows: list[tuple[str, int, str, str]]) -> None:
    """Kept templates = templates of In rows with >= 5 aa, and nothing is lost: input = kept + dropped."""
    records = [
        {
            "rearrangement": back_translate(aa),
            "amino_acid": aa if status != "Out" else "null",
            "frame_type": status,
            "templates": count,
            "v_gene": v,
            "v_gene_ties": "TCRBV06-02,TCRBV06-03",
            "j_gene": "TCRBJ02-07",
            "v_index": 0,
            "locus": "TCRB",
        }
        for status, count, aa, v in rows
    ]
    path = write_table(tmp_path / "prop.tsv", V3_HEADER, records)
    raw = pl.DataFrame(rows, schema=["status", "count", "aa", "v"], orient="row")
    kept = raw.filter((pl.col("status") == "In") & (pl.col("aa").str.len_chars() >= 5) & (pl.col("count") > 0))
    if raw["count"].sum() == 0:  # templates 0 throughout = absent, and this file has no reads column
        with pytest.raises(InputFileError, match="templates, reads are 0 or empty on every row"):
            to_airr(path)
        return
    if kept.height == 0:
        with pytest.raises(InputFileError, match="no row is kept"):
            ingest_converted(path)
        return
    qc = kept_counts(ingest_converted(path))
    assert (qc["kept_rows"], qc["kept_count"]) == (kept.height, kept["count"].sum())
    dropped = sum(
        value for name, value in qc.items() if name.endswith("_count") and name not in ("input_count", "kept_count")
    )
    assert qc["input_count"] == raw["count"].sum() == qc["kept_count"] + dropped


# --- real exports: immunoSEQ ------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(
    ("sample", "count_column", "count_source"),
    [
        ("day0", "estimatedNumberGenomes", "templates (estimatedNumberGenomes)"),
        ("day32", "count (templates/reads)", "reads (templates absent)"),
    ],
)
def test_lymphoseq_v2_totals_and_clonotypes(sample: str, count_column: str, count_source: str) -> None:
    path = LYMPHOSEQ[sample]
    raw = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None, null_values=ADAPTIVE_NULLS)
    raw = raw.with_columns(pl.col(count_column).cast(pl.Int64))
    productive = raw.filter((pl.col("sequenceStatus") == "In") & (pl.col("aminoAcid").str.len_chars() >= 5))
    result = to_airr(path)
    assert result.count_source == count_source and result.unmapped_genes == 0
    ingested = ingest_converted(path, definition="aa")
    qc = kept_counts(ingested)
    assert qc["input_rows"] == raw.height and qc["input_count"] == raw[count_column].sum()
    assert (qc["kept_rows"], qc["kept_count"]) == (productive.height, productive[count_column].sum())
    assert qc["non_productive_count"] == raw.filter(pl.col("sequenceStatus") != "In")[count_column].sum()
    assert ingested.clonotypes.height == productive["aminoAcid"].n_unique()
    by_aa = productive.group_by("aminoAcid").agg(pl.col(count_column).sum())
    assert dict(ingested.clonotypes.select("junction_aa", "count").iter_rows()) == dict(by_aa.iter_rows())
    tied = productive.filter(pl.col("vGeneName").is_null() & pl.col("vGeneNameTies").str.contains(",")).height
    assert kept_counts(ingest_converted(path))["v_ambiguous_rows"] == tied


@needs_shared
@pytest.mark.parametrize("sample", ["day0", "day32"])
def test_lymphoseq_aminoacid_is_the_junction(sample: str) -> None:
    """immunoSEQ's aminoAcid runs C..F (the AIRR junction); the junction cut from the read translates to it."""
    frame = to_airr(LYMPHOSEQ[sample]).frame
    with_aa = frame.filter(pl.col("junction_aa").is_not_null())
    # conserved C and F/W on > 99% (day 32 has 3 'RAS...' CDR3s from a CGT codon and one 'CASSLAGT')
    assert with_aa["junction_aa"].str.starts_with("C").mean() > 0.99
    assert with_aa["junction_aa"].str.contains(r"[FW]$").mean() > 0.99
    cut = with_aa.filter(pl.col("junction").is_not_null())
    assert cut.height == with_aa.height  # 87-nt reads cover every junction in these files
    assert [translate(nt) for nt in cut["junction"]] == cut["junction_aa"].to_list()


@needs_shared
def test_immunarch_v3_files() -> None:
    one = to_airr(IMMUNARCH / "immunoseq_1.txt")
    assert one.frame.row(0, named=True) | {"junction": None} == {
        "sequence_id": "1",
        "locus": "TRB",
        "productive": "T",
        "v_call": "TRBV1*01",
        "d_call": "TRBD1*01",
        "j_call": "TRBJ2-1*01",
        "junction": None,
        "junction_aa": "CTCSGDRVDYAEQFF",
        "duplicate_count": "654",
        # a one-row excerpt of a sample (frequency 0.11): truncated, so its whole-sample frequency is kept
        "source_frequency": "0.1126614987",
    }
    assert one.frame["junction"][0] is None  # the junction runs past the 87-nt read: not invented
    # immunoseq_2-4 are NOD mouse repertoires; TCRBV13-02 is not a human gene
    human = to_airr(IMMUNARCH / "immunoseq_2.txt")
    assert human.unmapped_genes == 1 and "TCRBV13-02*01" in human.frame["v_call"].to_list()
    mouse = to_airr(IMMUNARCH / "immunoseq_2.txt", species="musmusculus")
    assert mouse.unmapped_genes == 0 and mouse.frame["v_call"][3] == "TRBV13-2*01"
    raw = pl.read_csv(IMMUNARCH / "immunoseq_2.txt", separator="\t", infer_schema=False)
    qc = kept_counts(ingest_converted(IMMUNARCH / "immunoseq_2.txt", species="musmusculus"))
    assert qc["kept_count"] == raw["templates"].cast(pl.Int64).sum() == 412


# --- real exports: 10x ------------------------------------------------------------------------------------


def tenx_expected(path: Path) -> pl.DataFrame:
    raw = pl.read_csv(path, infer_schema=False)
    kept = raw.filter(
        (pl.col("chain") == "TRB")
        & (pl.col("productive") == "True")
        & (pl.col("is_cell") == "True")
        & (pl.col("high_confidence") == "True")
    )
    return kept.group_by("cdr3", "v_gene", "j_gene").agg(cells=pl.col("barcode").n_unique())


@needs_shared
@pytest.mark.parametrize("path", [TENX_SMALL, TENX_LARGE], ids=["small", "pbmc"])
def test_10x_cells_per_clonotype(path: Path) -> None:
    expected = tenx_expected(path)
    result = ingest_converted(path)
    got = {(r["junction_aa"], r["v_gene"], r["j_gene"]): r["count"] for r in result.clonotypes.iter_rows(named=True)}
    assert got == {(c, v, j): n for c, v, j, n in expected.iter_rows()}
    raw = pl.read_csv(path, infer_schema=False)
    qc = kept_counts(result)
    assert qc["input_rows"] == raw.height
    assert qc["count_source"] == "cells (distinct barcodes); QC counts are UMIs"
    # TRA and IG contigs, and chimeric 'Multi' contigs whose V (else J) is not TRB, are ingest's wrong_locus
    calls = pl.coalesce(pl.col("v_gene").replace("None", None), pl.col("j_gene").replace("None", None))
    locus = pl.when(pl.col("chain") == "Multi").then(calls.str.slice(0, 3)).otherwise(pl.col("chain"))
    assert qc["wrong_locus_rows"] == raw.filter(locus != "TRB").height


@needs_shared
def test_10x_ig_rows_get_their_locus_and_two_chain_note() -> None:
    small = to_airr(TENX_SMALL)
    assert set(small.frame.filter(pl.col("locus").str.starts_with("IG"))["locus"]) == {"IGH", "IGK"}
    large = to_airr(TENX_LARGE)
    raw = pl.read_csv(TENX_LARGE, infer_schema=False)
    trb = raw.filter((pl.col("chain") == "TRB") & (pl.col("productive") == "True"))
    two = int((trb.group_by("barcode").len()["len"] > 1).sum())
    assert two == 95
    assert f"{trb['barcode'].n_unique()} cells with a productive TRB chain" in large.notes
    assert any(note.startswith(f"{two} cells with two TRB chains counted once per clonotype") for note in large.notes)
    assert large.count_source == "cells (distinct barcodes)" and large.unmapped_genes == 0


def test_10x_background_contigs_dropped(tmp_path: Path) -> None:
    header = [
        "barcode",
        "is_cell",
        "contig_id",
        "high_confidence",
        "chain",
        "v_gene",
        "d_gene",
        "j_gene",
        "productive",
        "cdr3",
        "cdr3_nt",
        "reads",
        "umis",
    ]
    base = {
        "chain": "TRB",
        "v_gene": "TRBV9",
        "d_gene": "None",
        "j_gene": "TRBJ2-1",
        "productive": "true",
        "cdr3": "CASSVGQGNEQFF",
        "cdr3_nt": back_translate("CASSVGQGNEQFF"),
        "reads": 100,
        "umis": 3,
    }
    rows = [
        {**base, "barcode": "A-1", "is_cell": "true", "contig_id": "A-1_contig_1", "high_confidence": "true"},
        {**base, "barcode": "B-1", "is_cell": "false", "contig_id": "B-1_contig_1", "high_confidence": "true"},
        {**base, "barcode": "C-1", "is_cell": "true", "contig_id": "C-1_contig_1", "high_confidence": "false"},
    ]
    path = write_table(tmp_path / "all_contig_annotations.csv", header, rows, separator=",")
    result = to_airr(path)
    assert result.frame["cell_id"].to_list() == ["A-1"]
    assert any(note.startswith("2 contigs not in a called cell") for note in result.notes)


# --- AIRR output -----------------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(
    "path",
    [LYMPHOSEQ["day0"], LYMPHOSEQ["day32"], IMMUNARCH / "immunoseq_1.txt", TENX_SMALL, TENX_LARGE],
    ids=lambda p: p.name,
)
def test_written_airr_is_valid_and_ingests_the_same(path: Path, tmp_path: Path) -> None:
    result = to_airr(path)
    out = write_airr_tsv(result.frame, tmp_path / "out.tsv")
    assert airr.validate_rearrangement(str(out))
    table = airr.read_rearrangement(str(out), validate=True)
    assert sum(1 for _ in table) == result.frame.height
    direct, via_file = ingest_converted(path), ingest_airr(out)
    assert direct.clonotypes.equals(via_file.clonotypes)


def test_write_gzip_and_required_fields(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "sequence_id": ["1"],
            "locus": ["TRB"],
            "productive": ["T"],
            "v_call": ["TRBV9"],
            "j_call": ["TRBJ2-1"],
            "junction_aa": ["CASSVGQGNEQFF"],
            "duplicate_count": ["3"],
        }
    )
    out = write_airr_tsv(frame, tmp_path / "x.tsv.gz")
    plain = tmp_path / "x.tsv"
    plain.write_bytes(gzip.decompress(out.read_bytes()))  # the airr package reads plain text only
    header = plain.read_text().splitlines()[0].split("\t")
    assert header[:3] == ["sequence_id", "sequence", "rev_comp"] and "d_cigar" in header
    assert airr.validate_rearrangement(str(plain))
    assert ingest_airr(out).clonotypes["count"].to_list() == [3]


def test_convert_and_pipeline_readers(tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "v.tsv",
        ["count", "freq", "cdr3nt", "cdr3aa", "v", "d", "j"],
        [{**row, "count": row.pop("#count")} for row in vdjtools_rows()],
    )
    result = convert(path, tmp_path / "out" / "v.airr.tsv", fmt="vdjtools")
    assert (tmp_path / "out" / "v.airr.tsv").exists() and result.fmt == "vdjtools"
    ingested = ingest_converted(
        str(path), fmt="vdjtools", locus="TRB", productive_only=True, min_junction_aa_length=5, definition="aa_vj"
    )
    assert ingested.clonotypes["count"].sum() == 160
    assert ingested.qc["format"][0] == "vdjtools"
