"""Calibration of the association stage when nothing is planted: the simulator, the calls, the test.

    python benchmarks/association_null.py [--seeds 50] [--patients 10] [--fold 1.0]

For each seed a cohort is simulated with ``tcrtrack.simulate.simulate_cohort``, one patient at a time
with Poisson numbers of planted clones (responders alternate with non-responders; ``--fold 1.0``: the
same law for both, nothing to find), every patient's clonotype tables go through the workflow's calls
(ingest + ``analyse_patient``, as the expansion step runs them), and ``association_table`` tests the
per-patient counts (expanded in blood, new expanded in blood, accumulating in tumour, flagged) between
the response groups. Under the null the two-sided p-values should be uniform -- up to the
discreteness of an exact test on 5 vs 5 patients with ties, which makes them conservative:
``P(p <= a) <= a``. Reported: the
Kolmogorov-Smirnov test of each metric's p-values against the uniform law (two-sided, and on the
anti-conservative side alone: the ECDF above the diagonal), and the rejection rates at 0.05 (with its
binomial 95% interval) and 0.10. ``--fold 3`` gives the power on the planted 3x difference.
Results go to ``benchmarks/out/association_null.tsv``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")

import numpy as np
import polars as pl
from scipy import stats

from tcrtrack.association_stage import association_table
from tcrtrack.formats import ingest_converted
from tcrtrack.patient import ANNOTATION, CallSettings, analyse_patient
from tcrtrack.samplesheet import read_sample_sheet
from tcrtrack.simulate import simulate_cohort

METRICS = ("expanded_in_blood", "new_expanded_in_blood", "accumulating_in_tumor", "flagged")


def one_cohort(seed: int, *, patients: int, fold: float, folder: Path) -> pl.DataFrame:
    """Association rows (response grouping) of one simulated cohort.

    Each patient is simulated on its own (``simulate_cohort(n_patients=1)``, its own seed) with Poisson
    numbers of planted clones of each kind (means 12, 6, 6, the demo's numbers), so that the counts vary
    between patients as they do in a trial; patients alternate responder / non-responder, and responders'
    planted numbers are multiplied by ``fold`` (1: nothing to find).
    """
    rng = np.random.default_rng([seed, 16])
    rows = []
    for i in range(patients):
        responder = i % 2 == 0
        means = np.array([12.0, 6.0, 6.0]) * (fold if responder else 1.0)
        planted = tuple(int(max(k, 1)) for k in rng.poisson(means))
        cohort = simulate_cohort(
            folder / f"p{i}",
            n_patients=1,
            n_clones=2000,
            blood_depth=20000,
            tumor_depth=10000,
            n_planted=planted,
            post_days=(14, 28, 56),
            tumor_days=(-7, 28),
            replicate_patients=(),
            seed=seed * 1000 + i,
        )
        samples = read_sample_sheet(cohort.sheet, check_files=False)
        tables = {
            r["sample"]: ingest_converted(
                cohort.out_dir / r["path"],
                fmt="airr",
                locus="TRB",
                productive_only=True,
                min_junction_aa_length=5,
                definition="aa_vj",
            ).clonotypes.select(*ANNOTATION, "count", "frequency")
            for r in samples.iter_rows(named=True)
        }
        calls = analyse_patient(samples, tables, settings=CallSettings())
        clones = calls.clones  # the counts of expansion_summary.tsv (tcrtrack.pipeline)
        rows.append(
            {
                "patient": f"P{i + 1:02d}",
                "response": "responder" if responder else "non-responder",
                "expanded_in_blood": int(clones["expanded_in_blood"].sum()),
                "new_expanded_in_blood": int(
                    (clones["expanded_in_blood"] & clones["new_in_blood"].fill_null(False)).sum()
                ),
                "accumulating_in_tumor": int(clones["accumulates_in_tumor"].sum()),
                "flagged": calls.flagged.height,
            }
        )
    table = pl.DataFrame(rows)
    return association_table(
        table.select("patient", *METRICS), table.select("patient", "response"), columns=["response"], n_boot=200
    ).with_columns(seed=pl.lit(seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--fold", type=float, default=1.0)
    args = parser.parse_args()
    start = time.perf_counter()
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            frames.append(one_cohort(seed, patients=args.patients, fold=args.fold, folder=Path(tmp) / f"s{seed}"))
    table = pl.concat(frames, how="vertical_relaxed")
    out = Path(__file__).parent / "out" / "association_null.tsv"
    out.parent.mkdir(exist_ok=True)
    table.write_csv(out, separator="\t")
    print(
        f"{args.seeds} seeds x {args.patients} patients, responder_planted_fold={args.fold}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(
        "| metric | tests | KS D | KS p | KS p, anti-conservative side | p <= 0.05 (95% CI) | p <= 0.10 | "
        "median p | tests used |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for metric in table["metric"].unique(maintain_order=True):
        part = table.filter((pl.col("metric") == metric) & pl.col("p").is_not_null())
        p = part["p"].to_numpy()
        if p.size == 0:
            continue
        ks = stats.kstest(p, "uniform")
        anti = stats.kstest(p, "uniform", alternative="greater")  # ECDF above the diagonal: p too small
        hits = int(np.sum(p <= 0.05))
        ci = stats.binomtest(hits, p.size).proportion_ci()
        used = ", ".join(f"{t} {n}" for t, n in part.group_by("test").len().sort("test").iter_rows())
        print(
            f"| {metric} | {p.size} | {ks.statistic:.3f} | {ks.pvalue:.3g} | {anti.pvalue:.3g} | {hits / p.size:.3f} "
            f"({ci.low:.3f}-{ci.high:.3f}) | {np.mean(p <= 0.1):.3f} | {np.median(p):.3f} | {used} |"
        )


if __name__ == "__main__":
    main()
