"""Per-sample diversity of a clonotype count vector, at full depth and rarefied.

A sample is a 1-D vector of non-negative integer clone counts (zeros are ignored).
:func:`diversity_metrics` (one vector), :func:`sample_diversity` (full-depth row + mean/SD of seeded
rarefactions); the subsampling and the common depths are in :mod:`tcrtrack.rarefaction`.

Conventions
-----------
* NaN means "mathematically undefined for this vector" (e.g. Pielou evenness of a
  single clone); null in the table means "not computed" (below the common depth,
  ``*_subsampling_sd`` on the full-depth row, or with a single subsampling).
* Every metric column is Float64 (rarefied rows hold means, so even ``richness`` is
  fractional there). Notation: :math:`N` total count, :math:`S` richness (clones with
  count > 0), :math:`p_i = n_i / N`, :math:`F_k` number of clones with count exactly k.
* scikit-bio (0.7.4) is called where its definition is the one TCR users expect; where
  it is not (Pielou of one clone, area-based Gini, Chao1 CI integer overflow) the
  statistic is computed here with numpy and the difference is documented.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from tcrtrack.rarefaction import rarefy
from tcrtrack.validation import as_counts, as_depth

#: ACE: clones with at most this many counts are "rare" (Chao et al. 2000; skbio default).
RARE_THRESHOLD = 10
#: Normal quantile of the 95 % Chao1 confidence interval.
CHAO1_Z = 1.96

METRIC_NAMES: tuple[str, ...] = (
    "total_count", "richness",
    "shannon_nats", "shannon_bits", "pielou_evenness", "clonality",
    "simpson", "inverse_simpson", "gini_simpson", "berger_parker", "gini_coefficient",
    "chao1", "chao1_ci_low", "chao1_ci_high", "ace",
    "hill_0", "hill_0.5", "hill_1", "hill_2", "hill_4", "hill_inf",
    "d50", "d50_percent", "top10_fraction", "top100_fraction",
)  # fmt: skip

#: Suffix of the rarefied rows' spread columns: the standard deviation of a metric over the seeded
#: subsamplings (how much one subsampling varies), not a standard error of the mean.
SPREAD_SUFFIX = "_subsampling_sd"

#: Column order and dtypes of :func:`sample_diversity` (stable whatever the input).
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "depth_type": pl.Utf8(),
    "depth": pl.Int64(),
    **{name: pl.Float64() for name in METRIC_NAMES},
    **{f"{name}{SPREAD_SUFFIX}": pl.Float64() for name in METRIC_NAMES},
    "note": pl.Utf8(),
}


def _pielou(shannon_nats: float, richness: int) -> float:
    r"""Pielou's evenness :math:`J' = H / \ln S` (Pielou 1966, J. Theor. Biol. 13:131).

    NaN when :math:`S \le 1` (0/0). skbio's ``pielou_e`` returns 1.0 for one clone,
    which would make a monoclonal sample look perfectly even (clonality 0), so it is
    not used. Clipped to [0, 1] to remove floating-point overshoot for equal clones.
    """
    if richness <= 1:
        return math.nan
    return min(max(shannon_nats / math.log(richness), 0.0), 1.0)


def _gini_coefficient(cumulative: np.ndarray) -> float:
    r"""Gini coefficient of clone sizes, 0 when all clones are equal.

    .. math:: G = \frac{\sum_{i=1}^{S} (2i - S - 1)\, n_{(i)}}{S \, N}
              = \frac{2 \sum_{k=1}^{S-1} D_k - (S - 1) N}{S \, N}

    (:math:`n_{(i)}` ascending; :math:`D_k` = ``cumulative[k-1]``, total of the k largest
    clones). Equals the mean absolute difference :math:`\sum_{i,j} |n_i - n_j| / (2 S^2
    \bar n)` (Gini 1912; Damgaard & Weiner 2000, Ecology 81:1139), R ``ineq::Gini``. skbio's default ``gini_index``
    (Lorenz curve integrated with rectangles) equals :math:`G - 1/S` clipped at 0, so
    it is not used; its ``method="trapezoids"`` equals :math:`G`.
    """
    n, total = cumulative.size, float(cumulative[-1])
    top_sums = float(cumulative[:-1].sum(dtype=np.float64))
    return max((2.0 * top_sums - (n - 1) * total) / (n * total), 0.0)


def _d50(cumulative: np.ndarray) -> int:
    r"""D50: the fewest top clones whose counts reach at least half of the total.

    :math:`D50 = \min\{k : \sum_{i \le k} n_{[i]} \ge N/2\}` with :math:`n_{[i]}`
    sorted descending (ties do not change k). This is the clone-count form of
    immunarch ``repDiversity(.method = "d50")`` (Nazarov et al., immunarch); the
    percentage form (D50 as % of unique clones, e.g. IRseq) is ``d50_percent``.
    ``cumulative`` is the cumulative sum of the descending counts (exact integers).
    """
    total = int(cumulative[-1])
    return int(np.searchsorted(cumulative, (total + 1) // 2, side="left")) + 1


def _chao1_ci(*, richness: int, f1: int, f2: int, total: int, chao1: float, z: float = CHAO1_Z) -> tuple[float, float]:
    r"""95 % confidence interval of bias-corrected Chao1 (EstimateS; Chao 1987).

    With singletons, log-normal interval (EstimateS eq. 13):
    :math:`T = \hat S_{Chao1} - S`,
    :math:`K = \exp(z \sqrt{\ln(1 + \widehat{var}/T^2)})`, CI :math:`[S + T/K, S + TK]`
    (:math:`[S, S]` if :math:`T = 0`), with the bias-corrected variance

    .. math:: \widehat{var} = \frac{F_1(F_1-1)}{2(F_2+1)} + \frac{F_1(2F_1-1)^2}{4(F_2+1)^2}
              + \frac{F_1^2 F_2 (F_1-1)^2}{4(F_2+1)^4}

    (eq. 6) when :math:`F_2 > 0`, and eq. 7
    :math:`\frac{F_1(F_1-1)}{2} + \frac{F_1(2F_1-1)^2}{4} - \frac{F_1^4}{4\hat S_{Chao1}}`
    when :math:`F_2 = 0`. Without singletons (eq. 14, as skbio): with
    :math:`P = e^{-N/S}`, CI :math:`S/(1-P) \mp z\sqrt{SP/(1-P)}`, lower bound at least S.

    These are skbio's ``chao1_ci`` formulas, evaluated here in float64 because skbio
    0.7.4 evaluates them on int64 scalars, which silently overflow (wrong CI) once
    :math:`F_1` exceeds ~5e4 -- routine for a 1M-clonotype repertoire.
    """
    s, f1f, f2f = float(richness), float(f1), float(f2)
    if f1 == 0:
        p = math.exp(-total / s)
        centre, half = s / (1.0 - p), z * math.sqrt(s * p / (1.0 - p))
        return max(s, centre - half), centre + half
    if f2 == 0:
        var = f1f * (f1f - 1) / 2 + f1f * (2 * f1f - 1) ** 2 / 4 - f1f**4 / (4 * chao1)
    else:
        var = (
            f1f * (f1f - 1) / (2 * (f2f + 1))
            + f1f * (2 * f1f - 1) ** 2 / (4 * (f2f + 1) ** 2)
            + f1f**2 * f2f * (f1f - 1) ** 2 / (4 * (f2f + 1) ** 4)
        )
    t = chao1 - s
    if t == 0:
        return s, s
    k = math.exp(abs(z) * math.sqrt(math.log1p(var / t**2)))
    return s + t / k, s + t * k


def _ace(clipped: np.ndarray, freq: np.ndarray) -> float:
    r"""ACE (Chao & Lee 1992, JASA 87:210; EstimateS), rare threshold 10, via skbio.

    .. math:: S_{ACE} = S_{abund} + \frac{S_{rare}}{C_{ace}} + \frac{F_1}{C_{ace}}\gamma^2,
       \quad C_{ace} = 1 - \frac{F_1}{N_{rare}}, \quad
       \gamma^2 = \max\left(\frac{S_{rare}}{C_{ace}}
       \frac{\sum_{k=1}^{10} k(k-1)F_k}{N_{rare}(N_{rare}-1)} - 1, 0\right)

    NaN when every rare clone is a singleton (:math:`C_{ace} = 0`; skbio raises).
    ``clipped`` holds the counts capped at 11: ACE only sees whether a clone is
    abundant (> 10), and the cap keeps skbio's internal ``bincount`` tiny.
    """
    s_rare = int(freq[1 : RARE_THRESHOLD + 1].sum())
    if freq[1] > 0 and freq[1] == s_rare:
        return math.nan
    from skbio.diversity import alpha  # imported here: scikit-bio is slow to import (common_depth needs none)

    return float(alpha.ace(clipped, rare_threshold=RARE_THRESHOLD))


def _metrics_of_nonzero(x: np.ndarray) -> dict[str, float]:
    """All metrics of a validated int64 vector without zeros (see diversity_metrics)."""
    from skbio.diversity import alpha

    richness, total = int(x.size), int(x.sum())
    out = dict.fromkeys(METRIC_NAMES, math.nan)
    out["total_count"], out["richness"] = float(total), float(richness)
    if richness == 0:
        return out
    shannon = float(alpha.shannon(x))  # natural log
    dominance = float(alpha.dominance(x))  # sum p_i^2 (skbio's `simpson` is 1 - this)
    berger_parker = float(alpha.berger_parker_d(x))
    pielou = _pielou(shannon, richness)
    cumulative = np.cumsum(np.sort(x)[::-1])  # D_k: total of the k largest clones
    clipped = np.minimum(x, RARE_THRESHOLD + 1)
    freq = np.bincount(clipped, minlength=RARE_THRESHOLD + 2)  # freq[k] = F_k, k <= 10
    chao1 = float(alpha.chao1(x, bias_corrected=True))
    ci_low, ci_high = _chao1_ci(richness=richness, f1=int(freq[1]), f2=int(freq[2]), total=total, chao1=chao1)
    d50 = _d50(cumulative)
    out.update({
        "shannon_nats": shannon,
        "shannon_bits": shannon / math.log(2),
        "pielou_evenness": pielou,
        "clonality": 1.0 - pielou,
        "simpson": dominance,
        "inverse_simpson": 1.0 / dominance,
        "gini_simpson": 1.0 - dominance,
        "berger_parker": berger_parker,
        "gini_coefficient": _gini_coefficient(cumulative),
        "chao1": chao1,
        "chao1_ci_low": ci_low,
        "chao1_ci_high": ci_high,
        "ace": _ace(clipped, freq),
        "hill_0": float(richness),
        "hill_0.5": float(alpha.hill(x, order=0.5)),
        "hill_1": math.exp(shannon),
        "hill_2": 1.0 / dominance,
        "hill_4": float(alpha.hill(x, order=4)),
        "hill_inf": 1.0 / berger_parker,
        "d50": float(d50),
        "d50_percent": 100.0 * d50 / richness,
        "top10_fraction": float(cumulative[min(10, richness) - 1]) / total,
        "top100_fraction": float(cumulative[min(100, richness) - 1]) / total,
    })  # fmt: skip
    return out


def diversity_metrics(counts: np.ndarray) -> dict[str, float]:
    r"""Diversity, richness-estimator and dominance statistics of one sample.

    Parameters
    ----------
    counts : numpy.ndarray
        1-D vector of non-negative integer clone counts (integer dtype, or floats
        holding whole numbers). Zeros are ignored.

    Returns
    -------
    dict[str, float]
        One float per name in :data:`METRIC_NAMES`, in that order. An empty sample
        gives ``total_count = richness = 0`` and NaN for everything else.

    Raises
    ------
    ValueError
        If ``counts`` is not 1-D, has negative or non-integer values.

    Notes
    -----
    * ``total_count`` :math:`N = \sum n_i`; ``richness`` :math:`S` (observed clones).
    * ``shannon_nats`` :math:`H = -\sum p_i \ln p_i` (Shannon 1948; skbio ``shannon``);
      ``shannon_bits`` :math:`H / \ln 2`.
    * ``pielou_evenness`` :math:`J' = H/\ln S` (Pielou 1966), NaN if :math:`S \le 1`.
    * ``clonality`` :math:`1 - J'` ("productive clonality" of immunoSEQ; Kirsch,
      Vignali & Robins 2015, Mol. Oncol. 9:2063), NaN if :math:`S \le 1`: a one-clone
      sample has no defined evenness, and reporting 0 or 1 would be a guess.
      (Not the newer "Simpson clonality" :math:`\sqrt{\lambda}`.)
    * ``simpson`` :math:`\lambda = \sum p_i^2` (Simpson 1949, Nature 163:688; skbio
      ``dominance`` -- skbio's ``simpson`` is :math:`1 - \lambda`);
      ``inverse_simpson`` :math:`1/\lambda`; ``gini_simpson`` :math:`1 - \lambda`.
    * ``berger_parker`` :math:`\max p_i` (Berger & Parker 1970, Science 168:1345).
    * ``gini_coefficient``: Gini of clone sizes, see :func:`_gini_coefficient`.
    * ``chao1``: bias-corrected :math:`S + F_1(F_1-1)/(2(F_2+1))` in every case
      (Chao 1984, Scand. J. Stat. 11:265; bias-corrected form of Chao 2005 / EstimateS;
      skbio ``chao1(bias_corrected=True)``), finite without doubletons; not the classic
      :math:`S + F_1^2/(2F_2)`. ``chao1_ci_low/high``: 95 % CI, see :func:`_chao1_ci`.
    * ``ace``: abundance-based coverage estimator, see :func:`_ace`.
    * ``hill_q`` :math:`{}^qD = (\sum p_i^q)^{1/(1-q)}` (Hill 1973, Ecology 54:427;
      Jost 2006, Oikos 113:363): q = 0.5 and 4 via skbio ``hill``; the limits are
      :math:`{}^0D = S`, :math:`{}^1D = e^H`, :math:`{}^2D = 1/\lambda`,
      :math:`{}^\infty D = 1/\max p_i`, computed from those identities.
    * ``d50`` (number of clones), see :func:`_d50`; ``d50_percent`` = 100 D50 / S.
    * ``top10_fraction``, ``top100_fraction``: share of :math:`N` in the 10 (100)
      largest clones; 1.0 when the sample has fewer clones than that.
    """
    x = as_counts(counts)
    return _metrics_of_nonzero(x[x > 0])


def sample_diversity(counts: np.ndarray, *, depth: int | None, n_iterations: int = 10, seed: int = 0) -> pl.DataFrame:
    """Diversity table of one sample: full depth, and rarefied to a common depth.

    Parameters
    ----------
    counts : numpy.ndarray
        1-D vector of non-negative integer clone counts (zeros ignored).
    depth : int or None
        Common rarefaction depth (see :func:`common_depth`); None for no rarefied row.
    n_iterations : int
        Number of independent subsamplings averaged in the rarefied row (>= 1).
    seed : int
        Iteration i uses ``numpy.random.default_rng([seed, i])``: the table is a pure
        function of (counts without zeros, depth, n_iterations, seed).

    Returns
    -------
    polars.DataFrame
        Columns as :data:`OUTPUT_SCHEMA`: ``depth_type``, ``depth`` (Int64), the
        metrics of :data:`METRIC_NAMES`, ``<metric>_subsampling_sd`` for each, ``note``. Rows:

        * ``"full"``: metrics of the whole sample, ``depth`` = its total, ``*_subsampling_sd`` null;
        * ``"rarefied"`` (only if ``depth`` is given): mean of each metric over
          ``n_iterations`` subsamplings to ``depth``, ``*_subsampling_sd`` their sample standard
          deviation (ddof = 1; null if ``n_iterations == 1``; NaN propagates, e.g.
          ACE undefined in one subsample). If the sample total is below ``depth`` the
          row is kept with null metrics and ``note = "below common depth (<total> <
          <depth>)"``. ``note`` is null otherwise.
    """
    if n_iterations < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
    x = as_counts(counts)
    x = x[x > 0]
    total = int(x.sum())
    full = _metrics_of_nonzero(x)
    rows: list[dict[str, object]] = [{"depth_type": "full", "depth": total, **full, "note": None}]
    if depth is not None:
        depth = as_depth(depth, minimum=0)
        row: dict[str, object] = {"depth_type": "rarefied", "depth": depth}
        if total < depth:
            row["note"] = f"below common depth ({total} < {depth})"
        else:
            runs = np.empty((n_iterations, len(METRIC_NAMES)))
            for i in range(n_iterations):
                sub = rarefy(x, depth=depth, rng=np.random.default_rng([seed, i]))
                values = _metrics_of_nonzero(sub[sub > 0])
                runs[i] = [values[name] for name in METRIC_NAMES]
            row.update(zip(METRIC_NAMES, runs.mean(axis=0).tolist(), strict=True))
            if n_iterations > 1:
                sds = runs.std(axis=0, ddof=1).tolist()
                row.update({f"{name}{SPREAD_SUFFIX}": sd for name, sd in zip(METRIC_NAMES, sds, strict=True)})
        rows.append(row)
    columns = {name: [r.get(name) for r in rows] for name in OUTPUT_SCHEMA}
    return pl.DataFrame(columns, schema=OUTPUT_SCHEMA)
