#!/usr/bin/env python
"""Does the half-life of product clones in blood come out right? (not part of the test run)

Cohorts are simulated with an infused product whose clones decay in blood with a known half-life
(:func:`tcrtrack.simulate.simulate_cohort`, ``product_half_life_days``), every repertoire is ingested
in-process (:func:`tcrtrack.ingest.ingest_airr`), aligned into the patient's wide table
(:func:`tcrtrack.patient.wide_counts`, what ``clones.parquet`` holds) and
:func:`tcrtrack.kinetics.clone_kinetics` / :func:`tcrtrack.kinetics.product_persistence` are run as the
workflow runs them. No Snakemake.

Reported per true half-life (pooled over seeds and patients):

* per clone (the product's top-N clones, and its top 10): clones followed, share with a half-life
  (``>= 3`` post-peak points), median estimate, IQR, relative error of the median
  ``(median - true) / true``, and the coverage of the 95% interval (share of estimated clones whose
  interval holds the truth; an unbounded upper end counts when the lower end is below the truth);
* the product's total blood share ``S_d`` fitted as one clone (one estimate per patient);
* detection: median over blood days of ``observed_over_expected`` (all product clones).

Then, near the detection limit (``--near-limit``, seconds): clones with a clear peak at day 7 and 5
post-peak days (14-70) whose expected counts fall from 3.5-5 to 0.5-0.7 (true half-life 20 days;
Poisson and Gamma-overdispersed D = 0.2), fitted by the negative-binomial GLM (:func:`fit_decay`)
and by the previous method on the same data (least squares of ln frequency over the peak and the
detected post-peak points up to the first zero, >= 3 of them; and the same without the peak), the
coverage of the 95% profile interval, and the fit's speed.

Run (about 1 minute on 2 cores)::

    python benchmarks/persistence.py --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from tcrtrack.ingest import ingest_airr
from tcrtrack.kinetics import (
    clone_kinetics,
    fit_decay,
    product_persistence,
    product_share_decay,
)
from tcrtrack.nb_decay import fit_nb_decay
from tcrtrack.patient import wide_counts
from tcrtrack.simulate import simulate_cohort
from tcrtrack.simulation.progress import stderr_counter

POST_DAYS = (7, 14, 28, 42, 56, 84)
SETTINGS = {
    "n_patients": 2,
    "n_clones": 5_000,
    "blood_depth": 40_000,
    "tumor_depth": 10_000,
    "post_days": POST_DAYS,
    "tumor_days": (-7, 28),
    "n_planted": (6, 3, 3),
    "product_patients": (0, 1),
    "n_product_clones": 500,
    "product_blood_share": 0.1,
    "dispersion": 0.1,
}


def run_one(args: tuple[float, int, int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulate one cohort and return (per-clone kinetics of product clones, per-day persistence)."""
    half_life, seed, top_n = args
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate_cohort(Path(tmp), seed=seed, product_half_life_days=half_life, **SETTINGS)
        sheet = pl.read_csv(sim.sheet, separator="\t")
        kinetics, persistence = [], []
        for (_,), rows in sheet.group_by("patient", maintain_order=True):
            tables = {r["sample"]: ingest_airr(Path(tmp) / r["path"]).clonotypes for r in rows.iter_rows(named=True)}
            wide = wide_counts(tables)
            kinetics.append(clone_kinetics(rows, wide, top_n=top_n).filter(pl.col("product_top_n")))
            persistence.append(product_persistence(rows, wide, top_n=top_n))
    tag = {"true_half_life": pl.lit(float(half_life)), "seed": pl.lit(seed)}
    return (pl.concat(kinetics).with_columns(**tag), pl.concat(persistence).with_columns(**tag))


def clone_table(kin: pl.DataFrame, label: str) -> pl.DataFrame:
    truth = pl.col("true_half_life")
    covered = (pl.col("half_life_ci_low") <= truth) & (pl.col("half_life_ci_high").fill_null(float("inf")) >= truth)
    est = pl.col("half_life_days").drop_nulls()
    return (
        kin.group_by("true_half_life")
        .agg(
            clones=pl.lit(label),
            n=pl.len(),
            estimable=pl.col("half_life_days").is_not_null().mean(),
            median=est.median(),
            q25=est.quantile(0.25),
            q75=est.quantile(0.75),
            coverage_95=covered.filter(pl.col("half_life_days").is_not_null()).mean(),
        )
        .with_columns(rel_error=(pl.col("median") - truth) / truth)
        .sort("true_half_life")
    )


def share_table(per: pl.DataFrame) -> pl.DataFrame:
    fits = []
    for (half_life, _seed, _patient), rows in per.group_by("true_half_life", "seed", "patient", maintain_order=True):
        fit = product_share_decay(rows)
        fits.append(
            {
                "true_half_life": half_life,
                "estimate": fit["half_life_days"][0],
                "obs_over_exp": rows["observed_over_expected"].median(),
            }
        )
    frame = pl.DataFrame(fits)
    est = pl.col("estimate")
    return (
        frame.group_by("true_half_life")
        .agg(
            clones=pl.lit("product share S_d"),
            n=pl.len(),
            estimable=est.is_not_null().mean(),
            median=est.median(),
            q25=est.quantile(0.25),
            q75=est.quantile(0.75),
            obs_over_exp=pl.col("obs_over_exp").median(),
        )
        .with_columns(rel_error=(pl.col("median") - pl.col("true_half_life")) / pl.col("true_half_life"))
        .sort("true_half_life")
    )


