"""True frequencies of a simulated patient: null repertoires, planted clones, the infused product.

The model is described in :mod:`tcrtrack.simulate`. Everything here is a function of the seed and the
patient's index: numpy stream ``[seed, p, 0]`` for the repertoire and planted clones, ``[seed, p, 3]``
for the product, so adding a product leaves the rest of the patient unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tcrtrack.simulation.clone_sizes import truncated_pareto_weights
from tcrtrack.simulation.clonotypes import TUMOR_RESIDENT, patient_clonotypes, product_clonotypes

__all__ = [
    "CATEGORIES",
    "PRODUCT_TRUTH_COLUMNS",
    "TRUTH_COLUMNS",
    "SimulatedPatient",
    "add_product",
    "compose",
    "simulate_patient",
    "truth_frequency_table",
]

CATEGORIES: tuple[str, ...] = ("new_expanded_tumor", "blood_only", "tumor_only")
TRUTH_COLUMNS: tuple[str, ...] = (
    "patient",
    "junction_aa",
    "v_gene",
    "j_gene",
    "category",
    "junction",
    "v_call",
    "j_call",
    "blood_baseline_freq",
    "blood_level",
    "blood_peak_freq",
    "blood_fold",
    "peak_day",
    "tumor_pre_freq",
    "tumor_post_freq",
)
PRODUCT_TRUTH_COLUMNS: tuple[str, ...] = (
    "patient",
    "junction_aa",
    "v_gene",
    "j_gene",
    "category",
    "junction",
    "v_call",
    "j_call",
    "product_freq",
    "product_rank",
    "blood_freq_at_infusion",
    "half_life_days",
)

_TUMOR_INFILTRATING = 0.25  # share of blood clonotypes also in the tumour
_P_ABSENT = 0.5  # chance a planted clone is absent at baseline / pre-treatment
_BLOOD_LEVEL, _BLOOD_FOLD, _DECAY = (1e-5, 1e-4), (10.0, 200.0), (0.3, 0.7)
_TUMOR_POST, _TUMOR_PRE_FOLD, _TUMOR_STABLE = (2e-4, 5e-3), (5.0, 50.0), (1e-4, 1e-3)
_CLONE_COLUMNS = ("junction_aa", "v_gene", "j_gene", "junction", "v_call", "j_call", "productive", "locus")


@dataclass(frozen=True)
class SimulatedPatient:
    """One patient's clonotypes, true frequencies and planted-clone truth."""

    clones: pl.DataFrame  # clonotype table incl. productive/locus/v_call_out columns
    freqs: dict[tuple[str, int], np.ndarray]  # (compartment, day) -> true frequencies
    truth: pl.DataFrame
    blood_planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows
    planted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows, truth order
    product_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _loguniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size=n))


