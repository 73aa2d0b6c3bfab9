#!/usr/bin/env python
"""Accuracy of the calls on simulated cohorts with known truth (not part of the test run).

For every setting (overdispersion x sequencing depth x seed) a cohort is simulated with
:func:`tcrtrack.simulate.simulate_cohort`, every repertoire is ingested in-process
(:func:`tcrtrack.ingest.ingest_airr`) and every patient is analysed
(:func:`tcrtrack.patient.analyse_patient`) with both models (``fisher`` and ``overdispersed``);
the calls are scored against the truth. No Snakemake.

Truth
-----
The simulator's true frequencies of every clone at every timepoint are captured while it runs
(a wrapper around ``tcrtrack.simulate._simulate_patient``, cached so that settings sharing a seed
draw OLGA's clonotypes once; the planted clones and categories are checked against
``truth.tsv``). With them:

* *blood expansion, any post day*: a call is true when the clone is planted in blood
  (``new_expanded_tumor`` or ``blood_only``); every planted blood clone truly rises at its peak.
* *blood expansion, per comparison* (what Benjamini-Hochberg controls): ``exact`` truth, a call
  at day d is true when the clone's true frequency at d is above its true baseline frequency
  (H0 of the one-sided test is false). Planted clones decay after their peak and never drop below
  their pre-infusion level, so a planted clone that was present at baseline can be back at
  exactly its baseline frequency on a day away from the peak: there it is a true null. The
  ``lenient`` truth counts every planted blood clone as true on every post day (the FDP under it
  is the lower of the two). Null clones' true frequencies only fall after infusion (the planted
  clones take a larger share), so no null clone is ever truly up.
* *tumour accumulation*: true when the clone's true tumour frequency in some post-treatment
  biopsy is above the pre-treatment one (exactly ``new_expanded_tumor`` + ``tumor_only``;
  ``blood_only`` clones sit at a constant tumour level).
* *flagged* (expanded in blood and accumulating in tumour): true for ``new_expanded_tumor``.

Realised false-discovery proportion FDP = false calls / calls (0 without calls). "FDR" in the
per-comparison table is the mean of the per-comparison FDPs (the quantity BH bounds by ``fdr``).
Every number is reported as the mean over seeds with the min-max over seeds.

Cross-checks (``--crosscheck``): our Fisher p-values against a ``scipy.stats.fisher_exact`` loop,
our beta-binomial survival function against ``scipy.stats.betabinom`` (and an exact log-space
sum), and, when NoisET (``pip install noisets``; Puelma Touzel et al. 2020) can be run
(``--noisets-python``), its negative-binomial null model learned on a simulated replicate pair
against our beta-binomial ``rho`` fitted on the same pair.

Run (about 5-8 minutes on 2 cores)::

    python benchmarks/accuracy.py --jobs 2 --out benchmarks/ACCURACY.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# scipy's L-BFGS-B calls its bundled OpenBLAS: with OpenBLAS's default threads the noise fits run 3-8x
# slower on a busy machine (PATIENT_CALLS.md); Snakemake sets this for the workflow's jobs, not for us.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the environment above)
import polars as pl
from scipy import stats

import tcrtrack.simulate as simulate
from tcrtrack.ingest import ingest_airr
from tcrtrack.noise import NoiseModel, betabinom_sf, poisson_noise
from tcrtrack.patient import CallSettings, PatientCalls, analyse_patient
from tcrtrack.samplesheet import patient_samples, read_sample_sheet

BLOOD_PLANTED = ("new_expanded_tumor", "blood_only")
TUMOR_PLANTED = ("new_expanded_tumor", "tumor_only")
MODELS = ("fisher", "overdispersed")
POST_DAYS = (14, 28, 56)
TUMOR_DAYS = (-7, 28, 56)
CALIBRATION = (2, 3, 4)  # null p-value calibration at p <= 1e-2, 1e-3, 1e-4
INTERPRETATION_START = "<!-- interpretation:start -->"
INTERPRETATION_END = "<!-- interpretation:end -->"


@dataclass(frozen=True)
class Setting:
    """One simulated cohort."""

    dispersion: float
    blood_depth: int
    tumor_depth: int
    seed: int
    n_patients: int = 4
    n_clones: int = 20_000
    n_planted: tuple[int, int, int] = (30, 15, 15)
    replicate_patients: tuple[int, ...] = (0, 1)
    tumor_dispersion: float | None = None

    @property
    def depth_label(self) -> str:
        return f"{_k(self.blood_depth)}/{_k(self.tumor_depth)}"


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


# --------------------------------------------------------------------------- simulation + truth

_PATIENT_CACHE: dict[tuple, Any] = {}


@contextlib.contextmanager
def capture_patients() -> Iterator[dict[str, Any]]:
    """While active, ``simulate_cohort`` records each patient's true frequencies (pid -> _Patient).

    ``_simulate_patient`` (OLGA clonotypes, true frequencies, planted clones) depends on the seed and
    the patient only, not on dispersion or depth, so it is cached across settings sharing a seed.
    """
    captured: dict[str, Any] = {}
    original = simulate._simulate_patient

    def wrapper(pid: str, p: int, **kwargs: Any) -> Any:
        key = (pid, p, tuple(sorted(kwargs.items())))
        if key not in _PATIENT_CACHE:
            if len(_PATIENT_CACHE) > 64:
                _PATIENT_CACHE.clear()
            _PATIENT_CACHE[key] = original(pid, p, **kwargs)
        captured[pid] = _PATIENT_CACHE[key]
        return captured[pid]

    simulate._simulate_patient = wrapper
    try:
        yield captured
    finally:
        simulate._simulate_patient = original


def truth_frame(patient: Any, truth: pl.DataFrame) -> pl.DataFrame:
    """One row per productive TRB clonotype: ``clone_id``, ``category`` (``null`` unless planted)
    and its true frequency at every timepoint (``true_blood_d14``, ``true_tumor_d-7``, ...)."""
    clones = patient.clones
    frame = clones.select(
        clone_id=pl.concat_str(["junction_aa", "v_gene", "j_gene"], separator="|"),
        keep=(pl.col("productive") == "T") & (pl.col("locus") == "TRB"),
    ).with_columns(pl.Series(f"true_{c}_d{d}", f) for (c, d), f in sorted(patient.freqs.items()))
    planted = truth.select(
        clone_id=pl.concat_str(["junction_aa", "v_gene", "j_gene"], separator="|"), category="category")
    frame = frame.filter("keep").drop("keep").join(planted, on="clone_id", how="left").with_columns(
        pl.col("category").fill_null("null"))
    found = frame.filter(pl.col("category") != "null").height
    if found != planted.height or frame["clone_id"].n_unique() != frame.height:
        raise RuntimeError(f"captured truth disagrees with truth.tsv ({found} of {planted.height} planted found)")
    return frame


def _fdp(fp: int, calls: int) -> float:
    return fp / calls if calls else 0.0


def score_patient(patient_calls: PatientCalls, truth: pl.DataFrame, *, post_days: Sequence[int],
                  tumor_days: Sequence[int], settings: CallSettings = CallSettings(), baseline_replicates: int = 1
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Counts of calls, false calls and true clones for one patient and model.

    Returns the patient-level record and one record per comparison (blood day or biopsy)."""
    calls, calls_noise = patient_calls.clones, patient_calls.noise
    df = truth.join(calls, on="clone_id", how="left")
    unknown = calls.height - calls.join(truth, on="clone_id", how="semi").height
    if unknown:
        raise RuntimeError(f"{unknown} called clone ids are not in the simulator's clonotypes")
    pre = min(tumor_days, key=lambda d: (d > 0, -d))  # the latest day <= 0
    post_biopsies = [d for d in tumor_days if d > 0]
    blood_planted = pl.col("category").is_in(BLOOD_PLANTED)
    flag_truth = pl.col("category") == "new_expanded_tumor"
    up_tumor = pl.any_horizontal(pl.col(f"true_tumor_d{d}") > pl.col(f"true_tumor_d{pre}") * (1 + 1e-9)
                                 for d in post_biopsies)
    flag = lambda name: pl.col(name).fill_null(False)  # noqa: E731
    significant_tumor = pl.any_horizontal(flag(f"tumor_d{d}_significant") for d in post_biopsies)
    sums = df.select(
        blood_calls=flag("expanded_in_blood").sum(),
        blood_tp=(flag("expanded_in_blood") & blood_planted).sum(),
        blood_true=blood_planted.sum(),
        tumor_calls=flag("accumulates_in_tumor").sum(),
        tumor_tp=(flag("accumulates_in_tumor") & up_tumor).sum(),
        tumor_true=up_tumor.sum(),
        tumor_new_calls=(flag("accumulates_in_tumor") & ~significant_tumor).sum(),
        tumor_new_fp=(flag("accumulates_in_tumor") & ~significant_tumor & ~up_tumor).sum(),
        flag_calls=flag("flagged").sum(),
        flag_tp=(flag("flagged") & flag_truth).sum(),
        flag_true=flag_truth.sum(),
        tumor_planted_check=(pl.col("category").is_in(TUMOR_PLANTED) != up_tumor).sum(),
    ).row(0, named=True)
    if sums.pop("tumor_planted_check"):
        raise RuntimeError("tumour truth by frequencies differs from the planted categories")
    # The tool's flag rule, re-derived as a check: the tumour test of the flag as its own family, BH over the
    # blood-expanded clones only. Blood and tumour are separate libraries, so under the tumour null the
    # selection is independent of the tumour p-values and BH stays valid (independent filtering).
    expanded = df["expanded_in_blood"].fill_null(False).to_numpy()
    restricted = np.zeros(df.height, dtype=bool)
    for d in post_biopsies:
        p = df[f"tumor_d{d}_pvalue"].fill_null(1.0).to_numpy()
        q = np.ones(df.height)
        if expanded.any():
            q[expanded] = stats.false_discovery_control(p[expanded], method="bh")
        restricted |= (q < settings.fdr) & (df[f"tumor_d{d}_log2fc"].fill_null(-np.inf).to_numpy() >= settings.min_log2fc) \
            & (df[f"tumor_d{d}_count"].fill_null(0).to_numpy() >= settings.tumor_min_count)
    truth_flag = (df["category"] == "new_expanded_tumor").to_numpy()
    significant_only = expanded & df.select(significant_tumor).to_series().to_numpy()
    sums.update(flag_sig_calls=int(significant_only.sum()), flag_sig_tp=int((significant_only & truth_flag).sum()),
                flag_alt_calls=int((expanded & restricted).sum()),
                flag_alt_tp=int((expanded & restricted & truth_flag).sum()))
    variant_union = {v: np.zeros(df.height, dtype=bool) for v in VARIANTS} if settings.model == "overdispersed" else {}
    comparisons = []
    for compartment, days, ref, ref_count in (("blood", post_days, 0, "baseline_count"),
                                              ("tumor", post_biopsies, pre, "tumor_pre_count")):
        for d in days:
            called = flag(f"{compartment}_d{d}_significant")
            bh = pl.col(f"{compartment}_d{d}_qvalue").fill_null(1.0) < settings.fdr
            up = pl.col(f"true_{compartment}_d{d}") > pl.col(f"true_{compartment}_d{ref}") * (1 + 1e-9)
            lenient = blood_planted if compartment == "blood" else pl.col("category").is_in(TUMOR_PLANTED)
            row = df.select(
                calls=called.sum(), fp_exact=(called & ~up).sum(), fp_lenient=(called & ~lenient).sum(),
                tp_exact=(called & up).sum(), true_exact=up.sum(), bh_calls=bh.sum(), bh_fp=(bh & ~up).sum(),
            ).row(0, named=True)
            up_np = df.select(up).to_series().to_numpy()
            row.update(null_calibration(df, calls_noise, compartment=compartment, day=d, ref=ref, ref_count=ref_count,
                                        up=up_np, model=settings.model, seed=d))
            if compartment == "blood" and variant_union:
                called_np = df.select(called).to_series().to_numpy()
                variants = blood_variants(df, calls_noise, day=d, replicates=baseline_replicates, settings=settings)
                for v, mask in variants.items():
                    variant_union[v] |= mask
                    row.update({f"{v}_calls": int(mask.sum()), f"{v}_fp": int((mask & ~up_np).sum()),
                                f"{v}_tp": int((mask & up_np).sum())})
                row["as_run_mismatch"] = int(np.sum(variants["as_run"] != called_np))
            comparisons.append({"compartment": compartment, "day": d, **row})
    planted = df.select(blood_planted).to_series().to_numpy()
    for v, mask in variant_union.items():
        sums.update({f"blood_{v}_calls": int(mask.sum()), f"blood_{v}_tp": int((mask & planted).sum())})
    return sums, comparisons


