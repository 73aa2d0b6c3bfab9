"""Clone kinetics and persistence in blood after infusion: the infused product's clones and the
expanded and flagged clones.

Input is one patient's sample-sheet rows (``sample``, ``compartment``, ``day``, ``replicate``) and its
wide clone table (``results/patients/{patient}/clones.parquet``: ``count_<sample>`` for every sample,
plus ``expanded_in_blood``/``flagged``/``new_in_blood`` when the calls were made). Technical replicates
of a blood draw are pooled: the frequency of clone ``i`` at day ``d`` is
``f_id = sum_r c_idr / sum_r N_dr`` (counts ``c``, library depths ``N``). A clone is *detected* at a
day when its pooled count is > 0. Product samples (compartment ``product``, whatever their day) are
pooled the same way into one product; *product clones* are the clones with a product count > 0.

:func:`product_persistence`
    Per post-infusion blood day: product clones detected, their share of the blood, the product's
    top-N clones still detected, and the number expected from the sample's depth alone.
:func:`fit_decay` / :func:`clone_kinetics`
    Per clone: peak, last detection, and the half-life of the blood frequency after the peak
    (negative-binomial fit with a depth offset over every post-peak day, zeros kept:
    :mod:`tcrtrack.decay`); :func:`product_share_decay` the same for the product's total share.
:func:`cohort_kinetics` / :func:`kinetics_summary`
    All patients' clone kinetics, and one summary row per patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import polars as pl

# the per-clone fit lives in tcrtrack.decay; its names stay importable from here
from tcrtrack.decay import DECAY_SCHEMA, LN2, fit_decay, product_share_decay  # noqa: F401
from tcrtrack.design import Timepoint, reference_and_later, timepoints

#: Columns of :func:`product_persistence` (one row per post-infusion blood day).
PERSISTENCE_SCHEMA: dict[str, pl.DataType] = {
    "patient": pl.Utf8(),
    "day": pl.Int64(),
    "blood_samples": pl.Utf8(),
    "blood_depth": pl.Int64(),
    "product_samples": pl.Utf8(),
    "product_depth": pl.Int64(),
    "n_product_clones": pl.Int64(),
    "baseline_day": pl.Int64(),
    "n_product_clones_at_baseline": pl.Int64(),
    "n_detected": pl.Int64(),
    "share_detected": pl.Float64(),
    "n_detected_not_at_baseline": pl.Int64(),
    "blood_share": pl.Float64(),
    "top_n": pl.Int64(),
    "top_n_detected": pl.Int64(),
    "top_n_share_detected": pl.Float64(),
    "reference": pl.Utf8(),
    "expected_detected": pl.Float64(),
    "observed_over_expected": pl.Float64(),
    "expected_top_n_detected": pl.Float64(),
    "top_n_observed_over_expected": pl.Float64(),
}
#: Leading columns of :func:`clone_kinetics`; ``freq_blood_d<day>`` columns (every blood day) follow.
KINETICS_SCHEMA: dict[str, pl.DataType] = {
    "patient": pl.Utf8(),
    "clone_id": pl.Utf8(),
    "junction_aa": pl.Utf8(),
    "v_gene": pl.Utf8(),
    "j_gene": pl.Utf8(),
    "flagged": pl.Boolean(),
    "expanded_in_blood": pl.Boolean(),
    "new_in_blood": pl.Boolean(),
    "product_top_n": pl.Boolean(),
    "product_rank": pl.Int64(),
    "product_frequency": pl.Float64(),
    **{k: v for k, v in DECAY_SCHEMA.items() if k != "clone_id"},
}
GROUPS = ("flagged", "expanded_in_blood", "product_top_n")
PRODUCT_SUMMARY = (
    "product_blood_share_last_day",
    "product_share_detected_last_day",
    "product_observed_over_expected_last_day",
    "product_share_half_life_days",
    "product_share_half_life_note",
)
#: Columns of :func:`kinetics_summary`.
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "patient": pl.Utf8(),
    "last_blood_day": pl.Int64(),
    **{
        k: v
        for g in GROUPS
        for k, v in (
            (f"n_{g}", pl.Int64()),
            (f"n_{g}_half_life", pl.Int64()),
            (f"{g}_median_half_life_days", pl.Float64()),
            (f"{g}_detected_at_last_day_share", pl.Float64()),
        )
    },
    **{k: pl.Utf8() if k.endswith("note") else pl.Float64() for k in PRODUCT_SUMMARY},
}


def _pooled(clones: pl.DataFrame, samples: tuple[str, ...] | list[str]) -> tuple[pl.Expr, int]:
    counts = pl.sum_horizontal(pl.col(f"count_{s}") for s in samples)
    return counts, int(clones.select(counts.sum()).item())


def _patient_id(samples: pl.DataFrame) -> str | None:
    return samples["patient"][0] if "patient" in samples.columns and samples.height else None


def _product(samples: pl.DataFrame) -> list[str]:
    return samples.filter(pl.col("compartment") == "product").sort("day", "replicate", "sample")["sample"].to_list()


def _flag(clones: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name).fill_null(False) if name in clones.columns else pl.lit(False)


def detection_probability(frequency: np.ndarray, depth: int | np.ndarray, *, dispersion: float = 0.0) -> np.ndarray:
    """Probability that a clone of true frequency ``f`` is seen (count >= 1) in a library of ``depth``.

    ``P = 1 - (1 - f)**N`` (multinomial/binomial sampling of ``N`` templates; ``≈ 1 - exp(-f N)``,
    the Poisson limit) when ``dispersion = 0``; with Gamma-overdispersed frequencies (variance
    ``dispersion``, the simulator's and the negative-binomial noise model of Rytlewski et al. 2019,
    PLoS One 14:e0213684; Puelma Touzel et al. 2020, PLoS Comput Biol 16:e1007873) ``P = 1 - (1 + D f N)**(-1/D)``.
    Sampling-depth limits of repertoire detection: Laydon, Bangham & Asquith 2015, Phil Trans R Soc B
    370:20140291.

    Parameters
    ----------
    frequency
        True frequencies in ``[0, 1]``.
    depth
        Templates sequenced (scalar or broadcastable array).
    dispersion
        Overdispersion ``D >= 0`` of the library frequencies.

    Returns
    -------
    numpy.ndarray
        ``P(count >= 1)``, same shape as the broadcast inputs.
    """
    f = np.clip(np.asarray(frequency, dtype=float), 0.0, 1.0)
    n = np.asarray(depth, dtype=float)
    if dispersion < 0:
        raise ValueError("dispersion must be >= 0")
    with np.errstate(divide="ignore"):
        if dispersion == 0:
            return -np.expm1(n * np.log1p(-f))
        return -np.expm1(-np.log1p(dispersion * f * n) / dispersion)


def product_persistence(
    samples: pl.DataFrame,
    clones: pl.DataFrame,
    *,
    top_n: int = 100,
    reference: Literal["scaled", "product"] = "scaled",
    dispersion: float = 0.0,
    baseline_day: int | None = None,
) -> pl.DataFrame:
    """How much of the infused product is detectable in each post-infusion blood sample.

    For every blood day ``d > 0`` (replicates pooled, depth ``N_d``), with ``P`` the product clones,
    ``pi_i`` their pooled product frequency and ``T`` the product's ``top_n`` clones (by product count,
    ties by ``clone_id``): ``n_detected = #{i in P: c_id > 0}``, ``share_detected = n_detected / |P|``,
    ``blood_share = S_d = sum_{i in P} f_id``, ``top_n_share_detected`` the same over ``T``, and
    ``n_detected_not_at_baseline`` the detected product clones absent from baseline blood (the
    latest blood day <= 0, or ``baseline_day``), the cleanest evidence of infused cells.

    Expected detection, so that a shallow sample is not read as loss: each product clone is given a
    reference blood frequency ``r_i``; ``reference="scaled"`` (default) ``r_i = pi_i * S_d``, the
    frequency it would have if the product's clones sat in blood in their product proportions and
    took the share they take that day; ``reference="product"`` ``r_i = pi_i`` (as if blood were the
    product). ``expected_detected = sum_i P(detected | r_i, N_d)`` (:func:`detection_probability`)
    and ``observed_over_expected = n_detected / expected_detected``: ≈ 1 when every clone persists in
    proportion at that depth, < 1 when some clones were lost or others took over. With ``S_d = 0``
    the scaled expectation is 0 and the ratio is null (``blood_share`` = 0 already says "lost").
    Persistence of transferred clonotypes by TCR sequencing: Robbins et al. 2004, J Immunol
    173:7125.

    Parameters
    ----------
    samples
        The patient's sheet rows (``sample``, ``compartment``, ``day``, ``replicate``; ``patient``
        is copied when present).
    clones
        The patient's wide table with ``count_<sample>`` of every sample in ``samples``.
    top_n
        Size of the product's top clone set (fewer when the product has fewer clones).
    reference
        ``"scaled"`` or ``"product"``, see above.
    dispersion
        Overdispersion of :func:`detection_probability` (0 = binomial sampling).
    baseline_day
        Baseline blood day; ``None`` = the latest blood day <= 0.

    Returns
    -------
    polars.DataFrame
        :data:`PERSISTENCE_SCHEMA`, one row per post-infusion blood day; no rows without a product
        sample or without post-infusion blood.
    """
    if top_n < 1:
        raise ValueError("top_n must be >= 1")
    if reference not in ("scaled", "product"):
        raise ValueError("reference must be 'scaled' or 'product'")
    product = _product(samples)
    base, later = reference_and_later(timepoints(samples, "blood"), day=baseline_day)
    if not product or not later:
        return pl.DataFrame(schema=PERSISTENCE_SCHEMA)
    p_counts, p_depth = _pooled(clones, product)
    b_exprs = {p.day: _pooled(clones, p.samples) for p in later}
    at_base = _pooled(clones, base.samples)[0] if base is not None else pl.lit(0)
    table = clones.select(
        "clone_id", product_count=p_counts, at_base=at_base > 0, **{f"d{d}": e for d, (e, _) in b_exprs.items()}
    ).filter(pl.col("product_count") > 0)
    table = table.sort(["product_count", "clone_id"], descending=[True, False])
    pi = table["product_count"].to_numpy() / p_depth
    top = np.arange(table.height) < top_n
    at_base_arr = table["at_base"].to_numpy()
    rows = []
    for point in later:
        counts, depth = table[f"d{point.day}"].to_numpy(), b_exprs[point.day][1]
        seen = counts > 0
        share = counts.sum() / depth if depth else 0.0
        ref = pi * share if reference == "scaled" else pi
        prob = detection_probability(ref, depth, dispersion=dispersion)
        exp_all, exp_top = float(prob.sum()), float(prob[top].sum())
        rows.append(
            {
                "day": point.day,
                "blood_samples": ";".join(point.samples),
                "blood_depth": depth,
                "n_product_clones": table.height,
                "n_detected": int(seen.sum()),
                "share_detected": seen.mean(),
                "n_detected_not_at_baseline": int((seen & ~at_base_arr).sum()),
                "blood_share": share,
                "top_n": int(top.sum()),
                "top_n_detected": int(seen[top].sum()),
                "top_n_share_detected": seen[top].mean(),
                "expected_detected": exp_all,
                "observed_over_expected": seen.sum() / exp_all if exp_all > 0 else None,
                "expected_top_n_detected": exp_top,
                "top_n_observed_over_expected": seen[top].sum() / exp_top if exp_top > 0 else None,
            }
        )
    return (
        pl.DataFrame(rows)
        .with_columns(
            patient=pl.lit(_patient_id(samples)),
            product_samples=pl.lit(";".join(product)),
            product_depth=pl.lit(p_depth),
            baseline_day=pl.lit(base.day if base else None),
            n_product_clones_at_baseline=pl.lit(int(at_base_arr.sum()) if base else None),
            reference=pl.lit(reference),
        )
        .select(PERSISTENCE_SCHEMA.keys())
        .cast(PERSISTENCE_SCHEMA)
    )


def blood_frequencies(
    samples: pl.DataFrame, clones: pl.DataFrame, *, clone_ids: pl.Series | None = None
) -> tuple[pl.DataFrame, list[Timepoint]]:
    """Pooled blood counts and frequencies at every blood day (long: ``clone_id``, ``day``, ``count``,
    ``depth``, ``frequency``) of the clones ``clone_ids`` (default: all), and the blood timepoints.
    Depths are the pooled totals of the libraries, so ``clones`` must hold every clone of the patient."""
    points = timepoints(samples, "blood")
    subset = clones if clone_ids is None else clones.filter(pl.col("clone_id").is_in(clone_ids.implode()))
    frames = []
    for point in points:
        counts, depth = _pooled(clones, point.samples)
        frames.append(
            subset.select(
                "clone_id",
                day=pl.lit(point.day, dtype=pl.Int64),
                count=counts.cast(pl.Int64),
                depth=pl.lit(depth, dtype=pl.Int64),
                frequency=counts / max(depth, 1),
            )
        )
    schema = {"clone_id": pl.Utf8, "day": pl.Int64, "count": pl.Int64, "depth": pl.Int64, "frequency": pl.Float64}
    return (pl.concat(frames) if frames else pl.DataFrame(schema=schema)), points


def clone_kinetics(
    samples: pl.DataFrame,
    clones: pl.DataFrame,
    *,
    top_n: int = 100,
    min_post_peak_points: int = 3,
    dispersion: float = 0.0,
) -> pl.DataFrame:
    """Kinetics of one patient's flagged, expanded and top product clones in blood.

    Clones followed: ``flagged`` or ``expanded_in_blood`` (when the columns are there) and the
    product's ``top_n`` clones (by pooled product count, ties by ``clone_id``) when the patient has
    a product sample. Per clone the statistics of :func:`fit_decay` over the post-infusion blood
    days (replicates pooled), ``product_rank``/``product_frequency`` (null outside the product),
    and ``freq_blood_d<day>``, the pooled frequency at every blood day, baseline included.

    Parameters
    ----------
    samples
        The patient's sheet rows.
    clones
        The patient's wide table (every clone: depths are taken from it).
    top_n
        Product clones followed.
    min_post_peak_points, dispersion
        See :func:`fit_decay` (``kinetics.min_post_peak_points`` and ``kinetics.dispersion``).

    Returns
    -------
    polars.DataFrame
        :data:`KINETICS_SCHEMA` then ``freq_blood_d<day>``; flagged first, then expanded, then
        product clones by rank.
    """
    product = _product(samples)
    rank = pl.lit(None, dtype=pl.Int64)
    table = clones
    if product:
        p_counts, p_depth = _pooled(clones, product)
        table = (
            clones.with_columns(product_frequency=p_counts / p_depth, _pc=p_counts)
            .sort(["_pc", "clone_id"], descending=[True, False])
            .with_row_index("_row", offset=1)
        )
        rank = pl.when(pl.col("_pc") > 0).then(pl.col("_row").cast(pl.Int64))
    table = table.with_columns(
        product_rank=rank, flagged=_flag(clones, "flagged"), expanded_in_blood=_flag(clones, "expanded_in_blood")
    )
    table = table.with_columns(product_top_n=pl.col("product_rank").fill_null(top_n + 1) <= top_n)
    keep = table.filter(pl.col("flagged") | pl.col("expanded_in_blood") | pl.col("product_top_n"))
    long, points = blood_frequencies(samples, table, clone_ids=keep["clone_id"])
    decay = fit_decay(long.filter(pl.col("day") > 0), min_post_peak_points=min_post_peak_points, dispersion=dispersion)
    wide = long.pivot(on="day", index="clone_id", values="frequency") if long.height else keep.select("clone_id")
    wide = wide.rename({str(p.day): f"freq_blood_d{p.day}" for p in points if str(p.day) in wide.columns})
    keep = keep.with_columns(
        pl.lit(None).alias(c)
        for c in ("new_in_blood", "junction_aa", "v_gene", "j_gene", "product_frequency")
        if c not in keep.columns
    )
    out = (
        keep.select(
            pl.lit(_patient_id(samples)).alias("patient"),
            "clone_id",
            "junction_aa",
            "v_gene",
            "j_gene",
            "flagged",
            "expanded_in_blood",
            "new_in_blood",
            "product_top_n",
            "product_rank",
            pl.when(pl.col("product_rank").is_not_null()).then("product_frequency").alias("product_frequency"),
        )
        .join(decay, on="clone_id", how="left")
        .with_columns(
            half_life_note=pl.col("half_life_note").fill_null("not estimable: no post-infusion blood sample"),
            n_post_peak_points=pl.col("n_post_peak_points").fill_null(0),
        )
        .cast(KINETICS_SCHEMA)
        .join(wide, on="clone_id", how="left")
    )
    return out.sort(
        ["flagged", "expanded_in_blood", "product_rank", "peak_frequency", "clone_id"],
        descending=[True, True, False, True, False],
        nulls_last=True,
    )


def cohort_kinetics(tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Every patient's :func:`clone_kinetics` table in one (``patient`` set from the mapping key;
    ``freq_blood_d<day>`` columns of all patients' days, null where a patient has no such day). Tables
    read back from TSV are cast to :data:`KINETICS_SCHEMA`."""
    frames = [t.with_columns(patient=pl.lit(p)) for p, t in tables.items()]
    if not frames:
        return pl.DataFrame(schema=KINETICS_SCHEMA)
    out = pl.concat(
        [f.cast({c: t for c, t in KINETICS_SCHEMA.items() if c in f.columns}) for f in frames], how="diagonal_relaxed"
    )  # casts: tables read back from TSV may have all-null str columns
    days = sorted((c for c in out.columns if c.startswith("freq_blood_d")), key=lambda c: int(c[12:]))
    return out.select(*KINETICS_SCHEMA, *(pl.col(d).cast(pl.Float64) for d in days))


