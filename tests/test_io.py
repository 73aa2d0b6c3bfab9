"""Table writers: exact floats, NA for missing, atomic replacement."""

import polars as pl

from tcrtrack.io import read_tsv, write_tsv


def test_tsv_round_trip_keeps_small_floats_exactly(tmp_path):
    frame = pl.DataFrame({"q": [5e-7, 2.5e-5, 0.123456789, None], "n": [1, 2, 3, 4]})
    path = write_tsv(frame, tmp_path / "t.tsv")
    assert read_tsv(path).equals(frame)
    assert "NA" in path.read_text().splitlines()[-1]
    assert not list(tmp_path.glob(".*.tmp"))


def test_outputs_are_readable_by_others_as_the_umask_allows(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = write_tsv(pl.DataFrame({"a": [1]}), tmp_path / "t.tsv")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