def old_half_life(days: np.ndarray, counts: np.ndarray, *, with_peak: bool = True, min_points: int = 3) -> float:
    """The previous estimator: least squares of ln f on day over the peak (or not) and the detected
    post-peak points up to the first zero; NaN with fewer than ``min_points`` post-peak points or no decline."""
    peak = int(np.argmax(counts))
    post = counts[peak + 1 :]
    stop = np.flatnonzero(post == 0)
    used = np.arange(peak + 1, peak + 1 + (stop[0] if stop.size else post.size))
    if used.size < min_points:
        return float("nan")
    idx = np.r_[peak, used] if with_peak else used
    slope = np.polyfit(days[idx], np.log(counts[idx]), 1)[0]
    return float(np.log(2) / -slope) if slope < 0 else float("nan")


def near_limit(n: int, dispersion: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    days = np.array([7, 14, 28, 42, 56, 70])
    mu = rng.uniform(3.5, 5.0, n)[:, None] * 2.0 ** (-(days[None, 1:] - 14) / 20.0)
    if dispersion > 0:
        mu = mu * rng.gamma(1 / dispersion, dispersion, size=mu.shape)
    return days, np.column_stack([np.full(n, 60), rng.poisson(mu)])


def near_limit_report(n: int = 2000, n_coverage: int = 200) -> None:
    truth, rows = 20.0, []
    for disp in (0.0, 0.2):
        days, counts = near_limit(n, disp, seed=1)
        frame = pl.DataFrame(
            {
                "clone_id": np.repeat([f"C{i:05d}" for i in range(n)], days.size),
                "day": np.tile(days, n),
                "count": counts.ravel(),
                "depth": 10**5,
                "frequency": counts.ravel() / 1e5,
            }
        )
        start = time.perf_counter()
        fits = fit_decay(frame)
        seconds = time.perf_counter() - start
        new = fits["half_life_days"].to_numpy().astype(float)
        for label, est in (
            ("NB GLM, zeros kept (new)", new),
            ("least squares, peak + detected to first zero (old)", np.array([old_half_life(days, c) for c in counts])),
            (
                "least squares, detected post-peak to first zero, no peak",
                np.array([old_half_life(days, c, with_peak=False) for c in counts]),
            ),
        ):
            ok = np.isfinite(est)
            rows.append(
                {
                    "dispersion": disp,
                    "method": label,
                    "clones": n,
                    "estimable": ok.mean(),
                    "median": np.median(est[ok]),
                    "q25": np.quantile(est[ok], 0.25),
                    "q75": np.quantile(est[ok], 0.75),
                    "rel_error": np.median(est[ok]) / truth - 1,
                }
            )
        print(f"D = {disp}: fit_decay on {n} clones in {seconds:.2f} s ({1e3 * seconds / n:.2f} ms per clone)")
        # coverage of the 95% profile interval of b1 over series with >= 2 detected post-peak days
        for fixed in (None, disp):
            d, c = near_limit(n_coverage, disp, seed=2)
            y = c[:, 1:].astype(float)
            ok = (y > 0).sum(1) >= 2
            fit = fit_nb_decay(np.tile(d[1:] - 7.0, (ok.sum(), 1)), y[ok], np.full(y[ok].shape, 1e5), dispersion=fixed)
            b = -np.log(2) / truth
            cov = np.mean((fit.b1_low <= b) & (b <= fit.b1_high))
            how = "estimated" if fixed is None else f"fixed at the true {fixed}"
            print(f"  coverage of the 95% profile interval, D {how}: {cov:.3f} ({ok.sum()} series)")
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=200,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        fmt_str_lengths=80,
    ):
        print(pl.DataFrame(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-lives", type=float, nargs="+", default=[10.0, 20.0, 40.0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--near-limit", action="store_true", help="only the near-detection-limit section")
    args = parser.parse_args()
    print("## near the detection limit (true half-life 20 days)\n")
    near_limit_report()
    if args.near_limit:
        return
    print("\n## simulated cohorts\n")
    start = time.time()
    jobs = [(h, s, args.top_n) for h in args.half_lives for s in range(args.seeds)]
    results = []
    with (
        mp.get_context("spawn").Pool(args.jobs) as pool,
        stderr_counter(len(jobs), label="simulated cohorts (half-life, seed) done") as progress,
    ):
        for result in pool.imap(run_one, jobs):  # in order, as map
            results.append(result)
            progress.update(1)
    kin = pl.concat([r[0] for r in results])
    per = pl.concat([r[1] for r in results])
    table = pl.concat(
        [
            clone_table(kin, f"product top {args.top_n}"),
            clone_table(kin.filter(pl.col("product_rank") <= 10), "product top 10"),
            share_table(per),
        ],
        how="diagonal_relaxed",
    )
    table = table.select(
        "true_half_life", "clones", "n", "estimable", "median", "q25", "q75", "rel_error", "coverage_95", "obs_over_exp"
    )
    print(
        f"post-infusion blood days {', '.join(map(str, POST_DAYS))}; blood depth {SETTINGS['blood_depth']}; "
        f"dispersion {SETTINGS['dispersion']}; product {SETTINGS['n_product_clones']} clones taking "
        f"{SETTINGS['product_blood_share']:.0%} of blood at infusion; {args.seeds} seeds x "
        f"{SETTINGS['n_patients']} patients per half-life\n"
    )
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=200,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
    ):
        print(table.sort("true_half_life", "clones", maintain_order=True))
    worst = table.filter(pl.col("clones") != "product share S_d")["rel_error"].abs().max()
    print(f"\nlargest |relative error| of the per-clone median: {worst:.1%}; wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