def _group_summary(kin: pl.DataFrame, group: str) -> dict[str, object]:
    rows = kin.filter(pl.col(group))
    half = rows["half_life_days"].drop_nulls()
    return {
        f"n_{group}": rows.height,
        f"n_{group}_half_life": half.len(),
        f"{group}_median_half_life_days": half.median() if half.len() else None,
        f"{group}_detected_at_last_day_share": rows["detected_at_last_day"].mean() if rows.height else None,
    }


def kinetics_summary(
    kinetics: Mapping[str, pl.DataFrame],
    persistence: Mapping[str, pl.DataFrame] | None = None,
    *,
    min_post_peak_points: int = 3,
    dispersion: float = 0.0,
) -> pl.DataFrame:
    """One row per patient: for the flagged, the expanded and the top product clones (overlapping
    groups: most product clones are also expanded), the number followed, the number with a
    half-life, the median half-life (days) and the share detected on the patient's last blood day; and, with a
    product, at the last blood day the product's
    ``blood_share``, ``share_detected`` and ``observed_over_expected``, and
    ``product_share_half_life_days``: :func:`product_share_decay`, the same negative-binomial fit of
    :func:`fit_decay` on the product clones' summed blood counts (the product seen as one clone).

    Parameters
    ----------
    kinetics
        Patient -> :func:`clone_kinetics` table.
    persistence
        Patient -> :func:`product_persistence` table (patients without one get nulls).
    min_post_peak_points, dispersion
        Of the product-share fit, see :func:`fit_decay`.
    """
    rows = []
    for patient, kin in kinetics.items():
        last = kin["last_blood_day"].drop_nulls()
        row: dict[str, object] = {"patient": patient, "last_blood_day": last[0] if last.len() else None}
        for group in GROUPS:
            row |= _group_summary(kin, group)
        per = (persistence or {}).get(patient)
        row |= dict.fromkeys(PRODUCT_SUMMARY)
        if per is not None and per.height:
            end = per.sort("day").row(-1, named=True)
            fit = product_share_decay(per, min_post_peak_points=min_post_peak_points, dispersion=dispersion)
            row |= {
                "product_blood_share_last_day": end["blood_share"],
                "product_share_detected_last_day": end["share_detected"],
                "product_observed_over_expected_last_day": end["observed_over_expected"],
                "product_share_half_life_days": fit["half_life_days"][0],
                "product_share_half_life_note": fit["half_life_note"][0],
            }
        rows.append(row)
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