VARIANTS = ("as_run", "pooled_rho", "testable", "pooled_rho_testable")


def blood_variants(df: pl.DataFrame, noise: pl.DataFrame, *, day: int, replicates: int,
                   settings: CallSettings) -> dict[str, np.ndarray]:
    """Blood calls at one day re-derived with the overdispersed model's own fit, and with two proposed changes.

    ``as_run``: the fitted model as used (must reproduce tcrtrack's calls; checked). ``pooled_rho``: a baseline
    pooled from ``k`` replicates tested against one later library has less library noise than a replicate
    pair; under Gamma-Poisson noise the exact conditional law is BetaBinomial with ``rho_k = D / (k + 1 + D)``,
    ``D = 2 rho_pair / (1 - rho_pair)`` (``k = 1`` gives back ``rho_pair``). ``testable``: BH over the clones
    whose smallest attainable p-value ``P(X = n)`` is at most ``fdr`` (Tarone 1990; Gilbert 2005): the others
    can never be rejected, and the selection depends on ``n = a + b`` only, which the conditional test
    conditions on, so BH stays valid.
    """
    from tcrtrack.expansion import bh_qvalues

    a = df["baseline_count"].fill_null(0).to_numpy()
    b = df[f"blood_d{day}_count"].fill_null(0).to_numpy()
    n_a, n_b = int(a.sum()), int(b.sum())
    n = a + b
    tested = n > 0
    p0 = n_b / (n_a + n_b)
    model = _noise_model(noise, f"blood_d{day} vs blood_d0")
    lfc = np.log2((b + settings.pseudocount) / n_b) - np.log2((a + settings.pseudocount) / n_a)
    keep = (lfc >= settings.min_log2fc) & (b >= settings.min_count)
    out = {}
    for v in VARIANTS:
        rho = model.rho(n[tested] / (n_a + n_b))
        if v.startswith("pooled_rho") and replicates > 1 and model.source == "replicates":
            d_lib = 2 * rho / (1 - rho)
            rho = d_lib / (replicates + 1 + d_lib)
        p = betabinom_sf(b[tested] - 1, n[tested], p=p0, rho=rho)
        q = np.ones(tested.sum())
        if v.endswith("testable"):
            testable = betabinom_sf(n[tested] - 1, n[tested], p=p0, rho=rho) <= settings.fdr
            if testable.any():
                q[testable] = bh_qvalues(p[testable])
        else:
            q = bh_qvalues(p)
        mask = np.zeros(df.height, dtype=bool)
        mask[np.flatnonzero(tested)] = q < settings.fdr
        out[v] = mask & keep
    return out


