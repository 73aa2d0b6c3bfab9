"""Post-peak decay of a clone's blood counts, one row per clone: peak, last detection and half-life
(:func:`fit_decay`), and the same for the infused product's total blood share
(:func:`product_share_decay`). The per-clone negative-binomial fit with a depth offset and its
profile-likelihood interval are :func:`tcrtrack.nb_decay.fit_nb_decay` (model and references there).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from tcrtrack.nb_decay import fit_nb_decay

LN2 = math.log(2.0)

#: Columns of :func:`fit_decay` (one row per clone).
DECAY_SCHEMA: dict[str, pl.DataType] = {
    "clone_id": pl.Utf8(),
    "peak_day": pl.Int64(),
    "peak_frequency": pl.Float64(),
    "last_detected_day": pl.Int64(),
    "last_blood_day": pl.Int64(),
    "detected_at_last_day": pl.Boolean(),
    "n_post_peak_days": pl.Int64(),
    "n_post_peak_points": pl.Int64(),
    "decay_rate_per_day": pl.Float64(),
    "decay_rate_se": pl.Float64(),
    "fit_last_day": pl.Int64(),
    "fitted_peak_frequency": pl.Float64(),
    "half_life_days": pl.Float64(),
    "half_life_ci_low": pl.Float64(),
    "half_life_ci_high": pl.Float64(),
    "half_life_note": pl.Utf8(),
}


def fit_decay(long: pl.DataFrame, *, min_post_peak_points: int = 3, dispersion: float = 0.0) -> pl.DataFrame:
    """Peak, last detection and post-peak half-life of each clone's blood frequency.

    ``long`` holds one row per clone and post-infusion blood day (``clone_id``, ``day``, ``count``,
    ``depth``, ``frequency``; replicates pooled). Per clone:

    * ``peak_day``/``peak_frequency``: the day of the highest frequency (ties: the earliest); null
      when the clone is never detected after infusion.
    * ``last_detected_day``; ``detected_at_last_day`` (detected on ``last_blood_day``, the latest
      day in ``long``).
    * The fit uses **every blood day after the peak, detected or not** (``n_post_peak_days`` =
      ``n_post_peak_points``; days of depth 0 are left out): a negative-binomial log-linear model with
      the day's depth as offset (:mod:`tcrtrack.nb_decay`)::

          count_t ~ NB2(mu_t, D),  mu_t = N_t exp(b0 + b1 (t - t_peak)),  Var = mu_t + D mu_t**2

      so a day without the clone says "its expected count there is small", instead of being dropped
      (dropping zeros, or stopping at the first one, keeps only the lucky high draws near the
      detection limit and makes half-lives too long). ``decay_rate_per_day = -b1`` (Wald
      ``decay_rate_se``), ``half_life_days = ln 2 / (-b1)`` when ``b1 < 0``, and
      ``half_life_ci_low/high`` = ``ln 2 / (-b1)`` at the ends of the 95% profile-likelihood interval
      of ``b1`` (upper bound ``inf`` when the interval reaches ``b1 >= 0``). ``D``: ``dispersion > 0``
      fixes it; ``0`` (default) estimates it per clone (Cox-Reid adjusted maximum likelihood, see
      :func:`tcrtrack.nb_decay.fit_nb_decay`) in ``[1e-6, 10]``, or Poisson (``D = 0``) when that scores at
      least as high. First-order decay as in CAR-T
      cellular-kinetic models: Stein et al. 2019, CPT Pharmacometrics Syst Pharmacol 8:285.
    * ``fitted_peak_frequency = exp(b0)``, the fitted curve extrapolated back to the peak day, so the fit
      reads ``f(t) = fitted_peak_frequency * 2 ** (-(t - t_peak) / half_life_days)`` up to
      ``fit_last_day`` (the last post-peak day).
    * No half-life (``half_life_note`` says why) with fewer than ``min_post_peak_points`` post-peak
      days, no detection after the peak, detection on a single post-peak day (no finite maximum, or
      none worth the name), or ``b1 >= 0`` (``no decline after the peak``; a fitted fall of less than
      1e-9 in log frequency over the series counts as none).

    Parameters
    ----------
    long
        Columns ``clone_id``, ``day``, ``count``, ``depth``, ``frequency`` (post-infusion days only).
    min_post_peak_points
        Post-peak blood days needed for a half-life (zeros count).
    dispersion
        Fixed NB2 dispersion ``D`` (> 0), or 0: estimated per clone.

    Returns
    -------
    polars.DataFrame
        :data:`DECAY_SCHEMA`, one row per clone, ordered by ``clone_id``.
    """
    if min_post_peak_points < 1:
        raise ValueError("min_post_peak_points must be >= 1")
    if dispersion < 0:
        raise ValueError("dispersion must be >= 0")
    if long.height == 0:
        return pl.DataFrame(schema=DECAY_SCHEMA)
    d = long.select(
        "clone_id",
        pl.col("day").cast(pl.Int64),
        pl.col("count").cast(pl.Float64),
        pl.col("depth").cast(pl.Float64),
        "frequency",
    ).sort("clone_id", "day")
    last_day = int(d["day"].max())
    seen = pl.col("count") > 0
    per = (
        d.group_by("clone_id")
        .agg(
            peak=pl.col("day").sort_by(["frequency", "day"], descending=[True, False]).first(),
            peak_frequency=pl.col("frequency").max(),
            detected=seen.any(),
            last_detected_day=pl.col("day").filter(seen).max(),
        )
        .with_columns(
            peak_day=pl.when("detected").then("peak"), peak_frequency=pl.when("detected").then("peak_frequency")
        )
        .sort("clone_id")
    )
    post = (
        d.join(per.select("clone_id", "peak_day"), on="clone_id")
        .filter((pl.col("day") > pl.col("peak_day")) & (pl.col("depth") > 0))
        .sort("clone_id", "day")
    )
    stats_ = post.group_by("clone_id").agg(
        n_days=pl.len(), n_seen=seen.sum(), first=pl.col("day").min(), last=pl.col("day").max()
    )
    out = (
        per.join(stats_, on="clone_id", how="left")
        .with_columns(pl.col("n_days", "n_seen").fill_null(0))
        .sort("clone_id")
    )
    n_days, n_seen = out["n_days"].to_numpy(), out["n_seen"].to_numpy()
    fit_rows = (n_days >= min_post_peak_points) & (n_seen >= 2)
    size = out.height
    b0, b1, se, disp, low, high = (np.full(size, np.nan) for _ in range(6))
    if fit_rows.any():
        ids = out.filter(pl.Series(fit_rows))["clone_id"]
        sub = post.filter(pl.col("clone_id").is_in(ids.implode())).with_columns(
            pos=pl.int_range(pl.len()).over("clone_id"), row=pl.col("clone_id").rank("dense") - 1
        )
        m = int(sub["pos"].max()) + 1
        shape = (ids.len(), m)
        r, c = sub["row"].to_numpy(), sub["pos"].to_numpy()
        x, y, depth, mask = np.zeros(shape), np.zeros(shape), np.ones(shape), np.zeros(shape, dtype=bool)
        x[r, c] = (sub["day"] - sub["peak_day"]).to_numpy()
        y[r, c], depth[r, c], mask[r, c] = sub["count"].to_numpy(), sub["depth"].to_numpy(), True
        fit = fit_nb_decay(x, y, depth, mask, dispersion=dispersion if dispersion > 0 else None)
        idx = np.flatnonzero(fit_rows)
        b0[idx], b1[idx], se[idx], disp[idx] = fit.b0, fit.b1, fit.se_b1, fit.dispersion
        low[idx], high[idx] = fit.b1_low, fit.b1_high
    span = (out["last"] - out["peak_day"]).cast(pl.Float64).fill_null(np.nan).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        decays = fit_rows & (-b1 * span > 1e-9)
        half = np.where(decays, LN2 / -b1, np.nan)
        ci_low = np.where(decays, np.where(np.isfinite(low), LN2 / -low, 0.0), np.nan)
        ci_high = np.where(decays, np.where(high < 0, LN2 / -high, np.inf), np.nan)
    how = "fixed" if dispersion > 0 else "ML"
    notes = [
        "not estimable: not detected after infusion"
        if not det
        else f"not estimable: {k} post-peak day{'' if k == 1 else 's'}"
        if k < min_post_peak_points
        else "not estimable: not detected after the peak"
        if s == 0
        else "not estimable: detected on 1 post-peak day"
        if s == 1
        else "not estimable: no decline after the peak"
        if not dec
        else f"fitted on days {a}-{b} ({k} days, {s} detected; "
        + (f"NB dispersion {dd:.3g} {how})" if dd > 0 else "Poisson)")
        for det, k, s, dec, a, b, dd in zip(
            out["detected"], n_days, n_seen, decays, out["first"], out["last"], disp, strict=True
        )
    ]
    return (
        out.select("clone_id", "peak_day", "peak_frequency", "last_detected_day")
        .with_columns(
            last_blood_day=pl.lit(last_day),
            detected_at_last_day=pl.col("last_detected_day") == last_day,
            n_post_peak_days=out["n_days"],
            n_post_peak_points=out["n_days"],
            decay_rate_per_day=pl.Series(-b1),
            decay_rate_se=pl.Series(se),
            fit_last_day=pl.when(pl.Series(fit_rows)).then(out["last"]),
            fitted_peak_frequency=pl.Series(np.exp(b0)),
            half_life_days=pl.Series(half),
            half_life_ci_low=pl.Series(ci_low),
            half_life_ci_high=pl.Series(ci_high),
            half_life_note=pl.Series(notes, dtype=pl.Utf8),
        )
        .with_columns(pl.col(pl.Float64).fill_nan(None), pl.col("detected_at_last_day").fill_null(False))
        .cast(DECAY_SCHEMA)
    )


def product_share_decay(
    persistence: pl.DataFrame, *, min_post_peak_points: int = 3, dispersion: float = 0.0
) -> pl.DataFrame:
    """:func:`fit_decay` of the product's total blood share seen as one clone (``clone_id`` "product"):
    per post-infusion blood day the product clones' summed count ``round(blood_share * blood_depth)``
    out of ``blood_depth`` (a :func:`product_persistence` table)."""
    return fit_decay(
        persistence.select(
            pl.lit("product").alias("clone_id"),
            "day",
            count=(pl.col("blood_share") * pl.col("blood_depth")).round(),
            depth="blood_depth",
            frequency="blood_share",
        ),
        min_post_peak_points=min_post_peak_points,
        dispersion=dispersion,
    )
