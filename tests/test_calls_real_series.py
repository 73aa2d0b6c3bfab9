"""The calls on a real longitudinal series: one transplant patient's blood, seven days over four years
(Adaptive immunoSEQ v2, top 1,000 sequences per sample; ../shared/data/lymphoseq, see its SOURCE.md).
Most of the repertoire changes between these days, which broke the earlier beta-binomial fit."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tcrtrack.formats import ingest_converted
from tcrtrack.patient import CallSettings, analyse_patient

SERIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "lymphoseq"
DAYS = (0, 32, 83, 369, 949, 1320, 1496)

pytestmark = pytest.mark.skipif(
    not SERIES.is_dir(),
    reason=f"real data not found at {SERIES} (../shared is "
    "beside the project root on the developers' machines and in CI only)",
)


@pytest.fixture(scope="module")
def series():
    tables = {}
    for day in DAYS:
        result = ingest_converted(
            SERIES / f"TRB_Unsorted_{day}.tsv",
            fmt="immunoseq_v2",
            locus="TRB",
            productive_only=True,
            min_junction_aa_length=5,
            definition="aa_vj",
        )
        tables[f"d{day}"] = result.clonotypes
    samples = pl.DataFrame(
        {"patient": "LS", "sample": [f"d{d}" for d in DAYS], "compartment": "blood", "day": list(DAYS), "replicate": 1}
    )
    return samples, tables


def test_default_model_calls_clones_where_fisher_calls_many(series):
    samples, tables = series
    fisher = analyse_patient(samples, tables, settings=CallSettings(model="fisher"))
    default = analyse_patient(samples, tables, settings=CallSettings())
    n_fisher = int(fisher.clones["expanded_in_blood"].sum())
    n_default = int(default.clones["expanded_in_blood"].sum())
    assert n_fisher > 300
    assert n_default >= 0.2 * n_fisher  # the beta-binomial called 0-1 here
    assert n_default <= n_fisher
    per_day = [int(default.clones[f"blood_d{d}_significant"].sum()) for d in DAYS[1:]]
    assert sum(d > 0 for d in per_day) >= 4


def test_every_fit_that_could_not_stand_alone_says_so(series):
    samples, tables = series
    calls = analyse_patient(samples, tables, settings=CallSettings())
    fits = (
        calls.noise.filter(pl.col("comparison").str.starts_with("blood_d"))
        .group_by("comparison")
        .agg(pl.col("source").first(), pl.col("note").first(), pl.col("beta").first(), pl.col("null_share").first())
    )
    for row in fits.iter_rows(named=True):
        at_bound = row["beta"] >= 0.5 or row["null_share"] < 0.5
        borrowed = row["source"] in ("fallback", "poisson")
        if at_bound or borrowed:
            assert row["note"], row  # never silently
    notes = " ".join(calls.notes)
    assert "blood_d32" in notes  # day 32 shares 4 clones with day 0: the borrowed shape is named