def compose(null: np.ndarray, idx: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Planted clones at absolute ``target``; null clones share the rest proportionally."""
    if target.sum() > 0.5:
        raise ValueError("planted clones would take over half the repertoire; plant fewer")
    f = null.copy()
    f[idx] = 0.0
    f *= (1.0 - target.sum()) / f.sum()
    f[idx] = target
    return f


def _null_frequencies(
    n_clones: int, n_all: int, *, exponent: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blood and tumour frequencies shared by every timepoint (rows as in :mod:`.clonotypes`)."""
    n_res = round(TUMOR_RESIDENT * n_clones)
    n_decoys = n_all - n_clones - n_res
    blood_null = np.zeros(n_all)
    blood_null[:n_clones] = truncated_pareto_weights(n_clones, exponent=exponent, rng=rng)
    blood_null[n_clones + n_res :] = truncated_pareto_weights(n_decoys, exponent=exponent, rng=rng)
    tumor_exponent = 1.0 + (exponent - 1.0) * 5.0 / 6.0
    n_inf = round(_TUMOR_INFILTRATING * n_clones)
    pick = np.sqrt(blood_null[:n_clones])
    infiltrating = rng.choice(n_clones, size=n_inf, replace=False, p=pick / pick.sum())
    tumor_null = np.zeros(n_all)
    tumor_null[np.sort(infiltrating)] = truncated_pareto_weights(n_inf, exponent=tumor_exponent, rng=rng)
    tumor_null[n_clones:] = truncated_pareto_weights(n_all - n_clones, exponent=tumor_exponent, rng=rng)
    return blood_null / blood_null.sum(), tumor_null / tumor_null.sum()


def simulate_patient(
    pid: str,
    p: int,
    *,
    seed: int,
    n_clones: int,
    post_days: tuple[int, ...],
    tumor_days: tuple[int, ...],
    n_planted: tuple[int, ...],
    exponent: float,
) -> SimulatedPatient:
    """Clonotypes, true frequencies per (compartment, day) and truth of one patient."""
    rng = np.random.default_rng([seed, p, 0])
    clones = patient_clonotypes(n_clones, seed=seed, patient=p, rng=rng)
    blood_null, tumor_null = _null_frequencies(n_clones, clones.height, exponent=exponent, rng=rng)

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
    blood_traj = np.maximum(level[:, None] * fold[:, None] * decay[:, None] ** steps, level[:, None])
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
        freqs["blood", day] = compose(blood_null, planted[expands], target[expands])
    for j, day in enumerate(t_days):
        freqs["tumor", day] = compose(tumor_null, planted, tumor_traj[:, j])

    picked = clones[planted]
    truth = (
        pl.DataFrame(
            {
                "patient": [pid] * k,
                "junction_aa": picked["junction_aa"],
                "v_gene": picked["v_gene"],
                "j_gene": picked["j_gene"],
                "category": category,
                "junction": picked["junction"],
                "v_call": picked["v_call"],
                "j_call": picked["j_call"],
                "blood_baseline_freq": freqs["blood", 0][planted],
                "blood_level": np.where(expands, level, np.nan),
                "blood_peak_freq": np.where(expands, level * fold, np.nan),
                "blood_fold": np.where(expands, fold, np.nan),
                "peak_day": [post[i] if e else None for i, e in zip(peak_k, expands, strict=True)],
                "tumor_pre_freq": np.where(is_blood_only, stable, t_pre),
                "tumor_post_freq": np.where(is_blood_only, stable, (tumor_traj * is_post).sum(1) / is_post.sum()),
            }
        )
        .with_columns(pl.col(pl.Float64).fill_nan(None))
        .select(TRUTH_COLUMNS)
    )
    return SimulatedPatient(clones=clones, freqs=freqs, truth=truth, blood_planted=planted[expands], planted=planted)


def add_product(
    patient: SimulatedPatient,
    pid: str,
    p: int,
    *,
    seed: int,
    n_product: int,
    post_days: tuple[int, ...],
    blood_share: float,
    half_life: float,
    exponent: float,
) -> tuple[SimulatedPatient, pl.DataFrame]:
    """Append the infused product's clonotypes, its true frequencies and their blood decay.

    Uses its own random streams (OLGA ``(seed, p, 3)``, numpy ``[seed, p, 3]``), so the rest of
    the patient is unchanged; baseline blood and biopsies keep their frequencies exactly.
    """
    rng = np.random.default_rng([seed, p, 3])
    old = patient.clones
    new = product_clonotypes(n_product, taken=old, seed=seed, patient=p)
    clones = pl.concat([old, new])
    weight = truncated_pareto_weights(n_product, exponent=exponent, rng=rng)
    pi = weight / weight.sum()
    idx = np.arange(old.height, clones.height)
    freqs = {key: np.concatenate([f, np.zeros(n_product)]) for key, f in patient.freqs.items()}
    for day in post_days:
        f = freqs["blood", day]
        keep = patient.blood_planted
        target = np.concatenate([f[keep], blood_share * pi * 2.0 ** (-day / half_life)])
        freqs["blood", day] = compose(f, np.concatenate([keep, idx]), target)
    product = np.zeros(clones.height)
    product[idx] = pi
    freqs["product", 0] = product
    rank = np.empty(n_product, dtype=np.int64)
    rank[np.lexsort((np.arange(n_product), -pi))] = np.arange(1, n_product + 1)
    truth = new.select(
        pl.lit(pid).alias("patient"),
        "junction_aa",
        "v_gene",
        "j_gene",
        pl.lit("product").alias("category"),
        "junction",
        "v_call",
        "j_call",
    ).with_columns(
        product_freq=pi,
        product_rank=rank,
        blood_freq_at_infusion=blood_share * pi,
        half_life_days=pl.lit(float(half_life)),
    )
    return (
        SimulatedPatient(
            clones=clones,
            freqs=freqs,
            truth=patient.truth,
            blood_planted=patient.blood_planted,
            planted=patient.planted,
            product_rows=idx,
        ),
        truth.select(PRODUCT_TRUTH_COLUMNS),
    )


def truth_frequency_table(patient: SimulatedPatient, pid: str) -> pl.DataFrame:
    """Every clonotype of ``patient`` with its true frequency at each timepoint, one row per clone.

    Returns
    -------
    polars.DataFrame
        ``patient``, ``junction_aa``, ``v_gene``, ``j_gene``, ``junction``, ``v_call``, ``j_call``,
        ``productive``, ``locus``, ``category`` (a :data:`CATEGORIES` name for planted clones,
        ``product`` for the infused product's, else ``null``), then ``true_{compartment}_d{day}``
        (Float64) for every simulated (compartment, day), sorted; a library's counts were drawn from
        its column (:func:`tcrtrack.simulation.library.library_counts`).
    """
    category = np.full(patient.clones.height, "null", dtype=object)
    category[patient.planted] = patient.truth["category"].to_numpy()
    category[patient.product_rows] = "product"
    return patient.clones.select(pl.lit(pid).alias("patient"), *_CLONE_COLUMNS).with_columns(
        pl.Series("category", category, dtype=pl.Utf8),
        *(pl.Series(f"true_{c}_d{d}", f, dtype=pl.Float64) for (c, d), f in sorted(patient.freqs.items())),
    )