def _noise_model(noise: pl.DataFrame, comparison: str) -> NoiseModel:
    rows = noise.filter(pl.col("comparison") == comparison).sort("bin")
    if rows.height == 0 or rows["log10_freq"].is_null().all():
        return poisson_noise()
    return NoiseModel(source=rows["source"][0], log10_freq=tuple(rows["log10_freq"]), rho_bins=tuple(rows["rho"]),
                      n_clones=tuple(rows["n_clones"]), p_null=tuple(rows["p_null"].fill_null(float("nan"))))


def null_calibration(df: pl.DataFrame, noise: pl.DataFrame, *, compartment: str, day: int, ref: int, ref_count: str,
                     up: np.ndarray, model: str, seed: int) -> dict[str, int]:
    """Randomised p-values ``P(X > b) + U P(X = b)`` of the null clones (true frequency not increased) with
    ``a + b >= 2``, under the null distribution the model used: exactly uniform when the model is right, so
    ``#(p <= t) / (n t)`` measures calibration free of the discreteness of the exact test."""
    a = df[ref_count].fill_null(0).to_numpy()
    b = df[f"{compartment}_d{day}_count"].fill_null(0).to_numpy()
    n_a, n_b = int(a.sum()), int(b.sum())
    keep = ~up & ((a + b) >= 2)
    a, b = a[keep], b[keep]
    n = a + b
    if model == "fisher":  # on the distinct (n, b) pairs: scipy's hypergeom.sf is slow per element
        pairs, inverse = np.unique(np.c_[n, b], axis=0, return_inverse=True)
        inverse = inverse.ravel()
        upper = stats.hypergeom.sf(pairs[:, 1] - 1, n_a + n_b, n_b, pairs[:, 0])[inverse]
        strict = stats.hypergeom.sf(pairs[:, 1], n_a + n_b, n_b, pairs[:, 0])[inverse]
    else:
        model_ = _noise_model(noise, f"{compartment}_d{day} vs {compartment}_d{ref}")
        rho = model_.rho(n / (n_a + n_b))
        p0 = n_b / (n_a + n_b)
        upper, strict = betabinom_sf(b - 1, n, p=p0, rho=rho), betabinom_sf(b, n, p=p0, rho=rho)
    u = np.random.default_rng([seed, int(a.sum()) % 100_003]).random(b.size)
    p = strict + u * (upper - strict)
    return {"null_n": int(b.size), **{f"null_p{k}": int(np.sum(p <= 10.0**-k)) for k in CALIBRATION}}


def noise_summary(noise: pl.DataFrame) -> dict[str, float]:
    """Clone-weighted mean fitted ``rho`` of the blood and of the tumour comparisons."""
    out = {}
    for compartment in ("blood", "tumor"):
        rows = noise.filter(pl.col("comparison").str.starts_with(compartment))
        if "n_clones" in rows.columns and rows.height and rows["n_clones"].sum() > 0:
            out[f"rho_{compartment}"] = float((rows["rho"] * rows["n_clones"]).sum() / rows["n_clones"].sum())
        else:
            out[f"rho_{compartment}"] = 0.0
    return out


def run_setting(setting: Setting) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Simulate, ingest and analyse one cohort with both models; patient and comparison records."""
    start = time.perf_counter()
    patients_out: list[dict[str, Any]] = []
    comparisons_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tcrtrack-accuracy-") as tmp, capture_patients() as captured:
        cohort = simulate.simulate_cohort(
            Path(tmp), n_patients=setting.n_patients, n_clones=setting.n_clones,
            blood_depth=setting.blood_depth, tumor_depth=setting.tumor_depth, post_days=POST_DAYS,
            tumor_days=TUMOR_DAYS, dispersion=setting.dispersion, tumor_dispersion=setting.tumor_dispersion,
            n_planted=setting.n_planted, replicate_patients=setting.replicate_patients, seed=setting.seed)
        sheet = read_sample_sheet(cohort.sheet)
        tables = {row["sample"]: ingest_airr(cohort.out_dir / row["path"]).clonotypes
                  for row in sheet.iter_rows(named=True)}
        truth = pl.read_csv(cohort.truth, separator="\t", infer_schema_length=None)
        base = {k: v for k, v in asdict(setting).items() if k in ("dispersion", "blood_depth", "tumor_depth", "seed")}
        for pid in sorted(sheet["patient"].unique()):
            samples = patient_samples(sheet, pid)
            truth_p = truth_frame(captured[pid], truth.filter(pl.col("patient") == pid))
            n_baseline = samples.filter((pl.col("compartment") == "blood") & (pl.col("day") == 0)).height
            replicated = n_baseline > 1
            for model in MODELS:
                calls = analyse_patient(samples, {s: tables[s] for s in samples["sample"]},
                                        settings=CallSettings(model=model))
                sums, comparisons = score_patient(calls, truth_p, post_days=POST_DAYS, tumor_days=TUMOR_DAYS,
                                                  settings=CallSettings(model=model), baseline_replicates=n_baseline)
                key = {**base, "model": model, "patient": pid, "replicates": replicated}
                patients_out.append({**key, **sums, **noise_summary(calls.noise)})
                comparisons_out.extend({**key, **c} for c in comparisons)
    return patients_out, comparisons_out, time.perf_counter() - start


def run_all(settings: Sequence[Setting], *, jobs: int, progress: bool = True
            ) -> tuple[pl.DataFrame, pl.DataFrame, list[float]]:
    """Every setting, in ``jobs`` processes; patient and comparison tables and per-setting seconds."""
    patients: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    seconds: list[float] = []
    if jobs > 1:
        os.environ.setdefault("POLARS_MAX_THREADS", "1")  # inherited by the spawned workers
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        pool = mp.get_context("spawn").Pool(jobs)
        results = pool.imap(run_setting, settings)
    else:
        pool, results = None, map(run_setting, settings)
    try:
        for i, (p, c, s) in enumerate(results, 1):
            patients += p
            comparisons += c
            seconds.append(s)
            if progress:
                st = settings[i - 1]
                print(f"[{i}/{len(settings)}] dispersion {st.dispersion} depth {st.depth_label} seed {st.seed}: "
                      f"{s:.1f} s", file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return pl.DataFrame(patients), pl.DataFrame(comparisons), seconds


# --------------------------------------------------------------------------- aggregation

SETTING_KEYS = ["dispersion", "blood_depth", "tumor_depth"]


def _ratio(num: str, den: str) -> pl.Expr:
    """``num / den``, 0 when ``den`` is 0 (the FDP convention: no calls, no false discovery)."""
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(0.0)


def _precision(tp: str, calls: str) -> pl.Expr:
    """``tp / calls``, null (undefined; left out of the means over seeds) without calls."""
    return pl.when(pl.col(calls) > 0).then(pl.col(tp) / pl.col(calls))


def per_seed_patient_metrics(patients: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Cohort-level (pooled over patients) metrics per setting, model and seed."""
    keys = [*SETTING_KEYS, "model", "seed", *by]
    count_cols = [c for c in patients.columns if c.endswith(("_calls", "_tp", "_true", "_fp"))]
    g = patients.group_by(keys).agg(pl.col(count_cols).sum(), n_patients=pl.len(),
                                    rho_blood=pl.col("rho_blood").mean(), rho_tumor=pl.col("rho_tumor").mean())
    g = g.with_columns(blood_fp=pl.col("blood_calls") - pl.col("blood_tp"),
                       tumor_fp=pl.col("tumor_calls") - pl.col("tumor_tp"),
                       flag_fp=pl.col("flag_calls") - pl.col("flag_tp"),
                       flag_sig_fp=pl.col("flag_sig_calls") - pl.col("flag_sig_tp"),
                       flag_alt_fp=pl.col("flag_alt_calls") - pl.col("flag_alt_tp"))
    return g.with_columns(
        blood_calls_pp=pl.col("blood_calls") / pl.col("n_patients"),
        blood_precision=_precision("blood_tp", "blood_calls"),
        blood_recall=_ratio("blood_tp", "blood_true"),
        blood_fdp=_ratio("blood_fp", "blood_calls"),
        tumor_calls_pp=pl.col("tumor_calls") / pl.col("n_patients"),
        tumor_precision=_precision("tumor_tp", "tumor_calls"),
        tumor_recall=_ratio("tumor_tp", "tumor_true"),
        tumor_fdp=_ratio("tumor_fp", "tumor_calls"),
        tumor_new_pp=pl.col("tumor_new_calls") / pl.col("n_patients"),
        tumor_new_fdp=_ratio("tumor_new_fp", "tumor_new_calls"),
        flag_calls_pp=pl.col("flag_calls") / pl.col("n_patients"),
        flag_precision=_precision("flag_tp", "flag_calls"),
        flag_recall=_ratio("flag_tp", "flag_true"),
        flag_fdp=_ratio("flag_fp", "flag_calls"),
        **{f"flag_{v}_{m}": e for v in ("sig", "alt") for m, e in (
            ("calls_pp", pl.col(f"flag_{v}_calls") / pl.col("n_patients")),
            ("precision", _precision(f"flag_{v}_tp", f"flag_{v}_calls")),
            ("recall", _ratio(f"flag_{v}_tp", "flag_true")),
            ("fdp", _ratio(f"flag_{v}_fp", f"flag_{v}_calls")))},
    )


