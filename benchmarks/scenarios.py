"""Scenario generator for the accuracy benchmark, independent of tcrtrack's simulator and models.

Nothing here imports tcrtrack: every patient is drawn with numpy alone, so the noise laws of the
scenarios are not the laws the models assume (except ``gamma``, which reproduces today's Gamma
library noise on purpose, as the "model is right" control).

Per patient (see :class:`Design` for the numbers):

* **Clones.** ``n_background`` background clones with power-law true frequencies (density
  ``f^-2.2``, i.e. Pareto with tail index 1.2, capped at 2%), plus planted clones:
  ``new_expanded_tumor`` (absent at baseline, or below 1e-6; rising to a peak frequency
  log-uniform in 1e-4..3e-3 at a random post-infusion day, decaying after it; enriched in the
  post-treatment biopsies), ``blood_only`` (baseline 1e-6..1e-5, same blood trajectory; constant
  in the tumour) and many ``tumor_only`` (constant in blood at 1e-5..3e-4; 5-30x up in the post
  biopsies from 5e-6..5e-5), enough to trap a bad conjunction. Clone ids ``c0000123`` are shuffled
  so categories do not follow id order; ``junction_aa`` is ``CASS`` + letters derived from the id
  + ``F``; V/J genes come from small fixed lists.
* **Tumour repertoire.** Background tumour frequencies are the blood ones times ``exp(N(0, 1.5^2))``
  (renormalised): the tumour shares clones with blood but not their ranks.
* **Samples.** Blood at days -14 and 0 (two pre-infusion draws; day 0 is the baseline; patients
  0, 2, ... have two technical replicates of the day-0 draw), 14, 28 and 56; biopsies at days -7,
  28 and 56; in ``product_50`` an infused-product sample (compartment ``product``, day 0).
  Depths: blood ``blood_depth`` and biopsies ``tumor_depth`` templates, each times a uniform
  factor in [0.7, 1.3] so depths are unequal.
* **Noise.** Each *draw* (one blood draw or one biopsy: a timepoint) multiplies the true
  frequencies by the scenario's between-draw factor, shared by the technical replicates of that
  draw; each *library* then multiplies by its technical factor and is sampled: a multinomial of
  its depth over the renormalised noisy frequencies (``nb_powerlaw``: independent negative
  binomials instead, so the depth is only the expected total).

Every scenario is a function of ``scenario_laws.py`` whose docstring states its generative law (the
noise laws and the scenarios live there). ``generate_patient``
returns the sample table and the clonotype tables exactly as ``tcrtrack.patient.analyse_patient``
takes them, a truth table, and the :class:`PatientState` (true frequencies of every library)
that the oracle in ``scoring.py`` re-samples to build its null laws.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from scenario_laws import Noise, Scenario, get_scenario  # benchmarks/ sibling (on sys.path, as this module is)

PLANTED = ("new_expanded_tumor", "blood_only", "tumor_only")
BLOOD_TRUE = ("new_expanded_tumor", "blood_only")
FLAG_TRUE = ("new_expanded_tumor",)
PRE_BLOOD_DAYS = (-14, 0)
POST_BLOOD_DAYS = (14, 28, 56)
TUMOR_DAYS = (-7, 28, 56)
V_GENES = ("TRBV5-1", "TRBV6-2", "TRBV7-9", "TRBV9", "TRBV12-3", "TRBV20-1", "TRBV28", "TRBV29-1")
J_GENES = ("TRBJ1-1", "TRBJ1-2", "TRBJ1-5", "TRBJ2-1", "TRBJ2-3", "TRBJ2-7")
AMINO = np.array(list("ADEGHKLNPQRSTVY"))


# --------------------------------------------------------------------------- patients


@dataclass(frozen=True)
class Design:
    """Sizes and depths of one patient."""

    n_background: int = 40_000
    n_new: int = 40
    n_blood_only: int = 20
    n_tumor_only: int = 300
    n_product: int = 2_000
    blood_depth: int = 150_000
    tumor_depth: int = 30_000
    depth_jitter: float = 0.3
    pareto_exponent: float = 2.2
    max_frequency: float = 0.02

    def quick(self) -> Design:
        """A small design for tests and ``--quick``."""
        return replace(
            self,
            n_background=8_000,
            n_new=12,
            n_blood_only=6,
            n_tumor_only=60,
            n_product=400,
            blood_depth=60_000,
            tumor_depth=20_000,
        )


@dataclass
class Library:
    """One sequenced library: its timepoint (draw) and depth."""

    sample: str
    compartment: str
    day: int
    replicate: int
    depth: int


@dataclass
class PatientState:
    """The truth of one patient: true frequencies of every timepoint over all clones, and the libraries.

    ``true[(compartment, day)]`` sums to 1; ``libraries`` lists every sample; ``category`` is
    ``background``, a planted category or ``product``; ``changed`` marks broad-change clones;
    ``counts`` holds the observed counts of every library (aligned on ``clone_ids``).
    """

    patient: str
    scenario: Scenario
    clone_ids: np.ndarray
    category: np.ndarray
    changed: np.ndarray
    true: dict[tuple[str, int], np.ndarray]
    libraries: list[Library]
    base_blood: np.ndarray = field(repr=False)
    counts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def noise_of(self, compartment: str) -> Noise:
        return self.scenario.tumor if compartment == "tumor" else self.scenario.blood

    def points(self, compartment: str) -> list[tuple[int, list[Library]]]:
        """(day, libraries) of a compartment, by day."""
        days = sorted({lib.day for lib in self.libraries if lib.compartment == compartment})
        return [(d, [lib for lib in self.libraries if lib.compartment == compartment and lib.day == d]) for d in days]

    def null_truth(self, compartment: str, day: int, reference_day: int, rng: np.random.Generator) -> np.ndarray:
        """True frequencies of timepoint ``day`` had nothing planted changed since ``reference_day``.

        The reference's true frequencies, with the scenario's non-planted post-infusion changes re-drawn
        from their law (broad change: a fresh 30% of background clones and factors) and the product's
        share where the real timepoint has one (product clones keep their true post frequencies, the
        others are scaled to the remaining share).
        """
        f = self.true[(compartment, reference_day)].copy()
        sc = self.scenario
        if compartment == "blood" and day > 0 and sc.broad_change_share > 0:
            f *= _broad_factors(self.category == "background", sc.broad_change_share, sc.broad_change_max_factor, rng)
        product = self.category == "product"
        if product.any():
            later = self.true[(compartment, day)]
            share = float(later[product].sum())
            f[product] = later[product]
            rest = ~product
            f[rest] *= (1.0 - share) / f[rest].sum()
        return f / f.sum()


def _broad_factors(eligible: np.ndarray, share: float, max_factor: float, rng: np.random.Generator) -> np.ndarray:
    factors = np.ones(eligible.size)
    hit = eligible & (rng.random(eligible.size) < share)
    factors[hit] = np.exp(rng.uniform(-np.log(max_factor), np.log(max_factor), int(hit.sum())))
    return factors


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def power_law(rng: np.random.Generator, n: int, *, exponent: float = 2.2, cap: float = 0.02) -> np.ndarray:
    """``n`` frequencies with density ``f^-exponent`` (Pareto tail index ``exponent - 1``), capped, summing to 1."""
    x = rng.pareto(exponent - 1.0, n) + 1.0
    f = x / x.sum()
    for _ in range(5):  # cap the few giants and renormalise
        over = f > cap
        if not over.any():
            break
        f[over] = cap
        f /= f.sum()
    return f


def junctions(ids: np.ndarray) -> list[str]:
    """Fake but valid-looking CDR3s: ``CASS`` + two letters per pair of decimal digits of the (8-digit) id
    (so distinct ids give distinct junctions) + ``F``."""
    digits = np.array([list(f"{i:08d}") for i in ids], dtype=np.int64) if ids.size else np.zeros((0, 8), np.int64)
    pairs = digits[:, 0::2] * 10 + digits[:, 1::2]  # 4 pairs of digits, 0..99
    letters = AMINO[pairs // 15 % 15], AMINO[pairs % 15]
    body = np.char.add(letters[0], letters[1])
    joined = ["".join(row) for row in body] if body.size else []
    return [f"CASS{j}F" for j in joined]


def _blood_trajectory(rng: np.random.Generator, baseline: np.ndarray, n: int) -> np.ndarray:
    """(n, len(POST_BLOOD_DAYS)) true frequencies: rise to a peak at a random post day, then decay."""
    peak = _log_uniform(rng, 1e-4, 3e-3, n)
    peak_index = rng.integers(0, len(POST_BLOOD_DAYS), n)
    tau = _log_uniform(rng, 15.0, 60.0, n)
    days = np.array(POST_BLOOD_DAYS, dtype=float)
    out = np.empty((n, days.size))
    for j, day in enumerate(days):
        before = j < peak_index
        steps = peak_index - j
        rise = peak * np.power(10.0, -steps * rng.uniform(0.3, 1.0, n))
        decay = peak * np.exp(-(day - days[peak_index]) / tau)
        out[:, j] = np.where(j == peak_index, peak, np.where(before, rise, decay))
    return np.maximum(out, baseline[:, None])


def generate_patient(
    scenario: Scenario | str, *, seed: int, patient: int = 0, design: Design = Design(), replicates: bool | None = None
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame], pl.DataFrame, PatientState]:
    """One patient of a scenario: (samples, clonotypes, truth, state); reproducible from (seed, patient).

    ``replicates`` (default: even patients) gives the day-0 draw two technical replicates.
    """
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    rng = np.random.default_rng([seed, patient, 20261204])
    pid = f"P{patient + 1:02d}"
    d = design
    n_planted = d.n_new + d.n_blood_only + d.n_tumor_only
    n_product = d.n_product if sc.product_share > 0 else 0
    n = d.n_background + n_planted + n_product
    category = np.array(
        ["background"] * d.n_background
        + ["new_expanded_tumor"] * d.n_new
        + ["blood_only"] * d.n_blood_only
        + ["tumor_only"] * d.n_tumor_only
        + ["product"] * n_product,
        dtype=object,
    )
    ids = rng.permutation(np.arange(1, 10 * n + 1))[:n] + 100_000 * patient  # shuffled, sparse ids
    clone_ids = np.array([f"c{i:07d}" for i in ids], dtype=object)

    bg = slice(0, d.n_background)
    new = slice(d.n_background, d.n_background + d.n_new)
    bonly = slice(new.stop, new.stop + d.n_blood_only)
    tonly = slice(bonly.stop, bonly.stop + d.n_tumor_only)
    prod = slice(tonly.stop, n)

    # ----- true frequencies
    base_bg = power_law(rng, d.n_background, exponent=d.pareto_exponent, cap=d.max_frequency)
    tumor_bg = base_bg * np.exp(rng.normal(0.0, 1.5, d.n_background))
    new_base = np.where(rng.random(d.n_new) < 0.5, 0.0, _log_uniform(rng, 1e-7, 1e-6, d.n_new))
    bonly_base = _log_uniform(rng, 1e-6, 1e-5, d.n_blood_only)
    new_post = _blood_trajectory(rng, new_base, d.n_new)
    bonly_post = _blood_trajectory(rng, bonly_base, d.n_blood_only)
    tonly_blood = _log_uniform(rng, 1e-5, 3e-4, d.n_tumor_only)
    # tumour: new_expanded_tumor absent/tiny before, enriched after; blood_only constant; tumor_only 5-30x up
    new_tpre = np.where(rng.random(d.n_new) < 0.5, 0.0, _log_uniform(rng, 1e-7, 1e-6, d.n_new))
    new_tlevel = _log_uniform(rng, 1e-4, 3e-3, d.n_new)
    bonly_t = _log_uniform(rng, 1e-5, 3e-4, d.n_blood_only)
    tonly_pre = _log_uniform(rng, 5e-6, 5e-5, d.n_tumor_only)
    tonly_fold = _log_uniform(rng, 5.0, 30.0, d.n_tumor_only)
    product_f = power_law(rng, n_product, exponent=d.pareto_exponent, cap=0.05) if n_product else np.zeros(0)
    changed = np.zeros(n, dtype=bool)
    broad = np.ones(d.n_background)
    if sc.broad_change_share > 0:
        broad = _broad_factors(
            np.ones(d.n_background, dtype=bool), sc.broad_change_share, sc.broad_change_max_factor, rng
        )
        changed[bg] = broad != 1.0

    def assemble(planted: list[tuple[slice, np.ndarray]], background: np.ndarray, product_share: float) -> np.ndarray:
        f = np.zeros(n)
        for where, values in planted:
            f[where] = values
        rest = 1.0 - product_share - sum(float(v.sum()) for _, v in planted)
        f[bg] = background / background.sum() * rest
        if product_share > 0:
            f[prod] = product_f * product_share
        return f

    true: dict[tuple[str, int], np.ndarray] = {}
    for day in PRE_BLOOD_DAYS:
        true[("blood", day)] = assemble([(new, new_base), (bonly, bonly_base), (tonly, tonly_blood)], base_bg, 0.0)
    for j, day in enumerate(POST_BLOOD_DAYS):
        f = assemble([(new, new_post[:, j]), (bonly, bonly_post[:, j]), (tonly, tonly_blood)], base_bg * broad, 0.0)
        if sc.product_share > 0:  # product clones take their share, every other clone scales down
            f *= 1.0 - sc.product_share
            f[prod] = product_f * sc.product_share
        true[("blood", day)] = f
    for day in TUMOR_DAYS:
        post = day > 0
        factor = np.exp(rng.normal(0.0, 0.3, d.n_new)) if post else 1.0
        planted = [
            (new, new_tlevel * factor if post else new_tpre),
            (bonly, bonly_t),
            (tonly, tonly_pre * tonly_fold if post else tonly_pre),
        ]
        true[("tumor", day)] = assemble(planted, tumor_bg, sc.product_tumor_share if post else 0.0)
    if n_product:
        f = np.zeros(n)
        f[prod] = product_f
        true[("product", 0)] = f

    # ----- libraries
    two = (patient % 2 == 0) if replicates is None else replicates
    libraries: list[Library] = []

    def depth(base: float) -> int:
        return int(round(base * rng.uniform(1 - d.depth_jitter, 1 + d.depth_jitter)))

    for day in (*PRE_BLOOD_DAYS, *POST_BLOOD_DAYS):
        reps = 2 if (day == 0 and two) else 1
        base = d.blood_depth * (sc.post_depth_factor if day > 0 else 1.0)
        for r in range(1, reps + 1):
            tag = f"d{day}".replace("-", "m")
            libraries.append(Library(f"{pid}_blood_{tag}_r{r}", "blood", day, r, depth(base)))
    for day in TUMOR_DAYS:
        libraries.append(
            Library(f"{pid}_tumor_{f'd{day}'.replace('-', 'm')}_r1", "tumor", day, 1, depth(d.tumor_depth))
        )
    if n_product:
        libraries.append(Library(f"{pid}_product_d0_r1", "product", 0, 1, depth(d.blood_depth)))

    state = PatientState(pid, sc, clone_ids, category, changed, true, libraries, base_blood=base_bg)
    counts = sample_libraries(state, rng)
    state.counts = counts

    # ----- tables
    junction = np.array(junctions(ids), dtype=object)
    v = np.array(V_GENES, dtype=object)[ids % len(V_GENES)]
    j = np.array(J_GENES, dtype=object)[(ids // 7) % len(J_GENES)]
    clonotypes: dict[str, pl.DataFrame] = {}
    for lib in libraries:
        c = counts[lib.sample]
        keep = np.flatnonzero(c > 0)
        keep = keep[np.argsort(clone_ids[keep])]
        total = int(c.sum())
        clonotypes[lib.sample] = pl.DataFrame(
            {
                "clone_id": pl.Series(clone_ids[keep], dtype=pl.Utf8),
                "junction_aa": pl.Series(junction[keep], dtype=pl.Utf8),
                "v_gene": pl.Series(v[keep], dtype=pl.Utf8),
                "j_gene": pl.Series(j[keep], dtype=pl.Utf8),
                "count": pl.Series(c[keep], dtype=pl.Int64),
                "frequency": pl.Series(c[keep] / max(total, 1)),
            }
        )
    samples = pl.DataFrame(
        {
            "patient": [pid] * len(libraries),
            "sample": [lib.sample for lib in libraries],
            "compartment": [lib.compartment for lib in libraries],
            "day": [lib.day for lib in libraries],
            "replicate": [lib.replicate for lib in libraries],
        },
        schema={"patient": pl.Utf8, "sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64, "replicate": pl.Int64},
    )
    truth = truth_table(state, counts)
    return samples, clonotypes, truth, state


def sample_libraries(
    state: PatientState, rng: np.random.Generator, true: dict[tuple[str, int], np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Counts of every library (aligned on ``state.clone_ids``): one draw per timepoint, then each library."""
    true = state.true if true is None else true
    out: dict[str, np.ndarray] = {}
    for compartment in ("blood", "tumor", "product"):
        law = state.noise_of(compartment)
        for day, libs in state.points(compartment):
            w = law.draw(true[(compartment, day)], rng)
            for lib in libs:
                out[lib.sample] = law.counts(_normalise(law.library(w, rng)), lib.depth, rng)
    return out


