"""Simulate a synthetic cell-therapy cohort with known truth (AIRR TSV + sample sheet).

Design
------
*Repertoire.* Each patient gets ``n_clones`` distinct productive TRB clonotypes drawn
from OLGA's human TRB model (:mod:`tcrtrack.olga_source`), distinct on
(junction_aa, V gene, J gene). True blood frequencies follow a power law: clone weights
are Pareto draws with density ``p(w) ∝ w**-power_law_exponent`` on ``1 <= w <= n**(1/(a-1))``
(truncated at the typical largest of ``n`` draws, so no single draw swamps a repertoire by
chance), so with the default exponent 2.2 a few clones take percents of the repertoire and most clones are seen
once or not at all in a sample. The tumour holds a random quarter of the blood clonotypes
(chosen with probability ∝ sqrt(blood frequency)) plus tumour-resident clonotypes (15% of
``n_clones``, never in blood) with their own, more clonal Pareto weights (exponent
``1 + (power_law_exponent - 1) * 5/6``). About 1.5% non-productive rearrangements
(frameshift ``_`` or stop ``*`` in junction_aa) and 0.3% TRA clonotypes are mixed into
both compartments so that QC has something to filter.

*Planted clones* (``n_planted`` per patient, counts for :data:`CATEGORIES`):

``new_expanded_tumor``
    Blood: at baseline absent (p=0.5) or at a low level ``b ~ logU(1e-5, 1e-4)``; after
    infusion ``b * fold`` (``fold ~ logU(10, 200)``) at a random peak post day, decaying by
    ``r ~ U(0.3, 0.7)`` per post day away from the peak (never below ``b``). Tumour:
    post-treatment biopsies at ``L ~ logU(2e-4, 5e-3)`` (times lognormal(0, 0.25) per
    biopsy); the pre-treatment biopsy at 0 (p=0.5) or ``L / logU(5, 50)``.
``blood_only``
    The same blood trajectory; tumour frequency either 0 or a constant ``logU(1e-4, 1e-3)``
    in every biopsy (present but not enriched).
``tumor_only``
    Blood frequency unchanged (its null value); tumour profile as ``new_expanded_tumor``.

Every other clonotype is null: its true frequency is the same at every timepoint of a
compartment. Planted frequencies are absolute; null clones share the remaining
``1 - sum(planted)`` in fixed proportions (the compositional effect is a few percent).

*Noise model.* Every library (each replicate, timepoint and biopsy) is an independent
draw from the true frequencies ``f``::

    g_i ~ Gamma(shape=1/dispersion, scale=dispersion)   (mean 1, variance dispersion)
    p_i = f_i g_i / sum_k f_k g_k
    N   = round(depth * U(0.8, 1.2))
    counts ~ Multinomial(N, p)

so a clone with expected count ``mu`` has ``Var ≈ mu + dispersion * mu**2`` (negative
binomial, as in edgeR/DESeq2); ``dispersion = 0`` is pure multinomial (Poisson) sampling.
Technical replicates are two such libraries from the same ``f``, so replicate noise equals
the null noise between timepoints. Each library has its own random stream keyed on
(seed, patient, compartment, day, replicate), so adding samples does not change others.

*Infused product* (patients in ``product_patients`` only). ``n_product_clones`` further
OLGA clonotypes (distinct from the patient's others) with Pareto weights (the blood exponent)
give the product's true frequencies ``pi_i`` (sum 1); the product is sequenced once
(compartment ``product``, day 0, depth ``product_depth``, the blood noise model). Product
clones are absent from baseline blood and from the tumour. After infusion (day ``t > 0``)
their true blood frequency is::

    f_i(t) = product_blood_share * pi_i * 2 ** (-t / product_half_life_days)

exact exponential decay with one half-life for every product clone, so the product's clones
take ``product_blood_share`` of the blood at infusion and their share halves every
``product_half_life_days``. Planted clones keep their absolute frequencies; null clones share
the rest. ``product_truth.tsv`` (category ``product``) lists every product clone with
``pi_i`` (``product_freq``), its rank in the product, ``product_blood_share * pi_i``
(``blood_freq_at_infusion``) and the true ``half_life_days``. Patients without a product,
their baseline blood and every biopsy are byte-identical to a run without products.
"""

from __future__ import annotations

import gzip
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import polars as pl

from tcrtrack.olga_source import generate_clonotypes, make_nonproductive, olga_seed

