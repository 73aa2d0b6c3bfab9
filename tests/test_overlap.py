"""Overlap metrics against hand-worked values and a brute-force reference; public clones."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from tcrtrack.io import read_tsv
from tcrtrack.overlap import overlap_matrix, pairwise_overlap, patient_overlap, public_clones, sample_order
from tcrtrack.pipeline import overlap_cohort_step, overlap_step


def table(counts: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"clone_id": list(counts), "count": list(counts.values())}, schema={"clone_id": pl.Utf8, "count": pl.Int64}
    )


def pair(frame: pl.DataFrame, a: str, b: str) -> dict:
    return frame.filter((pl.col("sample_a") == a) & (pl.col("sample_b") == b)).row(0, named=True)


def test_hand_worked_example():
    # x = (2, 1, 1, 0), y = (1, 0, 3, 1): X = 4, Y = 5, sum xy = 5, Dx = 6/16, Dy = 11/25
    # MH = 2*5 / ((0.375 + 0.44) * 4 * 5) = 10 / 16.3; A = {c1,c2,c3}, B = {c1,c3,c4}: 2 shared, 4 in union
    result = pairwise_overlap({"A": table({"c1": 2, "c2": 1, "c3": 1}), "B": table({"c1": 1, "c3": 3, "c4": 1})})
    row = result.row(0, named=True)
    assert (row["sample_a"], row["sample_b"]) == ("A", "B")
    assert row["morisita_horn"] == pytest.approx(10 / 16.3)
    assert row["jaccard"] == pytest.approx(2 / 4)
    assert row["overlap_coefficient"] == pytest.approx(2 / 3)
    assert (row["richness_a"], row["richness_b"], row["shared_clones"], row["union_clones"]) == (3, 3, 2, 4)
    assert row["shared_fraction_a"] == pytest.approx(3 / 4)
    assert row["shared_fraction_b"] == pytest.approx(4 / 5)


def test_limits_identical_proportional_disjoint_and_subset():
    base = {"c1": 10, "c2": 5, "c3": 1}
    result = pairwise_overlap(
        {
            "same": table(base),
            "double": table({k: 2 * v for k, v in base.items()}),
            "other": table({"d1": 4, "d2": 4}),
            "subset": table({"c1": 3, "c2": 1}),
        }
    )
    same_double = pair(result, "same", "double")
    assert same_double["morisita_horn"] == pytest.approx(1.0)
    assert same_double["jaccard"] == pytest.approx(1.0)
    disjoint = pair(result, "same", "other")
    assert disjoint["morisita_horn"] == 0.0 and disjoint["jaccard"] == 0.0 and disjoint["shared_clones"] == 0
    subset = pair(result, "same", "subset")
    assert subset["overlap_coefficient"] == pytest.approx(1.0)
    assert subset["jaccard"] == pytest.approx(2 / 3)
    assert result.height == 6  # every unordered pair once


def test_empty_sample_gives_nulls_not_errors():
    result = pairwise_overlap({"A": table({"c1": 3}), "E": table({})})
    row = result.row(0, named=True)
    assert row["richness_b"] == 0
    assert row["morisita_horn"] is None and row["overlap_coefficient"] is None
    assert row["jaccard"] == 0.0


def brute_force(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Dense reference implementation of the formulas, one pair at a time."""
    a, b = x > 0, y > 0
    mh = 2 * (x * y).sum() / (((x**2).sum() / x.sum() ** 2 + (y**2).sum() / y.sum() ** 2) * x.sum() * y.sum())
    return {
        "morisita_horn": mh,
        "jaccard": (a & b).sum() / (a | b).sum(),
        "overlap_coefficient": (a & b).sum() / min(a.sum(), b.sum()),
    }


def test_vectorised_join_matches_brute_force_on_random_repertoires():
    rng = np.random.default_rng(7)
    n_clones, names = 400, ["s1", "s2", "s3", "s4"]
    dense = {s: rng.negative_binomial(0.3, 0.1, n_clones) * (rng.random(n_clones) < 0.5) for s in names}
    tables = {s: table({f"c{i}": int(v) for i, v in enumerate(c) if v > 0}) for s, c in dense.items()}
    result = pairwise_overlap(tables)
    for a, b in itertools.combinations(names, 2):
        expected = brute_force(dense[a].astype(float), dense[b].astype(float))
        row = pair(result, a, b)
        for metric, value in expected.items():
            assert row[metric] == pytest.approx(value, rel=1e-12), (a, b, metric)


def test_duplicate_clone_rows_are_summed():
    one = pairwise_overlap({"A": pl.concat([table({"c1": 1}), table({"c1": 2})]), "B": table({"c1": 3})})
    assert one["morisita_horn"][0] == pytest.approx(1.0)
    assert one["richness_a"][0] == 1


def sheet() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient": ["P1"] * 5,
            "sample": ["t28", "b0r2", "b14", "b0r1", "tm7"],
            "compartment": ["tumor", "blood", "blood", "blood", "tumor"],
            "day": [28, 0, 14, 0, -7],
            "replicate": [1, 2, 1, 1, 1],
        }
    )


def test_samples_ordered_by_compartment_then_day_then_replicate():
    assert sample_order(sheet()) == ["b0r1", "b0r2", "b14", "tm7", "t28"]