def _normalise(w: np.ndarray) -> np.ndarray:
    return w / w.sum()


def truth_table(state: PatientState, counts: dict[str, np.ndarray]) -> pl.DataFrame:
    """One row per clone: category, truth flags, true frequencies and the observed counts that decide
    reachability (max post-infusion blood count, max post-treatment biopsy count)."""
    libs = state.libraries
    post_blood = [lib for lib in libs if lib.compartment == "blood" and lib.day > 0]
    post_tumor = [lib for lib in libs if lib.compartment == "tumor" and lib.day > 0]
    expected_peak = np.max([state.true[("blood", lib.day)] * lib.depth for lib in post_blood], axis=0)
    zero = np.zeros(state.clone_ids.size, dtype=np.int64)
    max_blood = np.max([counts[lib.sample] for lib in post_blood], axis=0) if post_blood else zero
    max_tumor = np.max([counts[lib.sample] for lib in post_tumor], axis=0) if post_tumor else zero
    cat = state.category
    return pl.DataFrame(
        {
            "patient": [state.patient] * cat.size,
            "clone_id": pl.Series(state.clone_ids, dtype=pl.Utf8),
            "category": pl.Series(cat, dtype=pl.Utf8),
            "blood_true": np.isin(cat, BLOOD_TRUE),
            "flag_true": np.isin(cat, FLAG_TRUE),
            "product": cat == "product",
            "broad_changed": state.changed,
            "baseline_freq": state.true[("blood", 0)],
            "peak_post_freq": np.max([state.true[("blood", d)] for d in POST_BLOOD_DAYS], axis=0),
            "peak_post_expected_count": expected_peak,
            "tumor_pre_freq": state.true[("tumor", TUMOR_DAYS[0])],
            "tumor_post_max_freq": np.max([state.true[("tumor", d)] for d in TUMOR_DAYS[1:]], axis=0),
            "max_post_blood_count": max_blood,
            "max_post_tumor_count": max_tumor,
        }
    )
