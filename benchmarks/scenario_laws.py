"""The named generative laws of the accuracy benchmark: per-compartment noise (:class:`Noise`) and the
scenarios that combine them (:class:`Scenario`, :data:`SCENARIOS`, :func:`get_scenario`).

Numpy only, like ``scenarios.py`` (which draws the patients): the noise laws are not the laws the
models assume (except ``gamma``, which reproduces today's Gamma library noise on purpose, as the "model
is right" control). Every scenario is a function below whose docstring states its generative law.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------- noise laws


@dataclass(frozen=True)
class Noise:
    """One compartment's noise law (each part off at its default).

    Attributes
    ----------
    draw_sigma
        Between-draw biological variation: a draw's true frequencies times ``exp(N(0, s^2))``,
        shared by the technical replicates of the draw.
    tech_sigma
        Technical variation: each library times ``exp(N(0, t^2))``.
    gamma_d
        Gamma library noise: each library times ``Gamma(shape=1/D, scale=D)`` (mean 1, variance D).
    nb
        ``(a, gamma)``: counts are negative binomial with mean ``m = f N`` and variance
        ``m + a m^gamma`` (NoisET's noise model 1) instead of a multinomial.
    jackpot_share, jackpot_alpha
        PCR jackpots: in each library a share of clones times a Pareto(alpha) factor (>= 1).
    """

    draw_sigma: float = 0.0
    tech_sigma: float = 0.0
    gamma_d: float = 0.0
    nb: tuple[float, float] | None = None
    jackpot_share: float = 0.0
    jackpot_alpha: float = 1.5

    def draw(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The draw-level noisy weights of true frequencies ``f`` (elementwise, so subsets are exact)."""
        if self.draw_sigma > 0:
            return f * np.exp(rng.normal(0.0, self.draw_sigma, f.size))
        return f.copy()

    def library(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A library's noisy weights from its draw's weights (elementwise)."""
        if self.tech_sigma > 0:
            w = w * np.exp(rng.normal(0.0, self.tech_sigma, w.size))
        if self.gamma_d > 0:
            w = w * rng.gamma(1.0 / self.gamma_d, self.gamma_d, w.size)
        if self.jackpot_share > 0:
            hit = rng.random(w.size) < self.jackpot_share
            w = w.copy()
            w[hit] *= 1.0 + rng.pareto(self.jackpot_alpha, int(hit.sum()))  # classical Pareto, x_m = 1
        return w

    def counts(self, p: np.ndarray, depth: int, rng: np.random.Generator, *, exact_total: bool = True) -> np.ndarray:
        """Template counts of a library with normalised frequencies ``p`` (sum 1 when ``exact_total``).

        Multinomial of ``depth`` (binomial per clone when ``exact_total`` is false: the marginal of
        the multinomial, used for subsets of clones); negative binomial with NoisET's mean-variance
        relation when ``nb`` is set.
        """
        if self.nb is not None:
            a, gamma = self.nb
            m = depth * p
            out = np.zeros(p.size, dtype=np.int64)
            pos = m > 0
            # Gamma-Poisson with shape k: variance m + m^2/k = m + a m^gamma  =>  k = m^(2-gamma) / a
            k = np.power(m[pos], 2.0 - gamma) / a
            out[pos] = rng.negative_binomial(k, k / (k + m[pos]))
            return out
        if exact_total:
            return rng.multinomial(depth, p / p.sum()).astype(np.int64)
        return rng.binomial(depth, np.clip(p, 0.0, 1.0)).astype(np.int64)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A named generative law."""

    name: str
    description: str
    blood: Noise
    tumor: Noise
    broad_change_share: float = 0.0
    broad_change_max_factor: float = 10.0
    product_share: float = 0.0
    product_tumor_share: float = 0.0
    post_depth_factor: float = 1.0


def _doc(function: Callable[..., Scenario]) -> str:
    return " ".join((function.__doc__ or "").split())


def gamma() -> Scenario:
    """Today's library noise: every library (replicates and draws alike) is frequency x Gamma(1/D, D)
    with D = 0.1, then a multinomial of its depth; no separate between-draw variation (replicate noise
    = between-draw noise). Same law in the biopsies. The control where the beta-binomial is right."""
    law = Noise(gamma_d=0.1)
    return Scenario("gamma", _doc(gamma), law, law)


def _lognormal(s: float) -> Scenario:
    law = Noise(draw_sigma=s, tech_sigma=0.1)
    return Scenario(
        f"lognormal_{s:g}",
        (
            f"Between-draw biological variation: each draw's (timepoint's) true frequencies x exp(N(0, {s:g}^2)), "
            "shared by its technical replicates, plus technical noise x exp(N(0, 0.1^2)) per library, then a "
            "multinomial of its depth; same law in the biopsies. Replicates are much tighter than draws, so a "
            "noise fit on replicates alone underestimates the between-day noise."
        ),
        law,
        law,
    )


def lognormal_02() -> Scenario:
    """Between-draw lognormal variation s = 0.2 (x exp(N(0, 0.2^2)) per draw) + technical x exp(N(0, 0.1^2))
    per library, multinomial sampling."""
    return _lognormal(0.2)


def lognormal_04() -> Scenario:
    """Between-draw lognormal variation s = 0.4 + technical 0.1 per library, multinomial sampling."""
    return _lognormal(0.4)


def lognormal_06() -> Scenario:
    """Between-draw lognormal variation s = 0.6 + technical 0.1 per library, multinomial sampling."""
    return _lognormal(0.6)


def nb_powerlaw() -> Scenario:
    """NoisET's negative-binomial noise (Puelma Touzel et al. 2020, PLoS Comput Biol 16:e1007873; Koraichi
    et al. 2022; ``noise_model=1`` of statbiophys/NoisET ``noisets/noisettes.py``, ``get_logPn_f``: mean
    ``m = f N``, variance ``m + beta_mv m^alpha_mv``): each library's count of a clone of true frequency f
    is NegBin with mean m = f N and variance m + a m^gamma, a = 0.7, gamma = 1.1, independently per clone
    and library (the total is N only on average); no other noise. Same law in the biopsies."""
    law = Noise(nb=(0.7, 1.1))
    return Scenario("nb_powerlaw", _doc(nb_powerlaw), law, law)


def jackpots() -> Scenario:
    """Heavy-tailed PCR jackpots: in every library 0.5% of clones (at random) are multiplied by a
    Pareto(alpha = 1.5, x_m = 1) factor (infinite variance), on top of mild lognormal noise (between-draw
    x exp(N(0, 0.15^2)), technical x exp(N(0, 0.1^2))); multinomial sampling; same law in the biopsies."""
    law = Noise(draw_sigma=0.15, tech_sigma=0.1, jackpot_share=0.005, jackpot_alpha=1.5)
    return Scenario("jackpots", _doc(jackpots), law, law)


def broad_change() -> Scenario:
    """Lognormal noise (between-draw 0.2, technical 0.1) and a broad lasting repertoire shift: 30% of the
    background clones change from day 14 on (in blood) by a factor log-uniform in [1/10, 10], drawn once
    per patient. These clones are NOT planted truth: a call on one is a false discovery (it changed, but
    is not a therapy-expanded clone). The oracle treats the shift as part of the noise (its null re-draws
    it)."""
    law = Noise(draw_sigma=0.2, tech_sigma=0.1)
    return Scenario("broad_change", _doc(broad_change), law, law, broad_change_share=0.3)


def product_50() -> Scenario:
    """Lognormal noise (between-draw 0.2, technical 0.1) and an infused product: a product sample
    (compartment ``product``, day 0, its own 2,000 power-law clones, blood depth) whose clones take 50% of
    every post-infusion blood sample (the other clones' true frequencies halve) and 10% of every
    post-treatment biopsy. Product clones are excluded from scoring; they contaminate bulk noise fits."""
    law = Noise(draw_sigma=0.2, tech_sigma=0.1)
    return Scenario("product_50", _doc(product_50), law, law, product_share=0.5, product_tumor_share=0.1)


def shallow_post() -> Scenario:
    """Lognormal noise (between-draw 0.2, technical 0.1); post-infusion blood 3x shallower than the
    baseline (e.g. 150k baseline, 50k post, before the +-30% jitter)."""
    law = Noise(draw_sigma=0.2, tech_sigma=0.1)
    return Scenario("shallow_post", _doc(shallow_post), law, law, post_depth_factor=1 / 3)


def heterogeneous_biopsy() -> Scenario:
    """Spatial heterogeneity: every biopsy's true frequencies x exp(N(0, 1.0^2)) (a between-draw factor per
    biopsy) + technical 0.1 per library; blood lognormal (between-draw 0.2, technical 0.1); with the
    numerous tumour-only clones this traps a conjunction that trusts a noisy tumour test."""
    return Scenario(
        "heterogeneous_biopsy",
        _doc(heterogeneous_biopsy),
        Noise(draw_sigma=0.2, tech_sigma=0.1),
        Noise(draw_sigma=1.0, tech_sigma=0.1),
    )


def easy() -> Scenario:
    """No noise beyond multinomial sampling (a test-only control: Fisher's exact test is exact here)."""
    return Scenario("easy", _doc(easy), Noise(), Noise())


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "gamma": gamma,
    "lognormal_0.2": lognormal_02,
    "lognormal_0.4": lognormal_04,
    "lognormal_0.6": lognormal_06,
    "nb_powerlaw": nb_powerlaw,
    "jackpots": jackpots,
    "broad_change": broad_change,
    "product_50": product_50,
    "shallow_post": shallow_post,
    "heterogeneous_biopsy": heterogeneous_biopsy,
}
EXTRA_SCENARIOS: dict[str, Callable[[], Scenario]] = {"easy": easy}


def get_scenario(name: str) -> Scenario:
    """The scenario of that name (also the test-only ``easy``)."""
    table = {**SCENARIOS, **EXTRA_SCENARIOS}
    if name not in table:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(table)}")
    return table[name]()
