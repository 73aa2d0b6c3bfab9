"""Sample sheet: typing, defaults, metadata and one-line errors naming the row and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcrtrack.errors import SampleSheetError
from tcrtrack.samplesheet import read_sample_sheet

HEADER = "patient\tsample\tcompartment\tday\treplicate\tpath\tformat\tresponse"


def make_sheet(tmp_path: Path, rows: list[str], *, header: str = HEADER, files: bool = True) -> Path:
    if files:
        for line in rows:
            fields = dict(zip(header.split("\t"), line.split("\t"), strict=False))  # bad rows may be short
            if fields.get("path"):
                (tmp_path / fields["path"]).write_text("x")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("\n".join([header, *rows]) + "\n")
    return sheet


GOOD = [
    "P1\tP1_b0\tblood\t0\t1\tb0.tsv\tairr\tresponder",
    "P1\tP1_b0r2\tblood\t0\t2\tb0r2.tsv\t\tresponder",
    "P1\tP1_b14\tblood\t14\t\tb14.tsv\tairr\tresponder",
    "P1\tP1_t\ttumor\t-7\t1\tt.tsv\tairr\tresponder",
]


def test_good_sheet_is_typed_with_defaults_and_metadata(tmp_path):
    samples = read_sample_sheet(make_sheet(tmp_path, GOOD))
    assert samples["day"].to_list() == [0, 0, 14, -7]
    assert samples["replicate"].to_list() == [1, 2, 1, 1]
    assert samples["format"].to_list() == ["airr", "auto", "airr", "airr"]
    assert samples["response"].to_list() == ["responder"] * 4
    assert Path(samples["path"][0]) == (tmp_path / "b0.tsv").resolve()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["P1\tP1_b0\tblod\t0\t1\tb0.tsv\tairr\tx"],
            r"row 2 \(sample 'P1_b0'\): column 'compartment' is 'blod'\. Fix: use one of blood, tumor, product",
        ),
        (["P1\tP1 b0\tblood\t0\t1\tb0.tsv\tairr\tx"], r"row 2 .*column 'sample' is 'P1 b0'\. Fix: use only letters"),
        (["P1\tP1_b0\tblood\tday7\t1\tb0.tsv\tairr\tx"], r"row 2 .*column 'day' is 'day7'\. Fix: write a whole number"),
        (
            ["P1\tP1_b0\tblood\t0\t1\tb0.tsv\tairr\tx", "P1\tP1_b0\tblood\t7\t1\tb7.tsv\tairr\tx"],
            r"sample id 'P1_b0' is used on rows 2, 3\. Fix: give every row its own sample id",
        ),
        (
            ["P1\tP1_b0\tblood\t0\t1\tb0.tsv\tairr\tx", "P1\tP1_b7\tblood\t7\t1\tb0.tsv\tairr\tx"],
            r"rows 2, 3 point at the same file .*Fix: each sample needs its own repertoire file",
        ),
        (
            ["P1\tP1_b0\tblood\t0\t1\tb0.tsv\tairr\tx", "P1\tP1_b0b\tblood\t0\t1\tb0b.tsv\tairr\tx"],
            r"rows 2, 3 are the same patient, compartment and day with the same replicate number",
        ),
        (
            ["P1\tP1_b0\tblood\t0\t1\tb0.tsv\tadaptive\tx"],
            r"column 'format' is 'adaptive'\. Fix: use one of auto, airr, immunoseq_v2",
        ),
        (["P1\tP1_b0\tblood\t0\t1\t\tairr\tx"], r"row 2 .*column 'path' is empty"),
    ],
)
def test_bad_rows_give_one_line_with_row_and_fix(tmp_path, rows, message):
    with pytest.raises(SampleSheetError, match=message) as error:
        read_sample_sheet(make_sheet(tmp_path, rows))
    assert "\n" not in str(error.value)


def test_missing_column(tmp_path):
    header = HEADER.replace("\tcompartment", "")
    sheet = make_sheet(tmp_path, ["P1\tP1_b0\t0\t1\tb0.tsv\tairr\tx"], header=header)
    with pytest.raises(SampleSheetError, match=r"missing column\(s\) 'compartment'.*Fix: the sheet needs columns"):
        read_sample_sheet(sheet)


def test_missing_file(tmp_path):
    sheet = make_sheet(tmp_path, ["P1\tP1_b0\tblood\t0\t1\tnowhere.tsv\tairr\tx"], files=False)
    with pytest.raises(SampleSheetError, match=r"row 2 \(sample 'P1_b0'\): file .*nowhere\.tsv does not exist"):
        read_sample_sheet(sheet)


def test_comma_separated_sheet(tmp_path):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("patient,sample,compartment,day,path\nP1,P1_b0,blood,0,b0.tsv\n")
    with pytest.raises(SampleSheetError, match="comma-separated"):
        read_sample_sheet(sheet)


def test_empty_sheet(tmp_path):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(HEADER + "\n")
    with pytest.raises(SampleSheetError, match="no sample rows"):
        read_sample_sheet(sheet)
