"""False-annotation rate: how often random, antigen-naive junctions match the database.

A clone's database hit means little unless random receptors rarely hit. The background is drawn
from OLGA's human TRB recombination model (Sethna et al. 2019, Bioinformatics 35:2974), loaded
offline by :mod:`tcrtrack.olga_source`: pre-selection, un-expanded rearrangements, so a hit among them
is a chance (or high-Pgen "public") match.

The background is reweighted to the sample's junction-length distribution (importance weights),
so that a sample of long junctions is not compared with OLGA's shorter average:

.. math::

    \\widehat{\\mathrm{FAR}} = \\frac{\\sum_i w_i h_i}{\\sum_i w_i}, \\qquad w_i = \\frac{p_{L_i}}{q_{L_i}},

with :math:`h_i \\in \\{0, 1\\}` the random junction's hit indicator, :math:`p_L` the share of the sample's
clones of length :math:`L` and :math:`q_L` the share of the background. The 95% interval is Wilson's
score interval (Wilson 1927, JASA 22:209) at Kish's effective size
:math:`n_\\mathrm{eff} = (\\sum w)^2 / \\sum w^2` (Kish 1965, *Survey Sampling*).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import polars as pl

from tcrtrack.olga_source import generate_clonotypes
from tcrtrack.specificity.databases import Database
from tcrtrack.specificity.matching import MATCH_MODES, MatchMode, annotate

#: Columns of :func:`false_annotation_rates`.
CALIBRATION_COLUMNS = (
    "mode",
    "n_clones",
    "clones_hit",
    "hit_rate",
    "n_random",
    "random_hit",
    "false_annotation_rate",
    "far_ci_low",
    "far_ci_high",
)


@functools.cache
def _background(n: int, seed: int) -> pl.DataFrame:
    return generate_clonotypes(n, seed=seed, chain="TRB").select("junction_aa", "v_gene", "j_gene")


def olga_background(n: int = 20_000, *, seed: int = 0) -> pl.DataFrame:
    """``n`` distinct random productive human TRB clonotypes (``junction_aa``, ``v_gene``, ``j_gene``).

    Cached per (n, seed) within a process; about 1 s per 20,000 on one core.
    """
    return _background(n, seed)


def wilson_interval(successes: float, n: float, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (``n`` may be an effective, non-integer size).

    .. math:: \\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return (max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom))


def _hit_flags(
    frame: pl.DataFrame, database: Database | pl.DataFrame, mode: MatchMode, min_score: int | None
) -> np.ndarray:
    indexed = frame.select("junction_aa", "v_gene").with_row_index("_i")
    hits = annotate(indexed, database, mode=mode, min_score=min_score)
    flags = np.zeros(frame.height, dtype=bool)
    flags[hits["_i"].unique().to_numpy()] = True
    return flags


def false_annotation_rates(
    clones: pl.DataFrame,
    database: Database | pl.DataFrame,
    *,
    modes: tuple[MatchMode, ...] = MATCH_MODES,
    background: pl.DataFrame | None = None,
    n_random: int = 20_000,
    seed: int = 0,
    min_score: int | None = None,
) -> pl.DataFrame:
    """Hit rate of the clones beside the length-matched false-annotation rate of OLGA junctions, per mode.

    Parameters
    ----------
    clones
        One sample's (or one clone set's) clones: ``junction_aa`` and ``v_gene``.
    database
        Records to match against (as for :func:`~tcrtrack.specificity.matching.annotate`).
    modes
        Match modes to calibrate.
    background
        Random clonotypes (``junction_aa``, ``v_gene``); default :func:`olga_background` ``(n_random, seed)``.
    min_score
        As in :func:`~tcrtrack.specificity.matching.annotate`.

    Returns
    -------
    polars.DataFrame
        One row per mode, :data:`CALIBRATION_COLUMNS`: the clones' ``hit_rate`` (share with at least one
        hit) and the background's reweighted ``false_annotation_rate`` with its Wilson 95% interval.
    """
    background = olga_background(n_random, seed=seed) if background is None else background
    lengths = clones["junction_aa"].str.len_chars().to_numpy()
    bg_lengths = background["junction_aa"].str.len_chars().to_numpy()
    top = int(max(lengths.max(initial=0), bg_lengths.max(initial=0))) + 1
    p = np.bincount(lengths, minlength=top) / max(len(lengths), 1)
    q = np.bincount(bg_lengths, minlength=top) / max(len(bg_lengths), 1)
    ratio = np.divide(p, q, out=np.zeros(top), where=q > 0)
    weights = ratio[bg_lengths]
    n_eff = weights.sum() ** 2 / (weights**2).sum() if weights.sum() > 0 else 0.0
    rows = []
    for mode in modes:
        hit = _hit_flags(clones, database, mode, min_score)
        bg_hit = _hit_flags(background, database, mode, min_score)
        far = float((weights * bg_hit).sum() / weights.sum()) if weights.sum() > 0 else math.nan
        low, high = wilson_interval(far * n_eff, n_eff)
        rows.append(
            (
                mode,
                clones.height,
                int(hit.sum()),
                hit.mean() if len(hit) else math.nan,
                background.height,
                int(bg_hit.sum()),
                far,
                low,
                high,
            )
        )
    return pl.DataFrame(rows, schema=list(CALIBRATION_COLUMNS), orient="row")