def test_patient_overlap_adds_sample_metadata_and_matrix_is_symmetric():
    tables = {s: table({"c1": i + 1, f"x{s}": 2}) for i, s in enumerate(sheet()["sample"])}
    result = patient_overlap(sheet(), tables)
    assert result.height == 10
    assert result["sample_a"][0] == "b0r1" and result["sample_b"][0] == "b0r2"
    assert {"compartment_a", "day_a", "replicate_a", "compartment_b", "day_b", "replicate_b"} <= set(result.columns)
    order = sample_order(sheet())
    matrix = np.array(overlap_matrix(result, order), dtype=float)
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)


def clones(rows: list[tuple[str, str, str, int, int, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "junction_aa": pl.Utf8,
            "v_gene": pl.Utf8,
            "j_gene": pl.Utf8,
            "count_s1": pl.Int64,
            "count_s2": pl.Int64,
            "flagged": pl.Boolean,
        },
        orient="row",
    )


def test_public_clones_by_junction_v_and_j():
    result = public_clones(
        {
            "P1": clones(
                [
                    ("CASSAF", "TRBV1", "TRBJ1", 3, 2, False),
                    ("CASSBF", "TRBV2", "TRBJ1", 1, 0, False),
                    ("CASSAF", "TRBV1", "TRBJ1", 1, 0, False),
                ]
            ),  # same rearrangement twice (nt definition)
            "P2": clones([("CASSAF", "TRBV1", "TRBJ1", 0, 4, True), ("CASSBF", "TRBV3", "TRBJ1", 5, 0, False)]),
            "P3": clones([("CASSAF", "TRBV1", "TRBJ1", 0, 0, False), ("CASSCF", "TRBV2", "TRBJ1", 1, 1, False)]),
        }
    )
    assert result.height == 1  # CASSBF differs in V; P3's CASSAF has no templates
    row = result.row(0, named=True)
    assert (row["junction_aa"], row["n_patients"], row["patients"]) == ("CASSAF", 2, "P1,P2")
    assert row["counts"] == "P1:6,P2:4" and row["total_count"] == 10
    assert row["n_flagged_patients"] == 1 and row["flagged_in"] == "P2"
    none = public_clones({"P1": clones([("CASSAF", "TRBV1", "TRBJ1", 1, 0, False)])})
    assert none.height == 0 and "flagged_in" in none.columns


def test_steps_write_tables(tmp_path):
    (tmp_path / "samples.tsv").write_text(
        "patient\tsample\tcompartment\tday\tpath\nP1\tb0\tblood\t0\tb0.tsv\nP1\tt28\ttumor\t28\tt28.tsv\n"
    )
    paths = []
    for name, counts in {"b0": {"c1": 5, "c2": 1}, "t28": {"c1": 1, "c3": 2}}.items():
        path = tmp_path / f"{name}.parquet"
        table(counts).write_parquet(path)
        paths.append(str(path))
    overlap_step(patient="P1", clonotypes=paths, sheet=str(tmp_path / "samples.tsv"), out=str(tmp_path / "o.tsv"))
    written = read_tsv(tmp_path / "o.tsv")
    assert written["patient"].to_list() == ["P1"] and written["shared_clones"][0] == 1
    clones([("CASSAF", "TRBV1", "TRBJ1", 1, 0, False)]).with_columns(patient=pl.lit("P1")).write_parquet(
        tmp_path / "c1.parquet"
    )
    clones([("CASSAF", "TRBV1", "TRBJ1", 2, 0, True)]).with_columns(patient=pl.lit("P2")).write_parquet(
        tmp_path / "c2.parquet"
    )
    overlap_cohort_step(
        overlaps=[str(tmp_path / "o.tsv")],
        clones=[str(tmp_path / "c1.parquet"), str(tmp_path / "c2.parquet")],
        overlap_out=str(tmp_path / "co.tsv"),
        public_out=str(tmp_path / "pub.tsv"),
    )
    assert read_tsv(tmp_path / "pub.tsv")["patients"].to_list() == ["P1,P2"]
    assert read_tsv(tmp_path / "co.tsv").height == 1


@pytest.mark.parametrize("min_patients", [2, 3])
def test_public_clones_equal_a_plain_python_count_and_read_lazily(min_patients):
    """Random cohorts (few distinct keys, so most are shared; zero counts; repeated keys within a patient)
    against a dictionary count written independently; DataFrames and LazyFrames give the same table."""
    rng = np.random.default_rng(min_patients)
    cohort, expected = {}, {}
    for p in range(5):
        rows = [
            (
                f"CAS{rng.integers(12)}F",
                f"TRBV{rng.integers(3)}",
                "TRBJ1",
                int(rng.integers(0, 3)),
                int(rng.integers(0, 2)),
                bool(rng.random() < 0.1),
            )
            for _ in range(40)
        ]
        cohort[f"P{p}"] = clones(rows)
        for junction, v, j, a, b, flagged in rows:
            if a + b:
                entry = expected.setdefault((junction, v, j), {}).setdefault(f"P{p}", [0, False])
                entry[0] += a + b
                entry[1] |= flagged
    public = {key: by for key, by in expected.items() if len(by) >= min_patients}
    result = public_clones(cohort, min_patients=min_patients)
    assert result.height == len(public) > 0
    for row in result.iter_rows(named=True):
        by = public[(row["junction_aa"], row["v_gene"], row["j_gene"])]
        assert row["patients"] == ",".join(sorted(by)) and row["n_patients"] == len(by)
        assert row["counts"] == ",".join(f"{p}:{by[p][0]}" for p in sorted(by))
        assert row["total_count"] == sum(c for c, _ in by.values())
        assert row["n_flagged_patients"] == sum(f for _, f in by.values())
    assert public_clones({p: t.lazy() for p, t in cohort.items()}, min_patients=min_patients).equals(result)