def per_seed_comparison_metrics(comparisons: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Per-comparison FDR (mean FDP over comparisons) and pooled recall, per setting, model, seed."""
    keys = [*SETTING_KEYS, "model", "seed", "compartment", *by]
    return comparisons.with_columns(
        fdp_exact=_ratio("fp_exact", "calls"), fdp_lenient=_ratio("fp_lenient", "calls"),
        fdp_bh=_ratio("bh_fp", "bh_calls"),
    ).group_by(keys).agg(
        calls_pc=pl.col("calls").mean(), fdr_exact=pl.col("fdp_exact").mean(),
        fdr_lenient=pl.col("fdp_lenient").mean(), max_fdp=pl.col("fdp_exact").max(),
        recall_exact=pl.col("tp_exact").sum() / pl.col("true_exact").sum(), n_comparisons=pl.len(),
        bh_calls_pc=pl.col("bh_calls").mean(), fdr_bh=pl.col("fdp_bh").mean(),
        **{f"cal{k}": pl.col(f"null_p{k}").sum() / (pl.col("null_n").sum() * 10.0**-k) for k in CALIBRATION},
    )


def over_seeds(per_seed: pl.DataFrame, metrics: Sequence[str], *, by: Sequence[str] = ()) -> pl.DataFrame:
    """Mean, min and max over seeds of each metric."""
    keys = [*SETTING_KEYS, "model", *by]
    return per_seed.group_by(keys).agg(
        *(pl.col(m).mean().alias(f"{m}_mean") for m in metrics),
        *(pl.col(m).min().alias(f"{m}_min") for m in metrics),
        *(pl.col(m).max().alias(f"{m}_max") for m in metrics),
        n_seeds=pl.len(),
    ).sort(keys)


def _cell(row: dict[str, Any], metric: str, digits: int = 3) -> str:
    mean, lo, hi = row[f"{metric}_mean"], row[f"{metric}_min"], row[f"{metric}_max"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "– (no calls)" if metric.endswith("precision") else "–"
    fmt = f"{{:.{digits}f}}"
    if row.get("n_seeds", 1) == 1 or lo == hi:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ({fmt.format(lo)}–{fmt.format(hi)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _setting_cells(row: dict[str, Any]) -> list[str]:
    return [f"{row['dispersion']:g}", f"{_k(row['blood_depth'])}/{_k(row['tumor_depth'])}", row["model"]]


def render_tables(patients: pl.DataFrame, comparisons: pl.DataFrame) -> dict[str, str]:
    """The markdown tables of the report."""
    out: dict[str, str] = {}
    ps = per_seed_patient_metrics(patients)
    cs = per_seed_comparison_metrics(comparisons)
    blood = over_seeds(ps, ["blood_calls_pp", "blood_precision", "blood_recall", "blood_fdp"])
    head = ["dispersion", "depth blood/tumour", "model"]
    out["blood"] = _table(
        [*head, "calls / patient", "precision", "recall", "realised FDP"],
        [[*_setting_cells(r), _cell(r, "blood_calls_pp", 1), _cell(r, "blood_precision"), _cell(r, "blood_recall"),
          _cell(r, "blood_fdp")] for r in blood.iter_rows(named=True)])
    metrics = ["calls_pc", "fdr_exact", "fdr_lenient", "max_fdp", "recall_exact"]
    per_cmp = over_seeds(cs.filter(pl.col("compartment") == "blood"), metrics)
    tum_cmp = over_seeds(cs.filter(pl.col("compartment") == "tumor"), metrics)
    tum_by = {tuple(r[k] for k in [*SETTING_KEYS, "model"]): r for r in tum_cmp.iter_rows(named=True)}
    rows = []
    for r in per_cmp.iter_rows(named=True):
        t = tum_by[tuple(r[k] for k in [*SETTING_KEYS, "model"])]
        rows.append([*_setting_cells(r), _cell(r, "calls_pc", 1), _cell(r, "fdr_exact"), _cell(r, "fdr_lenient"),
                     _cell(r, "max_fdp"), _cell(r, "recall_exact"), _cell(t, "calls_pc", 1), _cell(t, "fdr_exact"),
                     _cell(t, "recall_exact")])
    out["comparison"] = _table(
        [*head, "blood: calls / comparison", "FDR (exact truth)", "FDR (lenient truth)", "worst comparison FDP",
         "recall (exact)", "tumour BH: calls / comparison", "FDR", "recall"], rows)
    tumor = over_seeds(ps, ["tumor_calls_pp", "tumor_precision", "tumor_recall", "tumor_fdp", "tumor_new_pp",
                            "tumor_new_fdp", "flag_calls_pp", "flag_precision", "flag_recall", "flag_fdp"])
    out["tumor"] = _table(
        [*head, "accumulating / patient", "precision", "recall", "realised FDP", "by 'new' rule only / patient",
         "their FDP", "flagged / patient", "precision", "recall", "realised FDP"],
        [[*_setting_cells(r), _cell(r, "tumor_calls_pp", 1), _cell(r, "tumor_precision"), _cell(r, "tumor_recall"),
          _cell(r, "tumor_fdp"), _cell(r, "tumor_new_pp", 1), _cell(r, "tumor_new_fdp"), _cell(r, "flag_calls_pp", 1),
          _cell(r, "flag_precision"), _cell(r, "flag_recall"), _cell(r, "flag_fdp")] for r in tumor.iter_rows(named=True)])
    flags = over_seeds(ps, [f"flag{v}_{m}" for v in ("", "_sig", "_alt")
                            for m in ("calls_pp", "precision", "recall", "fdp")])
    rows = []
    for r in flags.iter_rows(named=True):
        rows.append([*_setting_cells(r)] + [
            _cell(r, f"flag{v}_{m}", 1 if m == "calls_pp" else 3) for v in ("", "_sig", "_alt")
            for m in ("calls_pp", "precision", "recall", "fdp")])
    out["flag_rules"] = _table(
        [*head] + [f"{name}: {m}" for name in ("tcrtrack (default)", "significant only",
                                                "proposed: BH over blood-expanded")
                   for m in ("flagged / patient", "precision", "recall", "FDP")], rows)
    # Proposed changes to the blood test, overdispersed model only (re-derived from the same fits).
    od_p = patients.filter(pl.col("model") == "overdispersed")
    od_c = comparisons.filter(pl.col("model") == "overdispersed", pl.col("compartment") == "blood")
    keys = [*SETTING_KEYS, "seed"]
    vp = od_p.group_by(keys).agg(pl.col("^blood_.*_(calls|tp|true)$").sum(), pl.col("blood_true").sum(),
                                 n_patients=pl.len())
    vc = od_c.group_by(keys).agg(
        *(_ratio(f"{v}_fp", f"{v}_calls").mean().alias(f"{v}_fdr") for v in VARIANTS),
        *(_ratio(f"{v}_fp", f"{v}_calls").max().alias(f"{v}_maxfdp") for v in VARIANTS),
        *((pl.col(f"{v}_tp").sum() / pl.col("true_exact").sum()).alias(f"{v}_recall_cmp") for v in VARIANTS),
        mismatch=pl.col("as_run_mismatch").sum())
    v = vp.join(vc, on=keys).with_columns(
        *(_ratio(f"blood_{x}_tp", "blood_true").alias(f"{x}_recall") for x in VARIANTS),
        *((1 - _ratio(f"blood_{x}_tp", f"blood_{x}_calls") - (pl.col(f"blood_{x}_calls") == 0))
          .alias(f"{x}_fdp") for x in VARIANTS),
        *((pl.col(f"blood_{x}_calls") / pl.col("n_patients")).alias(f"{x}_pp") for x in VARIANTS),
        model=pl.lit("overdispersed"))
    metrics = [f"{x}_{m}" for x in VARIANTS for m in ("pp", "recall", "fdp", "fdr", "maxfdp", "recall_cmp")]
    vs = over_seeds(v, [*metrics, "mismatch"])
    labels = {"as_run": "as run", "pooled_rho": "pooled-baseline rho", "testable": "testable-only BH",
              "pooled_rho_testable": "both"}
    rows = []
    for r in vs.iter_rows(named=True):
        for x in VARIANTS:
            rows.append([f"{r['dispersion']:g}", f"{_k(r['blood_depth'])}/{_k(r['tumor_depth'])}", labels[x],
                         _cell(r, f"{x}_pp", 1), _cell(r, f"{x}_recall"), _cell(r, f"{x}_fdp"),
                         _cell(r, f"{x}_fdr"), _cell(r, f"{x}_maxfdp"), _cell(r, f"{x}_recall_cmp")])
    out["variants"] = _table(
        ["dispersion", "depth blood/tumour", "blood test", "any day: calls / patient", "recall", "realised FDP",
         "per comparison: FDR (exact)", "worst comparison FDP", "recall (exact)"], rows)
    out["variants_check"] = (f"`as run` reproduces tcrtrack's own blood calls: "
                             f"{int(v['mismatch'].sum())} mismatching clone-days over all settings and seeds.")
    fit = (pl.when(pl.col("model") == "fisher").then(pl.lit("–"))
           .when((pl.col("compartment") == "blood") & pl.col("replicates")).then(pl.lit("replicates"))
           .otherwise(pl.lit("bulk")))
    cal = over_seeds(per_seed_comparison_metrics(comparisons.with_columns(fit=fit), by=["fit"]),
                     ["bh_calls_pc", "fdr_bh", *(f"cal{k}" for k in CALIBRATION)], by=["compartment", "fit"])
    out["calibration"] = _table(
        [*head, "compartment", "noise fit", "BH q<5% only: calls / comparison", "FDR (BH only)",
         *(f"P(p<=1e-{k}) / 1e-{k}" for k in CALIBRATION)],
        [[*_setting_cells(r), r["compartment"], r["fit"], _cell(r, "bh_calls_pc", 1), _cell(r, "fdr_bh"),
          *(_cell(r, f"cal{k}", 2) for k in CALIBRATION)] for r in cal.iter_rows(named=True)])
    # Overdispersed model by noise source (baseline replicates vs bulk fit), per comparison.
    od = comparisons.filter(pl.col("model") == "overdispersed", pl.col("compartment") == "blood")
    src = over_seeds(per_seed_comparison_metrics(od, by=["replicates"]), ["calls_pc", "fdr_exact", "recall_exact"],
                     by=["replicates"])
    rho = over_seeds(per_seed_patient_metrics(patients.filter(pl.col("model") == "overdispersed"), by=["replicates"]),
                     ["rho_blood", "rho_tumor"], by=["replicates"])
    rho_by = {tuple(r[k] for k in [*SETTING_KEYS, "replicates"]): r for r in rho.iter_rows(named=True)}
    rows = []
    for r in src.iter_rows(named=True):
        q = rho_by[tuple(r[k] for k in [*SETTING_KEYS, "replicates"])]
        d = r["dispersion"]
        rows.append([f"{d:g}", f"{_k(r['blood_depth'])}/{_k(r['tumor_depth'])}",
                     "replicates" if r["replicates"] else "bulk", _cell(r, "calls_pc", 1), _cell(r, "fdr_exact"),
                     _cell(r, "recall_exact"), f"{d / (2 + d):.3f}", _cell(q, "rho_blood"), _cell(q, "rho_tumor")])
    out["source"] = _table(
        ["dispersion", "depth blood/tumour", "blood noise fit", "calls / comparison", "FDR (exact)", "recall (exact)",
         "rho theory D/(2+D)", "fitted rho, blood", "fitted rho, tumour"], rows)
    return out


def claim_check(patients: pl.DataFrame, comparisons: pl.DataFrame, *, nominal: float, ceiling: float) -> str:
    """Data-driven statement of the claim: overdispersed FDR near nominal (<= ceiling), Fisher's above."""
    ps = over_seeds(per_seed_patient_metrics(patients), ["blood_fdp"])
    cs = over_seeds(per_seed_comparison_metrics(comparisons.filter(pl.col("compartment") == "blood")), ["fdr_exact"])
    lines = []
    for name, frame, metric in (("blood-expansion calls (any day, pooled FDP)", ps, "blood_fdp"),
                                ("per-comparison blood FDR (exact truth)", cs, "fdr_exact")):
        od = frame.filter(pl.col("model") == "overdispersed")
        fi = frame.filter(pl.col("model") == "fisher")
        bad = od.filter(pl.col(f"{metric}_mean") > ceiling)
        worst = od.sort(f"{metric}_mean", descending=True).row(0, named=True)
        fisher_over = fi.filter(pl.col(f"{metric}_mean") > ceiling).height
        lines.append(
            f"- {name}: overdispersed mean <= {ceiling:g} in {od.height - bad.height} of {od.height} settings "
            f"(worst {worst[f'{metric}_mean']:.3f} at dispersion {worst['dispersion']:g}, depth "
            f"{_k(worst['blood_depth'])}/{_k(worst['tumor_depth'])}); Fisher above {ceiling:g} in "
            f"{fisher_over} of {fi.height} (nominal {nominal:g}).")
    return "\n".join(lines)


# --------------------------------------------------------------------------- cross-checks


def _pareto_freqs(rng: np.random.Generator, n: int, exponent: float = 2.2) -> np.ndarray:
    u = rng.random(n)
    w = (1.0 - u * (1.0 - 1.0 / n)) ** (-1.0 / (exponent - 1.0))
    return w / w.sum()


def crosscheck_pvalues(seed: int = 0, n_sub: int = 400) -> dict[str, Any]:
    """Our Fisher and beta-binomial p-values against scipy on a random subsample of one comparison."""
    from scipy import special, stats

    from tcrtrack.expansion import betabinomial_pvalues, fisher_pvalues
    from tcrtrack.noise import beta_params, fit_noise_from_bulk

    rng = np.random.default_rng(seed)
    f = _pareto_freqs(rng, 20_000)
    g = f.copy()
    up = rng.choice(f.size, 40, replace=False)
    g[up] *= np.exp(rng.uniform(np.log(3), np.log(100), up.size))  # planted expansions: small p-values
    g /= g.sum()
    a = simulate.library_counts(f, depth=40_000, dispersion=0.1, rng=np.random.default_rng([seed, 1]))
    b = simulate.library_counts(g, depth=50_000, dispersion=0.1, rng=np.random.default_rng([seed, 2]))
    n_a, n_b = int(a.sum()), int(b.sum())
    tested = np.flatnonzero(a + b > 0)
    noise = fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b)
    p_all = betabinomial_pvalues(a[tested], b[tested], n_a=n_a, n_b=n_b, noise=noise)
    small = tested[np.argsort(p_all, kind="stable")[: n_sub // 4]]  # the far tail
    sub = np.unique(np.r_[rng.choice(np.setdiff1d(tested, small), n_sub - small.size, replace=False), small])
    a_s, b_s = a[sub], b[sub]
    ours_f = fisher_pvalues(a_s, b_s, n_a=n_a, n_b=n_b)
    ref_f = np.array([stats.fisher_exact([[bb, n_b - bb], [aa, n_a - aa]], alternative="greater")[1]
                      for aa, bb in zip(a_s, b_s)])
    ours_bb = betabinomial_pvalues(a_s, b_s, n_a=n_a, n_b=n_b, noise=noise)
    n = a_s + b_s
    rho = noise.rho(n / (n_a + n_b))
    alpha, beta = beta_params(n_b / (n_a + n_b), rho)
    ref_bb = np.where(rho > 0, stats.betabinom.sf(b_s - 1, n, alpha, beta), stats.binom.sf(b_s - 1, n, n_b / (n_a + n_b)))
    exact = np.empty(sub.size)  # log-space sum of the pmf over b..n: accurate in the far tail
    for i, (bb, nn, al, be, r) in enumerate(zip(b_s, n, alpha, beta, rho)):
        k = np.arange(bb, nn + 1)
        lp = stats.betabinom.logpmf(k, nn, al, be) if r > 0 else stats.binom.logpmf(k, nn, n_b / (n_a + n_b))
        exact[i] = float(np.exp(special.logsumexp(lp)))

    def rel(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
        return float(np.max(np.abs(x[mask] - y[mask]) / np.maximum(y[mask], 1e-300))) if mask.any() else 0.0

    big = ref_bb > 1e-10
    return {
        "n_pairs": int(sub.size), "n_a": n_a, "n_b": n_b,
        "p_range": [float(ours_bb.min()), float(ours_bb.max())],
        "fisher_max_abs": float(np.max(np.abs(ours_f - ref_f))),
        "fisher_max_rel_p_gt_1e-300": rel(ours_f, ref_f, ref_f > 1e-300),
        "fisher_min_p": float(ref_f.min()),
        "bb_max_abs_vs_scipy": float(np.max(np.abs(ours_bb - ref_bb))),
        "bb_max_rel_vs_scipy_p_gt_1e-10": rel(ours_bb, ref_bb, big),
        "bb_max_rel_vs_exact_sum": rel(ours_bb, exact, exact > 1e-300),
        "bb_scipy_zero_or_negative_in_tail": int(np.sum((ref_bb <= 0) & (exact > 0))),
        "bb_min_p": float(exact.min()),
        "rho_range": [float(rho.min()), float(rho.max())],
    }


_NOISET_HELPER = textwrap.dedent("""
    import contextlib, io, json, os, sys, tempfile, time, warnings
    import numpy as np
    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # NoisET 0.0.1 predates numpy 2
    import pandas as pd
    from noisets.noisettes import Noise_Model
    warnings.simplefilter("ignore")
    df = pd.read_csv(sys.argv[1], sep="\\t")
    # Starts: NoisET's default for the NB model (its noise_learning script), and a generic quadratic one.
    starts = {"default": [-2.02192528, 0.45220384, 1.06806274, -10.18866972], "generic": [-2.0, 0.5, 2.0, -6.0]}
    os.chdir(tempfile.mkdtemp())  # learn_null_model writes nullpara1.txt to the working folder
    fits = {}
    for name, init in starts.items():
        t = time.time()
        with contextlib.redirect_stdout(io.StringIO()):
            out, constr = Noise_Model().learn_null_model(df, 1, np.asarray(init))
        fits[name] = {"start": init, "x": [float(v) for v in out.x], "objective": float(out.fun),
                      "success": bool(out.success), "message": str(out.message), "seconds": time.time() - t}
    print("NOISET_JSON " + json.dumps(fits))
""")


def find_noisets_python(explicit: str | None) -> str | None:
    """An interpreter that can import ``noisets``: ``explicit``, else this one, else none."""
    for candidate in ([explicit] if explicit else [sys.executable]):
        probe = subprocess.run([candidate, "-c", "import noisets.noisettes"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def crosscheck_noisets(python: str, *, dispersion: float = 0.1, depth: int = 100_000, n_clones: int = 20_000,
                       seed: int = 0) -> dict[str, Any]:
    """Learn NoisET's NB null model and our beta-binomial rho on the same simulated replicate pair.

    NoisET (noise model 1): ``n | f ~ NegBin(mean m = N f, var = m + beta * m**alpha)`` with a power-law
    prior ``rho(f) ~ f**alpha_rho``. An NB count is Poisson(m g) with g ~ Gamma(1/D, D), D = beta m**(alpha-2);
    for two libraries of equal depth, ``b | n`` is then exactly beta-binomial with ``rho = D / (2 + D)``: that is
    the NoisET-implied rho compared with ours. The simulator's truth is alpha = 2, beta = dispersion, density
    exponent -2.2.
    """
    from tcrtrack.expansion import bh_qvalues, betabinomial_pvalues, fisher_pvalues
    from tcrtrack.noise import NoiseModel, fit_noise_from_replicates

    rng = np.random.default_rng([seed, 99])
    f = _pareto_freqs(rng, n_clones)
    r1 = simulate.library_counts(f, depth=depth, dispersion=dispersion, rng=np.random.default_rng([seed, 1]))
    r2 = simulate.library_counts(f, depth=depth, dispersion=dispersion, rng=np.random.default_rng([seed, 2]))
    seen = (r1 + r2) > 0
    ours = fit_noise_from_replicates([r1, r2])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pair.tsv"
        pl.DataFrame({"Clone_count_1": r1[seen], "Clone_count_2": r2[seen]}).write_csv(path, separator="\t")
        proc = subprocess.run([python, "-c", _NOISET_HELPER, str(path)], capture_output=True, text=True, check=False,
                              timeout=900)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("NOISET_JSON ")), None)
    if line is None:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    fits = json.loads(line.removeprefix("NOISET_JSON "))
    best = min(fits, key=lambda k: fits[k]["objective"] if fits[k]["success"] else math.inf)
    fit = fits[best]
    alpha_rho, beta_mv, alpha_mv, log10_fmin = fit["x"]
    n_mean = (r1.sum() + r2.sum()) / 2

    def noiset_rho(log10f: np.ndarray) -> np.ndarray:
        m = n_mean * 10.0 ** np.asarray(log10f)
        d_eff = beta_mv * m ** (alpha_mv - 2.0)
        return d_eff / (2.0 + d_eff)

    bins = [{"log10_freq": x, "mean_count": float(n_mean * 10**x), "n_clones": c, "rho_ours": r,
             "rho_noiset": float(noiset_rho(x)), "rho_truth": dispersion / (2 + dispersion)}
            for x, r, c in zip(ours.log10_freq, ours.rho_bins, ours.n_clones)]
    # Calls on the null pair (r2 vs r1: nothing changed) at BH 5%, log2fc >= 1, count >= 3.
    implied = NoiseModel(source="replicates", log10_freq=ours.log10_freq,
                         rho_bins=tuple(float(v) for v in noiset_rho(np.array(ours.log10_freq))),
                         n_clones=ours.n_clones, p_null=ours.p_null)
    a, b = r1[seen], r2[seen]
    n_a, n_b = int(r1.sum()), int(r2.sum())
    lfc = np.log2((b + 1) / n_b) - np.log2((a + 1) / n_a)

    def n_calls(p: np.ndarray) -> int:
        return int(np.sum((bh_qvalues(p) < 0.05) & (lfc >= 1) & (b >= 3)))

    return {
        "python": python, "dispersion": dispersion, "depth": depth, "n_clones": n_clones,
        "seconds": sum(f["seconds"] for f in fits.values()), "fits": fits, "best": best,
        "success": fit["success"], "message": fit["message"], "alpha_rho": alpha_rho, "beta": beta_mv,
        "alpha": alpha_mv, "log10_fmin": log10_fmin, "bins": bins,
        "null_pair_calls": {"fisher": n_calls(fisher_pvalues(a, b, n_a=n_a, n_b=n_b)),
                            "ours": n_calls(betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=ours)),
                            "noiset_rho": n_calls(betabinomial_pvalues(a, b, n_a=n_a, n_b=n_b, noise=implied))},
    }


def _noiset_starts(fits: dict[str, Any]) -> str:
    return "; ".join(
        f"{name} {[round(v, 3) for v in f['start']]} -> beta {f['x'][1]:.4f}, alpha {f['x'][2]:.3f}, "
        f"exponent {f['x'][0]:.3f}, objective {f['objective']:.5f} ({f['message']}, {f['seconds']:.0f} s)"
        for name, f in fits.items())


def render_crosscheck(pv: dict[str, Any] | None, noiset: dict[str, Any] | None, noiset_note: str) -> str:
    parts = []
    if pv is not None:
        parts.append(textwrap.dedent(f"""\
            **P-values against scipy** ({pv['n_pairs']} clones of one simulated comparison with 40 planted
            expansions, depths {pv['n_a']} / {pv['n_b']}, dispersion 0.1; a quarter of them the smallest beta-binomial
            p-values, the rest at random; beta-binomial p from {pv['p_range'][0]:.1e} to {pv['p_range'][1]:.2g}):

            - Fisher (`fisher_pvalues`, vectorised hypergeometric) vs a loop of
              `scipy.stats.fisher_exact(..., alternative="greater")`: max |difference| {pv['fisher_max_abs']:.1e},
              max relative difference {pv['fisher_max_rel_p_gt_1e-300']:.1e} (smallest p {pv['fisher_min_p']:.1e}).
            - Beta-binomial (`betabinomial_pvalues`, rho {pv['rho_range'][0]:.3f}–{pv['rho_range'][1]:.3f} from the
              bulk fit) vs `scipy.stats.betabinom.sf`: max |difference| {pv['bb_max_abs_vs_scipy']:.1e}, max relative
              difference {pv['bb_max_rel_vs_scipy_p_gt_1e-10']:.1e} where scipy's p > 1e-10; vs an exact
              log-space sum of `betabinom.logpmf` over b..n: max relative difference
              {pv['bb_max_rel_vs_exact_sum']:.1e} down to p = {pv['bb_min_p']:.1e} (scipy's `sf` returned 0 or
              less for {pv['bb_scipy_zero_or_negative_in_tail']} far-tail clones that have p > 0)."""))
    if noiset is not None and "error" not in noiset:
        rows = [[f"{b['log10_freq']:.2f}", f"{b['mean_count']:.1f}", str(b["n_clones"]), f"{b['rho_ours']:.4f}",
                 f"{b['rho_noiset']:.4f}", f"{b['rho_truth']:.4f}"] for b in noiset["bins"]]
        calls = noiset["null_pair_calls"]
        parts.append(textwrap.dedent(f"""\
            **Null model against NoisET** (`noisets` 0.0.1 from PyPI, Puelma Touzel et al. 2020 / Koraichi et
            al. 2022; run with `{noiset['python']}`, a separate environment made by `python3 -m venv
            /tmp/noisets-venv && /tmp/noisets-venv/bin/pip install noisets==0.0.1 seaborn "numpy<2" "pandas<2.3"
            "scipy<1.14" "matplotlib<3.9"`, since NoisET 0.0.1 uses `np.Inf`, gone in numpy 2; {noiset['seconds']:.0f}
            s). One replicate pair of
            {noiset['n_clones']} clones (power-law density exponent 2.2), {noiset['depth']} templates each,
            Gamma-Poisson library noise of dispersion {noiset['dispersion']:g} (`tcrtrack.simulate.library_counts`).
            NoisET's negative-binomial null model (noise model 1: `n | f ~ NB(m = N f, var = m + beta m^alpha)`,
            power-law prior `f^alpha_rho` on [fmin, 1]) was learned from two starts; the best likelihood
            ({noiset['best']} start) gives `var = m + {noiset['beta']:.4f} m^{noiset['alpha']:.3f}` (truth
            `m + {noiset['dispersion']:g} m^2`), power-law exponent {noiset['alpha_rho']:.3f} (truth -2.2), log10 fmin
            {noiset['log10_fmin']:.2f}. Starts: {_noiset_starts(noiset['fits'])}.
            Our `fit_noise_from_replicates` on the same pair, per frequency bin, against the NoisET-implied
            rho = D/(2+D) with D = beta m^(alpha-2) (exact for a Gamma-Poisson pair of equal depths):
            """) + "\n" + _table(["log10 freq", "mean count m", "clones", "rho (ours)", "rho (NoisET-implied)",
                                   "rho (truth)"], rows) + "\n\n" + textwrap.dedent(f"""\
            Calls on this null pair (nothing changed; BH 5%, log2fc >= 1, count >= 3): Fisher {calls['fisher']},
            beta-binomial with our rho {calls['ours']}, beta-binomial with the NoisET-implied rho
            {calls['noiset_rho']}."""))
    elif noiset is not None:
        parts.append(f"**NoisET**: the run failed: `{noiset['error'][-500:]}`")
    if noiset_note:
        parts.append(noiset_note)
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu}, Python {platform.python_version()}"


def _keep_interpretation(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        if INTERPRETATION_START in text and INTERPRETATION_END in text:
            return text[text.index(INTERPRETATION_START):text.index(INTERPRETATION_END) + len(INTERPRETATION_END)]
    return (f"{INTERPRETATION_START}\n_(hand-written interpretation goes here; kept when the script rewrites "
            f"this file)_\n{INTERPRETATION_END}")


def render_report(*, tables: dict[str, str], claim: str, crosscheck: str, args: argparse.Namespace,
                  settings: Sequence[Setting], seconds: list[float], wall: float, interpretation: str,
                  load: tuple[float, float] = (float("nan"), float("nan"))) -> str:
    s0 = settings[0]
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    return textwrap.dedent(f"""\
        # Accuracy of the calls on simulated cohorts

        Generated by `benchmarks/accuracy.py` (do not edit the tables by hand; rerun the command).

        - Date: {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}
        - Machine: {machine()}
        - Command: `{command}`
        - Runtime: {wall:.0f} s wall for {len(settings)} cohorts with {args.jobs} process(es) (per cohort
          {min(seconds):.0f}–{max(seconds):.0f} s: simulate + ingest + both models){'' if not crosscheck else ', cross-checks included'};
          1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end (other work on the machine slows it)

        ## Design

        Each cohort: `simulate_cohort` with {s0.n_patients} patients x {s0.n_clones} clones, planted
        {s0.n_planted[0]} new_expanded_tumor, {s0.n_planted[1]} blood_only and {s0.n_planted[2]} tumor_only clones per
        patient; blood at day 0 (baseline; two technical replicates for patients {', '.join(f'P{i + 1:02d}' for i in s0.replicate_patients)},
        one library for the others) and days {', '.join(map(str, POST_DAYS))}; biopsies at days
        {', '.join(map(str, TUMOR_DAYS))}; tumour overdispersion = blood overdispersion. Settings:
        dispersion {', '.join(f'{d:g}' for d in args.dispersions)} x depths (blood/tumour templates)
        {', '.join(f'{_k(b)}/{_k(t)}' for b, t in args.depths)} x seeds {', '.join(map(str, args.seeds))}, both models
        (`CallSettings(model=...)`, everything else default: FDR 5% per comparison, log2fc >= 1, count >= 3,
        tumour rule `significant`, the flag's tumour test BH over the blood-expanded clones). Every cell is the mean over seeds (min–max over seeds).

        Truth (see the module docstring for details): blood calls are true for planted blood clones
        (new_expanded_tumor, blood_only). Per comparison, **exact** truth: a call at day d is true when the clone's
        true frequency at d exceeds its true baseline frequency (planted clones decay after their peak and can be back
        at exactly their baseline level, a true null); **lenient** truth: every planted blood clone is true at every
        post day. Tumour accumulation is true for new_expanded_tumor + tumor_only (their true frequency rises after
        treatment); flagged clones are true for new_expanded_tumor. Realised FDP = false calls / calls, pooled over
        the cohort's patients; the per-comparison FDR is the mean of the FDPs of the comparisons (patient x day),
        the quantity Benjamini-Hochberg bounds by 5%.

        ## Claim check (nominal FDR 5%, ceiling 10%)

        {{claim}}

        ## Blood expansion (expanded at >= 1 post-infusion day)

        {{blood}}

        ## Per comparison (each post-infusion day vs baseline; each post-treatment biopsy vs pre)

        {{comparison}}

        ## Overdispersed model: blood comparisons by noise source, and the fitted rho

        Patients with baseline replicates fit rho on the replicates (an exact null), the others on the bulk of the
        comparison itself. Theory for two single libraries of equal depth: rho = D/(2+D); against a pooled
        two-replicate baseline the effective rho is smaller (about 3D/(4+3D)), so the replicate fit errs
        conservative there.

        {{source}}

        ## Tumour accumulation and flagged clones

        "By 'new' rule only": accumulating because absent from the pre-treatment biopsy and >= 3 templates after,
        without a significant test (rule `significant_or_new`).

        {{tumor}}

        ## Why the overdispersed calls are conservative: BH alone, and null p-value calibration

        Left: the Benjamini-Hochberg rejections alone (q < 5%, without the log2fc >= 1 and count >= 3 filters)
        and their per-comparison FDR (exact truth). Right: calibration of the null clones' p-values (true
        frequency not increased, a + b >= 2), randomised within the atom of the observed count,
        `P(X > b) + U P(X = b)` under the null distribution the model used, so that a right model gives exactly
        uniform p-values whatever the discreteness: observed P(p <= t) / t, pooled over comparisons and seeds
        (min–max over seeds); 1 is exact, below 1 conservative, above 1 anti-conservative.

        {{calibration}}

        ## Flag rule: current tumour rule vs alternatives (evaluated on the same calls)

        Flagged = expanded in blood and accumulating in tumour. "tcrtrack (default)" is the tool's flag; "significant only" replaces it
        by `significant` (the BH test over every clone of the biopsy pair). "proposed": the tumour test of the
        flag as its own family, BH per biopsy over the blood-expanded clones only (log2fc >= 1, count >= 3 as
        now); re-derived here as a check of the tool's own flag, which implements it.

        {{flag_rules}}

        ## Blood test: two proposed changes (overdispersed model, evaluated on the same calls)

        Not implemented in tcrtrack; re-derived here from each comparison's fitted noise model. **pooled-baseline
        rho**: for patients whose baseline pools k = 2 replicates, the replicate-pair rho is converted to the
        rho of "pooled baseline vs one later library", exact under Gamma-Poisson library noise:
        D = 2 rho / (1 - rho), rho_k = D / (k + 1 + D) (the bulk-fit patients are unchanged). **testable-only
        BH**: Benjamini-Hochberg over the clones whose smallest attainable p-value P(X = n | n) is <= 5%
        (Tarone 1990; Gilbert 2005); the rest (mostly n <= 4) can never be rejected, and the selection depends on
        n only, which the conditional test conditions on, so FDR control is kept. {{variants_check}}

        {{variants}}

        ## Cross-check against a second implementation

        {{crosscheck}}

        ## Interpretation

        {{interpretation}}
        """).format(claim=claim, crosscheck=crosscheck or "_not run (`--no-crosscheck`)_", interpretation=interpretation,
                    **tables)


def parse_depths(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        blood, _, tumor = item.partition(":")
        out.append((int(blood), int(tumor)))
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dispersions", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.1, 0.3],
                        help="library overdispersion levels (default 0,0.1,0.3)")
    parser.add_argument("--depths", type=parse_depths, default=[(20_000, 8_000), (100_000, 30_000)],
                        help="blood:tumour mean templates per library, comma-separated (default 20000:8000,100000:30000)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2, 3, 4],
                        help="simulation seeds (default 0,1,2,3,4)")
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--clones", type=int, default=20_000, help="blood clonotypes per patient")
    parser.add_argument("--planted", type=lambda s: tuple(int(x) for x in s.split(",")), default=(30, 15, 15),
                        help="planted new_expanded_tumor,blood_only,tumor_only per patient")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here (e.g. benchmarks/ACCURACY.md)")
    parser.add_argument("--records", type=Path, default=None, help="also write the raw per-patient/per-comparison "
                        "records (parquet) with this path prefix")
    parser.add_argument("--no-crosscheck", dest="crosscheck", action="store_false",
                        help="skip the scipy / NoisET cross-checks")
    parser.add_argument("--noisets-python", default=None,
                        help="a Python that can import noisets (default: this one, skipped when it cannot)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    settings = [Setting(dispersion=d, blood_depth=b, tumor_depth=t, seed=s, n_patients=args.patients,
                        n_clones=args.clones, n_planted=args.planted)
                for s in args.seeds for d in args.dispersions for b, t in args.depths]
    patients, comparisons, seconds = run_all(settings, jobs=args.jobs)
    if args.records is not None:
        patients.write_parquet(f"{args.records}_patients.parquet")
        comparisons.write_parquet(f"{args.records}_comparisons.parquet")
    tables = render_tables(patients, comparisons)
    claim = claim_check(patients, comparisons, nominal=0.05, ceiling=0.10)
    crosscheck = ""
    if args.crosscheck:
        pv = crosscheck_pvalues()
        python = find_noisets_python(args.noisets_python)
        noiset, note = None, ""
        if python is None:
            note = ("**NoisET**: not run, no interpreter could import `noisets` (`pip install noisets` in a separate "
                    "environment and pass `--noisets-python`).")
        else:
            noiset = crosscheck_noisets(python)
        crosscheck = render_crosscheck(pv, noiset, note)
    wall = time.perf_counter() - start
    out_path = args.out
    interpretation = _keep_interpretation(out_path) if out_path is not None else ""
    report = render_report(tables=tables, claim=claim, crosscheck=crosscheck, args=args, settings=settings,
                           seconds=seconds, wall=wall, interpretation=interpretation,
                           load=(load_start, os.getloadavg()[0]))
    print(report)
    if out_path is not None:
        out_path.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
