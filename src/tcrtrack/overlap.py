"""Clone overlap between repertoires, and public clones shared across patients.

Pairwise overlap of every two samples of a patient is computed in one pass by a self-join of the
long ``(sample, clone_id, count)`` table on ``clone_id`` (as integer codes): only clones present in
both samples of a pair contribute to the shared sums, so the cost is the number of (clone, sample,
sample) triples, not samples x samples x clones (time and memory: benchmarks/README.md). With counts ``x_i``
(sample A) and ``y_i`` (sample B),
``X = sum x_i``, ``Y = sum y_i``, clone sets ``A = {i: x_i > 0}``, ``B = {i: y_i > 0}``:

- **Morisita–Horn** (Morisita 1959, Mem Fac Sci Kyushu Univ E 3:65; Horn 1966, Am Nat 100:419)::

      C_MH = 2 sum_i x_i y_i / ((D_x + D_y) X Y),   D_x = sum_i x_i^2 / X^2,  D_y = sum_i y_i^2 / Y^2

  i.e. ``2 sum p_i q_i / (sum p_i^2 + sum q_i^2)`` on frequencies: 1 for identical clone frequencies,
  0 for no shared clone; dominated by the large clones and nearly independent of depth, the usual
  abundance-weighted overlap of TCR repertoires (Rempala & Seweryn 2013, J Theor Biol 325:1;
  tcR/immunarch, Nazarov et al. 2015, BMC Bioinformatics 16:175).
- **Jaccard** (Jaccard 1912, New Phytol 11:37): ``|A ∩ B| / |A ∪ B|`` (presence only, depth-sensitive).
- **Overlap coefficient** (Szymkiewicz–Simpson; Vijaymeena & Kavitha 2016, MLAIJ 3:19):
  ``|A ∩ B| / min(|A|, |B|)``: 1 when the smaller repertoire is contained in the larger one.
- **Shared fraction** of A: ``sum_{i in A ∩ B} x_i / X``, the share of A's templates that are in clones
  also seen in B (and likewise for B).

Public clones are the same rearrangement (``junction_aa`` + V gene + J gene, whatever the configured
clonotype definition) seen in two or more patients (Venturi et al. 2008, Nat Rev Immunol 8:231).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

PUBLIC_KEY: tuple[str, ...] = ("junction_aa", "v_gene", "j_gene")
_SAMPLE_COLUMNS = ("compartment", "day", "replicate")


def pairwise_overlap(tables: Mapping[str, pl.DataFrame], *, order: Sequence[str] | None = None) -> pl.DataFrame:
    """Overlap metrics of every unordered pair of samples.

    Parameters
    ----------
    tables
        Sample id -> clonotype table with ``clone_id`` and ``count``.
    order
        Sample order; pairs are ``(a, b)`` with ``a`` before ``b`` in it (default: ``tables``' order).

    Returns
    -------
    polars.DataFrame
        One row per pair: ``sample_a, sample_b, richness_a, richness_b, shared_clones, union_clones,
        morisita_horn, jaccard, overlap_coefficient, shared_fraction_a, shared_fraction_b`` (see the
        module docstring for the formulas). A metric that is undefined (an empty sample) is null.
    """
    order = list(order if order is not None else tables)
    # One row per (sample, clone) with a positive count, keyed by integers: the sample's rank in ``order`` and
    # a 32-bit code of clone_id (exact: one code per distinct string), so that the self-join holds integers.
    frames = [
        tables[name].select(pl.lit(i, dtype=pl.Int32).alias("rank"), pl.col("clone_id"), pl.col("count").cast(pl.Int64))
        for i, name in enumerate(order)
    ]
    codes = (
        pl.concat(frames) if frames else pl.DataFrame(schema={"rank": pl.Int32, "clone_id": pl.Utf8, "count": pl.Int64})
    )
    codes = (
        codes.filter(pl.col("count") > 0)
        .with_columns(key=pl.col("clone_id").cast(pl.Categorical).to_physical())
        .drop("clone_id")
        .group_by("rank", "key")
        .agg(pl.col("count").sum())
    )
    names = pl.DataFrame({"rank": list(range(len(order))), "name": order}, schema={"rank": pl.Int32, "name": pl.Utf8})
    totals = codes.group_by("rank").agg(
        richness=pl.len().cast(pl.Int64),
        total=pl.col("count").sum().cast(pl.Float64),
        sum_sq=(pl.col("count").cast(pl.Float64) ** 2).sum(),
    )
    totals = (
        names.join(totals, on="rank", how="left")
        .with_columns(pl.col("richness").fill_null(0), pl.col("total").fill_null(0.0), pl.col("sum_sq").fill_null(0.0))
        .drop("rank")
        .rename({"name": "sample"})
    )
    shared = (
        codes.join(codes, on="key", suffix="_b")
        .filter(pl.col("rank") < pl.col("rank_b"))
        .group_by("rank", "rank_b")
        .agg(
            shared_clones=pl.len().cast(pl.Int64),
            cross=(pl.col("count").cast(pl.Float64) * pl.col("count_b")).sum(),
            shared_count_a=pl.col("count").sum().cast(pl.Float64),
            shared_count_b=pl.col("count_b").sum().cast(pl.Float64),
        )
    )
    shared = (
        shared.join(names.rename({"name": "sample_a"}), on="rank")
        .join(names.rename({"rank": "rank_b", "name": "sample_b"}), on="rank_b")
        .drop("rank", "rank_b")
    )
    pairs = pl.DataFrame(
        [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]],
        schema={"sample_a": pl.Utf8, "sample_b": pl.Utf8},
        orient="row",
    )
    a_side = totals.rename({"sample": "sample_a", "richness": "richness_a", "total": "total_a", "sum_sq": "sum_sq_a"})
    b_side = totals.rename({"sample": "sample_b", "richness": "richness_b", "total": "total_b", "sum_sq": "sum_sq_b"})
    frame = (
        pairs.join(a_side, on="sample_a", how="left")
        .join(b_side, on="sample_b", how="left")
        .join(shared, on=["sample_a", "sample_b"], how="left")
        .with_columns(
            pl.col("shared_clones").fill_null(0),
            pl.col("cross").fill_null(0.0),
            pl.col("shared_count_a").fill_null(0.0),
            pl.col("shared_count_b").fill_null(0.0),
        )
    )
    d_a = pl.col("sum_sq_a") / pl.col("total_a") ** 2
    d_b = pl.col("sum_sq_b") / pl.col("total_b") ** 2
    both = (pl.col("total_a") > 0) & (pl.col("total_b") > 0)
    union = pl.col("richness_a") + pl.col("richness_b") - pl.col("shared_clones")
    smaller = pl.min_horizontal("richness_a", "richness_b")
    return frame.select(
        "sample_a",
        "sample_b",
        "richness_a",
        "richness_b",
        "shared_clones",
        union.alias("union_clones"),
        pl.when(both)
        .then(2 * pl.col("cross") / ((d_a + d_b) * pl.col("total_a") * pl.col("total_b")))
        .alias("morisita_horn"),
        pl.when(union > 0).then(pl.col("shared_clones") / union).alias("jaccard"),
        pl.when(smaller > 0).then(pl.col("shared_clones") / smaller).alias("overlap_coefficient"),
        pl.when(pl.col("total_a") > 0).then(pl.col("shared_count_a") / pl.col("total_a")).alias("shared_fraction_a"),
        pl.when(pl.col("total_b") > 0).then(pl.col("shared_count_b") / pl.col("total_b")).alias("shared_fraction_b"),
    )


def sample_order(samples: pl.DataFrame) -> list[str]:
    """Samples ordered by compartment (blood, tumour, product, then others), day and replicate."""
    from tcrtrack.schema import COMPARTMENTS

    rank = {c: i for i, c in enumerate(COMPARTMENTS)}
    ordered = samples.with_columns(
        _c=pl.col("compartment").replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
    ).sort("_c", "compartment", "day", "replicate", "sample")
    return ordered["sample"].to_list()


def patient_overlap(samples: pl.DataFrame, tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """:func:`pairwise_overlap` of one patient's samples, in :func:`sample_order`, with each sample's
    compartment, day and replicate (``<column>_a``, ``<column>_b``)."""
    order = [s for s in sample_order(samples) if s in tables]
    table = pairwise_overlap(tables, order=order)
    meta = samples.select("sample", *_SAMPLE_COLUMNS)
    for side in ("a", "b"):
        renamed = meta.rename({c: f"{c}_{side}" for c in meta.columns})
        table = table.join(renamed, on=f"sample_{side}", how="left", maintain_order="left")
    front = ["sample_a", "sample_b", *(f"{c}_{s}" for s in ("a", "b") for c in _SAMPLE_COLUMNS)]
    return table.select(*front, pl.exclude(front))


def overlap_matrix(
    overlap: pl.DataFrame, order: Sequence[str], *, metric: str = "morisita_horn"
) -> list[list[float | None]]:
    """A symmetric ``len(order)`` x ``len(order)`` matrix of ``metric`` (1 on the diagonal) from a
    pairwise table."""
    index = {name: i for i, name in enumerate(order)}
    matrix: list[list[float | None]] = [[1.0 if i == j else None for j in range(len(order))] for i in range(len(order))]
    for a, b, value in overlap.select("sample_a", "sample_b", metric).iter_rows():
        if a in index and b in index:
            matrix[index[a]][index[b]] = matrix[index[b]][index[a]] = value
    return matrix


def _present_keys(table: pl.LazyFrame) -> pl.LazyFrame:
    """One patient's clones with their total count over its samples (> 0) and whether flagged."""
    names = table.collect_schema().names()
    count_columns = [c for c in names if c.startswith("count_")]
    flagged = pl.col("flagged").fill_null(False) if "flagged" in names else pl.lit(False)
    return table.select(
        *PUBLIC_KEY, pl.sum_horizontal(count_columns).cast(pl.Int64).alias("count"), flagged.alias("flagged")
    ).filter(pl.col("count") > 0)


def public_clones(clones: Mapping[str, pl.DataFrame | pl.LazyFrame], *, min_patients: int = 2) -> pl.DataFrame:
    """Rearrangements (``junction_aa`` + V + J) seen in ``min_patients`` or more patients.

    Two passes keep the memory at one patient's table (plus 8 bytes per distinct key and patient), not the
    whole cohort's: the first counts in how many patients each key occurs by its 64-bit hash, the second
    groups, exactly by the key strings, only the rows whose hash occurs in ``min_patients`` patients (a
    hash collision can only add a candidate, which the exact count then drops).

    Parameters
    ----------
    clones
        Patient id -> that patient's clone table (``results/patients/{patient}/clones.parquet``:
        ``junction_aa``, ``v_gene``, ``j_gene``, ``count_<sample>`` columns and, optionally, ``flagged``),
        as a DataFrame or a LazyFrame (e.g. ``polars.scan_parquet``: each is collected twice, one at a time).
    min_patients
        Minimum number of patients.

    Returns
    -------
    polars.DataFrame
        ``junction_aa, v_gene, j_gene, n_patients, patients, counts, total_count, n_flagged_patients,
        flagged_in``: ``patients`` and ``flagged_in`` are comma-separated patient ids, ``counts`` is
        ``P01:12,P03:4`` (templates summed over each patient's samples); ``flagged_in`` is null when
        the clone is flagged in no patient. Sorted by ``n_patients``,
        then ``total_count`` (descending), then the key.
    """
    present = {patient: _present_keys(table.lazy()) for patient, table in clones.items()}
    key_hash = pl.struct(*PUBLIC_KEY).hash()
    hashes = [frame.select(key_hash.alias("key_hash")).unique().collect() for frame in present.values()]
    occurrences = pl.concat(hashes) if hashes else pl.DataFrame(schema={"key_hash": pl.UInt64})
    candidates = occurrences.group_by("key_hash").len().filter(pl.col("len") >= min_patients)["key_hash"]
    per_patient = [
        frame.filter(key_hash.is_in(candidates.implode()))
        .group_by(*PUBLIC_KEY)
        .agg(pl.col("count").sum(), pl.col("flagged").any())
        .with_columns(patient=pl.lit(patient))
        .collect()
        for patient, frame in present.items()
    ]
    schema = {
        "junction_aa": pl.Utf8,
        "v_gene": pl.Utf8,
        "j_gene": pl.Utf8,
        "n_patients": pl.Int64,
        "patients": pl.Utf8,
        "counts": pl.Utf8,
        "total_count": pl.Int64,
        "n_flagged_patients": pl.Int64,
        "flagged_in": pl.Utf8,
    }
    if not per_patient:
        return pl.DataFrame(schema=schema)
    long = pl.concat(per_patient).sort("patient", *PUBLIC_KEY)
    grouped = (
        long.group_by(*PUBLIC_KEY)
        .agg(
            n_patients=pl.len().cast(pl.Int64),
            patients=pl.col("patient").str.join(","),
            counts=pl.concat_str("patient", pl.lit(":"), pl.col("count").cast(pl.Utf8)).str.join(","),
            total_count=pl.col("count").sum().cast(pl.Int64),
            n_flagged_patients=pl.col("flagged").sum().cast(pl.Int64),
            flagged_in=pl.col("patient").filter(pl.col("flagged")).str.join(","),
        )
        .with_columns(flagged_in=pl.when(pl.col("n_flagged_patients") > 0).then(pl.col("flagged_in")))
    )
    return (
        grouped.filter(pl.col("n_patients") >= min_patients)
        .sort(["n_patients", "total_count", *PUBLIC_KEY], descending=[True, True, False, False, False])
        .select(list(schema))
        .cast(schema)
    )