CATEGORIES: tuple[str, ...] = ("new_expanded_tumor", "blood_only", "tumor_only")
SHEET_COLUMNS: tuple[str, ...] = (
    "patient", "sample", "compartment", "day", "replicate", "path", "format", "response",
)
AIRR_COLUMNS: tuple[str, ...] = (
    "sequence_id", "sequence", "rev_comp", "productive", "v_call", "d_call", "j_call",
    "sequence_alignment", "germline_alignment", "junction", "junction_aa", "v_cigar",
    "d_cigar", "j_cigar", "locus", "duplicate_count",
)
TRUTH_COLUMNS: tuple[str, ...] = (
    "patient", "junction_aa", "v_gene", "j_gene", "category", "junction", "v_call",
    "j_call", "blood_baseline_freq", "blood_level", "blood_peak_freq", "blood_fold",
    "peak_day", "tumor_pre_freq", "tumor_post_freq",
)

_TUMOR_INFILTRATING = 0.25  # share of blood clonotypes also in the tumour
_TUMOR_RESIDENT = 0.15  # tumour-only clonotypes, as a share of n_clones
_NONPRODUCTIVE = 0.015  # non-productive rearrangements, share of n_clones
_TRA = 0.003  # TRA clonotypes (wrong locus), share of n_clones
_DEPTH_JITTER = 0.2
_P_ABSENT = 0.5  # chance a planted clone is absent at baseline / pre-treatment
_BLOOD_LEVEL, _BLOOD_FOLD, _DECAY = (1e-5, 1e-4), (10.0, 200.0), (0.3, 0.7)
_TUMOR_POST, _TUMOR_PRE_FOLD, _TUMOR_STABLE = (2e-4, 5e-3), (5.0, 50.0), (1e-4, 1e-3)
_COMPARTMENT_CODE = {"blood": 1, "tumor": 2, "product": 3}
PRODUCT_TRUTH_COLUMNS: tuple[str, ...] = (
    "patient", "junction_aa", "v_gene", "j_gene", "category", "junction", "v_call", "j_call",
    "product_freq", "product_rank", "blood_freq_at_infusion", "half_life_days",
)

#: Options of :func:`simulate_demo` (4 patients x 8-10 samples, one with a product sample; ~3.3 MB of gzipped TSV).
DEMO_OPTIONS: dict[str, Any] = {
    "n_patients": 4, "n_clones": 6_000, "blood_depth": 20_000, "tumor_depth": 8_000, "dispersion": 0.1,
    "n_planted": (12, 6, 6), "post_days": (7, 14, 28, 56), "product_patients": (0,),
}


@dataclass(frozen=True)
class SimulatedCohort:
    """Paths written by :func:`simulate_cohort`."""

    out_dir: Path
    sheet: Path
    truth: Path
    files: tuple[Path, ...]
    product_truth: Path | None = None  # product_truth.tsv, only when some patient has a product

    @property
    def total_bytes(self) -> int:
        """Size on disk of the sheet, the truth tables and every repertoire file."""
        extra = (self.product_truth,) if self.product_truth is not None else ()
        return sum(p.stat().st_size for p in (self.sheet, self.truth, *extra, *self.files))


@dataclass(frozen=True)
class _Patient:
    clones: pl.DataFrame  # clonotype table incl. productive/locus/v_call_out columns
    freqs: dict[tuple[str, int], np.ndarray]  # (compartment, day) -> true frequencies
    truth: pl.DataFrame
    blood_planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows


