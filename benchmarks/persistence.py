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

Run (about 1 minute on 2 cores)::

    python benchmarks/persistence.py --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import polars as pl

from tcrtrack.ingest import ingest_airr
from tcrtrack.kinetics import clone_kinetics, fit_decay, product_persistence
from tcrtrack.patient import wide_counts
from tcrtrack.simulate import simulate_cohort

POST_DAYS = (7, 14, 28, 42, 56, 84)
SETTINGS = {"n_patients": 2, "n_clones": 5_000, "blood_depth": 40_000, "tumor_depth": 10_000,
            "post_days": POST_DAYS, "tumor_days": (-7, 28), "n_planted": (6, 3, 3), "product_patients": (0, 1),
            "n_product_clones": 500, "product_blood_share": 0.1, "dispersion": 0.1}


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
    return kin.group_by("true_half_life").agg(
        clones=pl.lit(label), n=pl.len(), estimable=pl.col("half_life_days").is_not_null().mean(),
        median=est.median(), q25=est.quantile(0.25), q75=est.quantile(0.75),
        coverage_95=covered.filter(pl.col("half_life_days").is_not_null()).mean(),
    ).with_columns(rel_error=(pl.col("median") - truth) / truth).sort("true_half_life")


def share_table(per: pl.DataFrame) -> pl.DataFrame:
    fits = []
    for (half_life, seed, patient), rows in per.group_by("true_half_life", "seed", "patient", maintain_order=True):
        fit = fit_decay(rows.select(pl.lit("product").alias("clone_id"), "day", count="n_detected",
                                    frequency="blood_share"))
        fits.append({"true_half_life": half_life, "estimate": fit["half_life_days"][0],
                     "obs_over_exp": rows["observed_over_expected"].median()})
    frame = pl.DataFrame(fits)
    est = pl.col("estimate")
    return frame.group_by("true_half_life").agg(
        clones=pl.lit("product share S_d"), n=pl.len(), estimable=est.is_not_null().mean(), median=est.median(),
        q25=est.quantile(0.25), q75=est.quantile(0.75), obs_over_exp=pl.col("obs_over_exp").median(),
    ).with_columns(rel_error=(pl.col("median") - pl.col("true_half_life")) / pl.col("true_half_life")
                   ).sort("true_half_life")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-lives", type=float, nargs="+", default=[10.0, 20.0, 40.0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    start = time.time()
    jobs = [(h, s, args.top_n) for h in args.half_lives for s in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(run_one, jobs)
    kin = pl.concat([r[0] for r in results])
    per = pl.concat([r[1] for r in results])
    table = pl.concat([clone_table(kin, f"product top {args.top_n}"),
                       clone_table(kin.filter(pl.col("product_rank") <= 10), "product top 10"),
                       share_table(per)], how="diagonal_relaxed")
    table = table.select("true_half_life", "clones", "n", "estimable", "median", "q25", "q75", "rel_error",
                         "coverage_95", "obs_over_exp")
    print(f"post-infusion blood days {', '.join(map(str, POST_DAYS))}; blood depth {SETTINGS['blood_depth']}; "
          f"dispersion {SETTINGS['dispersion']}; product {SETTINGS['n_product_clones']} clones taking "
          f"{SETTINGS['product_blood_share']:.0%} of blood at infusion; {args.seeds} seeds x "
          f"{SETTINGS['n_patients']} patients per half-life\n")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, float_precision=3, tbl_hide_dataframe_shape=True,
                   tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True):
        print(table.sort("true_half_life", "clones", maintain_order=True))
    worst = table.filter(pl.col("clones") != "product share S_d")["rel_error"].abs().max()
    print(f"\nlargest |relative error| of the per-clone median: {worst:.1%}; wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