def simulate_cohort(
    out_dir: Path,
    *,
    n_patients: int = 4,
    n_clones: int = 20_000,
    blood_depth: int = 40_000,
    tumor_depth: int = 15_000,
    post_days: Sequence[int] = (14, 28, 56),
    tumor_days: Sequence[int] = (-7, 28, 56),
    dispersion: float = 0.1,
    tumor_dispersion: float | None = None,
    n_planted: Sequence[int] = (30, 15, 15),
    replicate_patients: Sequence[int] | float = (0, 1),
    missing_pre_biopsy: Sequence[int] = (),
    power_law_exponent: float = 2.2,
    product_patients: Sequence[int] | float = (),
    n_product_clones: int = 500,
    product_depth: int | None = None,
    product_blood_share: float = 0.1,
    product_half_life_days: float = 20.0,
    seed: int = 0,
    sheet: Path | None = None,
    progress: bool = False,
) -> SimulatedCohort:
    """Write a synthetic cohort: AIRR files, ``samples.tsv`` and ``truth.tsv``.

    Parameters
    ----------
    out_dir
        Output folder (created); files go to ``out_dir/Pxx/<sample>.tsv.gz``.
    n_patients
        Number of patients ``P01, P02, ...``.
    n_clones
        Distinct productive TRB clonotypes in each patient's blood.
    blood_depth, tumor_depth
        Mean templates per library (each library jitters it by ±20%).
    post_days
        Blood sampling days after the first infusion (> 0); baseline blood is day 0.
    tumor_days
        Biopsy days; days <= 0 are pre-treatment, at least one must be > 0.
    dispersion
        Gamma overdispersion of library frequencies (0 = Poisson sampling only).
    tumor_dispersion
        Overdispersion of biopsies; ``None`` uses ``dispersion``.
    n_planted
        Planted clones per patient for ``new_expanded_tumor``, ``blood_only``,
        ``tumor_only``.
    replicate_patients
        0-based indices of the patients whose baseline blood has two technical
        replicates, or a fraction of patients (the first ``ceil(fraction * n)``).
    missing_pre_biopsy
        0-based indices of patients without a pre-treatment biopsy.
    power_law_exponent
        Exponent ``a > 1`` of the clone-weight density ``p(w) ∝ w**-a``.
    product_patients
        0-based indices of the patients with a sequenced infused product (sample
        ``{patient}_product_d0_r1``), or a fraction of patients; ``()`` (default) for none.
    n_product_clones
        Distinct clonotypes in each product.
    product_depth
        Mean templates of the product library; ``None`` uses ``blood_depth``.
    product_blood_share
        Share of the blood the product's clones take at infusion (day 0, extrapolated).
    product_half_life_days
        Half-life of every product clone's blood frequency after infusion (days).
    seed
        Everything is a function of this seed (same seed, byte-identical files).
    sheet
        Where to write the sample sheet (default ``out_dir/samples.tsv``); its ``path``
        column is relative to the sheet's folder.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    SimulatedCohort
        Paths of the sample sheet, the truth table and the repertoire files.

    Notes
    -----
    Sample ids are ``{patient}_{compartment}_d{day}_r{replicate}``. With products,
    ``product_truth.tsv`` is written next to ``truth.tsv``. The sheet's
    ``response`` alternates ``responder`` (P01, P03, ...) / ``non-responder``; it is
    metadata only and does not change the simulation.
    """
    post_days, tumor_days = tuple(int(d) for d in post_days), tuple(int(d) for d in tumor_days)
    n_planted = tuple(int(n) for n in n_planted)
    _validate(n_patients, n_clones, blood_depth, tumor_depth, post_days, tumor_days,
              dispersion, tumor_dispersion, n_planted, power_law_exponent, seed)
    if isinstance(replicate_patients, float):
        replicate_patients = range(math.ceil(replicate_patients * n_patients))
    if isinstance(product_patients, float):
        product_patients = range(math.ceil(product_patients * n_patients))
    replicated, no_pre, with_product = (set(replicate_patients), set(missing_pre_biopsy),
                                        set(product_patients))
    if not replicated | no_pre | with_product <= set(range(n_patients)):
        raise ValueError("replicate_patients/missing_pre_biopsy/product_patients: indices must be "
                         "0..n_patients-1")
    product_depth = blood_depth if product_depth is None else int(product_depth)
    if with_product:
        _validate_product(n_product_clones, product_depth, product_blood_share,
                          product_half_life_days)
    disp = {"blood": dispersion, "product": dispersion,
            "tumor": dispersion if tumor_dispersion is None else tumor_dispersion}
    depth = {"blood": blood_depth, "tumor": tumor_depth, "product": product_depth}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    designs = [
        _sample_design(post_days, tumor_days, p in replicated, p in no_pre)
        + ([("product", 0, 1)] if p in with_product else [])
        for p in range(n_patients)
    ]
    sheet_rows: list[dict[str, Any]] = []
    truths: list[pl.DataFrame] = []
    product_truths: list[pl.DataFrame] = []
    files: list[Path] = []
    with _progress(progress, sum(1 + len(d) for d in designs)) as bar:
        for p, design in enumerate(designs):
            pid = f"P{p + 1:02d}"
            patient = _simulate_patient(
                pid, p, seed=seed, n_clones=n_clones, post_days=post_days,
                tumor_days=tumor_days, n_planted=n_planted, exponent=power_law_exponent,
            )
            truths.append(patient.truth)
            if p in with_product:
                patient, product_truth = _add_product(
                    patient, pid, p, seed=seed, n_product=n_product_clones, post_days=post_days,
                    blood_share=product_blood_share, half_life=product_half_life_days,
                    exponent=power_law_exponent,
                )
                product_truths.append(product_truth)
            bar.update(1)
            for compartment, day, rep in design:
                sample = f"{pid}_{compartment}_d{day}_r{rep}"
                rng = np.random.default_rng(
                    [seed, p, _COMPARTMENT_CODE[compartment], day + 100_000, rep]
                )
                counts = library_counts(
                    patient.freqs[compartment, day], depth=depth[compartment],
                    dispersion=disp[compartment], rng=rng,
                )
                rel = f"{pid}/{sample}.tsv.gz"
                _write_gz(out_dir / rel, airr_rows(patient.clones, counts, sample))
                files.append(out_dir / rel)
                sheet_rows.append({
                    "patient": pid, "sample": sample, "compartment": compartment,
                    "day": day, "replicate": rep, "path": rel, "format": "airr",
                    "response": "responder" if p % 2 == 0 else "non-responder",
                })
                bar.update(1)
    sheet = out_dir / "samples.tsv" if sheet is None else Path(sheet)
    truth = out_dir / "truth.tsv"
    prefix = os.path.relpath(out_dir, sheet.parent)
    sheet.write_text(
        pl.DataFrame(sheet_rows).select(SHEET_COLUMNS)
        .with_columns(path=pl.lit(prefix + "/") + pl.col("path") if prefix != "." else pl.col("path"))
        .write_csv(separator="\t")
    )
    truth.write_text(pl.concat(truths).write_csv(separator="\t"))
    product_truth = None
    if product_truths:
        product_truth = out_dir / "product_truth.tsv"
        product_truth.write_text(pl.concat(product_truths).write_csv(separator="\t"))
    return SimulatedCohort(out_dir=out_dir, sheet=sheet, truth=truth, files=tuple(files),
                           product_truth=product_truth)


def simulate_demo(out_dir: Path, *, seed: int = 1, sheet: Path | None = None,
                  progress: bool = False) -> SimulatedCohort:
    """Write the small demo cohort (:data:`DEMO_OPTIONS`, ~3.3 MB) to ``out_dir``."""
    return simulate_cohort(out_dir, seed=seed, sheet=sheet, progress=progress, **DEMO_OPTIONS)


def library_counts(
    freq: np.ndarray, *, depth: int, dispersion: float, rng: np.random.Generator
) -> np.ndarray:
    """Sequence one library: Gamma-overdispersed frequencies, then a multinomial draw.

    Parameters
    ----------
    freq
        True clone frequencies (non-negative, sum 1).
    depth
        Mean number of templates; the library draws ``round(depth * U(0.8, 1.2))``.
    dispersion
        Variance of the mean-1 Gamma factor per clone (0 disables it).
    rng
        Random stream of this library.

    Returns
    -------
    numpy.ndarray
        Integer counts, same shape as ``freq`` (zero where ``freq`` is zero).
    """
    present = np.flatnonzero(freq > 0)
    p = freq[present]
    if dispersion > 0:
        p = p * rng.gamma(1.0 / dispersion, dispersion, size=p.size)
    n = int(round(depth * rng.uniform(1 - _DEPTH_JITTER, 1 + _DEPTH_JITTER)))
    counts = np.zeros(freq.shape, dtype=np.int64)
    counts[present] = rng.multinomial(n, p / p.sum())
    return counts


def _validate(n_patients: int, n_clones: int, blood_depth: int, tumor_depth: int,
              post_days: tuple[int, ...], tumor_days: tuple[int, ...], dispersion: float,
              tumor_dispersion: float | None, n_planted: tuple[int, ...],
              exponent: float, seed: int) -> None:
    problems = []
    if not 1 <= n_patients <= 99:
        problems.append("n_patients must be in 1..99")
    if blood_depth < 1 or tumor_depth < 1:
        problems.append("depths must be positive")
    if not post_days or min(post_days) <= 0 or len(set(post_days)) != len(post_days):
        problems.append("post_days must be distinct days > 0")
    if max(tumor_days, default=0) <= 0 or len(set(tumor_days)) != len(tumor_days):
        problems.append("tumor_days must be distinct with at least one day > 0")
    if dispersion < 0 or (tumor_dispersion is not None and tumor_dispersion < 0):
        problems.append("dispersion must be >= 0")
    if len(n_planted) != len(CATEGORIES) or min(n_planted) < 0:
        problems.append(f"n_planted needs {len(CATEGORIES)} non-negative counts")
    elif n_clones < 100 or 10 * sum(n_planted) > n_clones:
        problems.append("n_clones must be >= 100 and >= 10 x the planted clones")
    if exponent <= 1:
        problems.append("power_law_exponent must be > 1")
    if seed < 0:
        problems.append("seed must be >= 0")
    if problems:
        raise ValueError("; ".join(problems))


def _validate_product(n_product: int, depth: int, share: float, half_life: float) -> None:
    problems = []
    if n_product < 1:
        problems.append("n_product_clones must be >= 1")
    if depth < 1:
        problems.append("product_depth must be positive")
    if not 0 < share <= 0.3:
        problems.append("product_blood_share must be in (0, 0.3]")
    if not (math.isfinite(half_life) and half_life > 0):
        problems.append("product_half_life_days must be a positive number")
    if problems:
        raise ValueError("; ".join(problems))


def _sample_design(
    post_days: tuple[int, ...], tumor_days: tuple[int, ...], replicated: bool, no_pre: bool
) -> list[tuple[str, int, int]]:
    """(compartment, day, replicate) of one patient's libraries, in sheet order."""
    blood = [("blood", 0, 1)] + ([("blood", 0, 2)] if replicated else [])
    blood += [("blood", d, 1) for d in sorted(post_days)]
    tumor = [("tumor", d, 1) for d in sorted(tumor_days) if not (no_pre and d <= 0)]
    return blood + tumor


def _loguniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size=n))


def _compose(null: np.ndarray, idx: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Planted clones at absolute ``target``; null clones share the rest proportionally."""
    if target.sum() > 0.5:
        raise ValueError("planted clones would take over half the repertoire; plant fewer")
    f = null.copy()
    f[idx] = 0.0
    f *= (1.0 - target.sum()) / f.sum()
    f[idx] = target
    return f


def _simulate_patient(
    pid: str, p: int, *, seed: int, n_clones: int, post_days: tuple[int, ...],
    tumor_days: tuple[int, ...], n_planted: tuple[int, ...], exponent: float,
) -> _Patient:
    """Clonotypes, true frequencies per (compartment, day) and truth of one patient."""
    rng = np.random.default_rng([seed, p, 0])
    n_res, n_np = round(_TUMOR_RESIDENT * n_clones), max(1, round(_NONPRODUCTIVE * n_clones))
    trb = generate_clonotypes(n_clones + n_res + n_np, seed=olga_seed(seed, p, 1))
    tra = generate_clonotypes(max(1, round(_TRA * n_clones)), seed=olga_seed(seed, p, 2),
                              chain="TRA")
    nonprod = make_nonproductive(trb.slice(n_clones + n_res), rng=rng)
    clones = pl.concat([
        trb.slice(0, n_clones + n_res).with_columns(productive=pl.lit("T"), locus=pl.lit("TRB")),
        nonprod.with_columns(productive=pl.lit("F"), locus=pl.lit("TRB")),
        tra.with_columns(productive=pl.lit("T"), locus=pl.lit("TRA")),
    ])
    # TRBV6-2 and TRBV6-3 are identical germlines: aligners report both (first kept).
    clones = clones.with_columns(v_call_out=pl.col("v_call").replace(
        {"TRBV6-2*01": "TRBV6-2*01,TRBV6-3*01", "TRBV6-3*01": "TRBV6-3*01,TRBV6-2*01"}))
    n_all, n_art = clones.height, clones.height - n_clones - n_res

    def pareto(a: float, n: int) -> np.ndarray:
        # Pareto on [1, n**(1/(a-1))] (the typical largest of n draws), by inversion:
        # truncation stops one draw from taking most of a repertoire by chance.
        alpha = a - 1.0
        u = rng.random(n)
        return (1.0 - u * (1.0 - 1.0 / n)) ** (-1.0 / alpha)

    blood_null = np.zeros(n_all)
    blood_null[:n_clones] = pareto(exponent, n_clones)
    blood_null[n_clones + n_res:] = pareto(exponent, n_art)
    tumor_exponent = 1.0 + (exponent - 1.0) * 5.0 / 6.0
    n_inf = round(_TUMOR_INFILTRATING * n_clones)
    pick = np.sqrt(blood_null[:n_clones])
    infiltrating = rng.choice(n_clones, size=n_inf, replace=False, p=pick / pick.sum())
    tumor_null = np.zeros(n_all)
    tumor_null[np.sort(infiltrating)] = pareto(tumor_exponent, n_inf)
    tumor_null[n_clones:] = pareto(tumor_exponent, n_all - n_clones)
    blood_null /= blood_null.sum()
    tumor_null /= tumor_null.sum()

    n_new, n_blood, n_tumor = n_planted
    planted = rng.choice(n_clones, size=sum(n_planted), replace=False)
    category = np.repeat(np.array(CATEGORIES), n_planted)
    k = planted.size
    post = sorted(post_days)
    # Blood trajectories (rows: planted clones, columns: day 0 then post days).
    level = _loguniform(rng, _BLOOD_LEVEL, k)
    fold = _loguniform(rng, _BLOOD_FOLD, k)
    peak_k = rng.integers(0, len(post), size=k)
    decay = rng.uniform(*_DECAY, size=k)
    absent_base = rng.random(k) < _P_ABSENT
    steps = np.abs(np.arange(len(post))[None, :] - peak_k[:, None])
    blood_traj = np.maximum(level[:, None] * fold[:, None] * decay[:, None] ** steps,
                            level[:, None])
    base = np.where(absent_base, 0.0, level)
    # Tumour profiles (rows: planted clones, columns: sorted tumour days).
    t_days = sorted(tumor_days)
    is_post = np.array([d > 0 for d in t_days])
    t_level = _loguniform(rng, _TUMOR_POST, k)
    t_jitter = np.exp(rng.normal(0.0, 0.25, size=(k, len(t_days))))
    absent_pre = rng.random(k) < _P_ABSENT
    t_pre = np.where(absent_pre, 0.0, t_level / _loguniform(rng, _TUMOR_PRE_FOLD, k))
    tumor_traj = np.where(is_post[None, :], t_level[:, None] * t_jitter, t_pre[:, None])
    stable = np.where(rng.random(k) < 0.5, 0.0, _loguniform(rng, _TUMOR_STABLE, k))
    is_blood_only = category == "blood_only"
    tumor_traj[is_blood_only] = stable[is_blood_only, None]

    expands = category != "tumor_only"
    freqs: dict[tuple[str, int], np.ndarray] = {}
    for j, day in enumerate([0, *post]):
        target = base if day == 0 else blood_traj[:, j - 1]
        freqs["blood", day] = _compose(blood_null, planted[expands], target[expands])
    for j, day in enumerate(t_days):
        freqs["tumor", day] = _compose(tumor_null, planted, tumor_traj[:, j])

    picked = clones[planted]
    truth = pl.DataFrame({
        "patient": [pid] * k,
        "junction_aa": picked["junction_aa"], "v_gene": picked["v_gene"],
        "j_gene": picked["j_gene"], "category": category,
        "junction": picked["junction"], "v_call": picked["v_call"], "j_call": picked["j_call"],
        "blood_baseline_freq": freqs["blood", 0][planted],
        "blood_level": np.where(expands, level, np.nan),
        "blood_peak_freq": np.where(expands, level * fold, np.nan),
        "blood_fold": np.where(expands, fold, np.nan),
        "peak_day": [post[i] if e else None for i, e in zip(peak_k, expands, strict=True)],
        "tumor_pre_freq": np.where(is_blood_only, stable, t_pre),
        "tumor_post_freq": np.where(is_blood_only, stable,
                                    (tumor_traj * is_post).sum(1) / is_post.sum()),
    }).with_columns(pl.col(pl.Float64).fill_nan(None)).select(TRUTH_COLUMNS)
    return _Patient(clones=clones, freqs=freqs, truth=truth, blood_planted=planted[expands])


def _add_product(
    patient: _Patient, pid: str, p: int, *, seed: int, n_product: int, post_days: tuple[int, ...],
    blood_share: float, half_life: float, exponent: float,
) -> tuple[_Patient, pl.DataFrame]:
    """Append the infused product's clonotypes, its true frequencies and their blood decay.

    Uses its own random streams (OLGA ``(seed, p, 3)``, numpy ``[seed, p, 3]``), so the rest of
    the patient is unchanged; baseline blood and biopsies keep their frequencies exactly.
    """
    rng = np.random.default_rng([seed, p, 3])
    old = patient.clones
    taken = set(old.select("junction_aa", "v_gene", "j_gene").iter_rows())
    margin = max(20, n_product // 10)
    drawn = generate_clonotypes(n_product + margin, seed=olga_seed(seed, p, 3))
    fresh = [k not in taken for k in drawn.select("junction_aa", "v_gene", "j_gene").iter_rows()]
    drawn = drawn.filter(pl.Series(fresh))
    if drawn.height < n_product:  # pragma: no cover - needs thousands of collisions
        raise RuntimeError("too few product clonotypes distinct from the patient's others")
    new = drawn.head(n_product).with_columns(
        productive=pl.lit("T"), locus=pl.lit("TRB"),
        v_call_out=pl.col("v_call").replace(
            {"TRBV6-2*01": "TRBV6-2*01,TRBV6-3*01", "TRBV6-3*01": "TRBV6-3*01,TRBV6-2*01"}),
    ).select(old.columns)
    clones = pl.concat([old, new])
    alpha = exponent - 1.0
    weight = (1.0 - rng.random(n_product) * (1.0 - 1.0 / n_product)) ** (-1.0 / alpha)
    pi = weight / weight.sum()
    idx = np.arange(old.height, clones.height)
    freqs = {key: np.concatenate([f, np.zeros(n_product)]) for key, f in patient.freqs.items()}
    for day in post_days:
        f = freqs["blood", day]
        keep = patient.blood_planted
        target = np.concatenate([f[keep], blood_share * pi * 2.0 ** (-day / half_life)])
        freqs["blood", day] = _compose(f, np.concatenate([keep, idx]), target)
    product = np.zeros(clones.height)
    product[idx] = pi
    freqs["product", 0] = product
    rank = np.empty(n_product, dtype=np.int64)
    rank[np.lexsort((np.arange(n_product), -pi))] = np.arange(1, n_product + 1)
    truth = new.select(
        pl.lit(pid).alias("patient"), "junction_aa", "v_gene", "j_gene",
        pl.lit("product").alias("category"), "junction", "v_call", "j_call",
    ).with_columns(product_freq=pi, product_rank=rank, blood_freq_at_infusion=blood_share * pi,
                   half_life_days=pl.lit(float(half_life)))
    return (_Patient(clones=clones, freqs=freqs, truth=patient.truth,
                     blood_planted=patient.blood_planted),
            truth.select(PRODUCT_TRUTH_COLUMNS))


def airr_rows(clones: pl.DataFrame, counts: np.ndarray, sample: str, *,
              v_call_column: str = "v_call_out") -> pl.DataFrame:
    """AIRR Rearrangement rows of the clonotypes seen, by count desc then clone order (``v_call`` taken
    from ``v_call_column``; the benchmarks' generator reuses this)."""
    seen = np.flatnonzero(counts)
    order = seen[np.lexsort((seen, -counts[seen]))]
    rows = clones[order]
    empty = pl.lit("")
    return rows.select(
        sequence_id=pl.format(f"{sample}_{{}}", pl.int_range(1, pl.len() + 1)),
        sequence=pl.col("junction"), rev_comp=pl.lit("F"), productive=pl.col("productive"),
        v_call=pl.col(v_call_column), d_call=empty, j_call=pl.col("j_call"),
        sequence_alignment=empty, germline_alignment=empty, junction=pl.col("junction"),
        junction_aa=pl.col("junction_aa"), v_cigar=empty, d_cigar=empty, j_cigar=empty,
        locus=pl.col("locus"), duplicate_count=pl.Series(counts[order]),
    )


def _write_gz(path: Path, frame: pl.DataFrame) -> None:
    """Write ``frame`` as gzipped TSV, byte-reproducibly (no name or mtime in header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.write_csv(separator="\t", quote_style="never")
    path.write_bytes(gzip.compress(text.encode(), compresslevel=6, mtime=0))


class _NoBar:
    def update(self, n: int) -> None:
        """Ignore progress."""


@contextmanager
def _progress(enabled: bool, length: int) -> Iterator[Any]:
    if not enabled:
        yield _NoBar()
        return
    with click.progressbar(length=length, label="simulating cohort", file=sys.stderr) as bar:
        yield bar
