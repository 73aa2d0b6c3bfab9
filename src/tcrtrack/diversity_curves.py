"""Coverage-aware diversity: interpolated and extrapolated Hill numbers (the iNEXT estimators).

A sample is a vector of clone counts ``X_i`` (zeros ignored); ``n = sum X_i``, ``S_obs`` clones with
``X_i > 0``, ``f_k`` the number of clones seen exactly ``k`` times. For a sample size ``m``
(templates), ``D_q(m)`` is the expected Hill number of order ``q`` of a random sample of ``m``
templates: ``m < n`` interpolates (rarefaction, exact expectations over sub-samples without
replacement), ``m > n`` extrapolates (Chao et al. 2014, Ecol Monogr 84:45, "iNEXT"; Hsieh, Ma & Chao
2016, Methods Ecol Evol 7:1451). Sample coverage ``C(m)`` -- the share of the repertoire's templates
that belong to clones seen in a sample of ``m`` -- is from Chao & Jost 2012 (Ecology 93:2533), so
samples can be compared at equal completeness instead of equal depth.

Intervals follow iNEXT: ``B`` bootstrap samples are drawn from the estimated assemblage
(:func:`bootstrap_assemblage`) and the interval is ``estimate +- 1.959964 * sd_bootstrap``, seeded.

:func:`hill_at` / :func:`coverage_at`
    Point estimates at given sample sizes.
:func:`inext_curve`
    The rarefaction/extrapolation curve with intervals, one row per (q, m).
:func:`depth_for_coverage` / :func:`at_equal_coverage`
    The size reaching a coverage, and every sample's Hill numbers at one common coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from scipy import special

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), written out: scipy.stats is slow to import
#: Columns of :func:`inext_curve`.
CURVE_SCHEMA: dict[str, pl.DataType] = {
    "q": pl.Int64(),
    "m": pl.Int64(),
    "method": pl.Utf8(),
    "estimate": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "coverage": pl.Float64(),
    "coverage_ci_low": pl.Float64(),
    "coverage_ci_high": pl.Float64(),
}


def _counts(counts: np.ndarray | Sequence[int]) -> np.ndarray:
    x = np.asarray(counts)
    if x.ndim != 1 or (x.size and (x.min() < 0 or not np.all(np.equal(np.mod(x, 1), 0)))):
        raise ValueError("counts must be a 1-D vector of non-negative integers")
    x = x[x > 0].astype(np.int64)
    if x.size == 0:
        raise ValueError("counts hold no clone")
    return x


def _f0_hat(n: int, f1: int, f2: int) -> float:
    """Chao1's unseen-clone estimate with the ``(n-1)/n`` correction (Chao et al. 2014, Eq. 4)."""
    if f2 > 0:
        return (n - 1) / n * f1 * f1 / (2.0 * f2)
    return (n - 1) / n * f1 * (f1 - 1) / 2.0


def _lchoose(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    return special.gammaln(np.add(a, 1)) - special.gammaln(np.add(b, 1)) - special.gammaln(np.subtract(a, b) + 1)


def _shannon_estimate(x: np.ndarray) -> float:
    """Chao, Wang & Jost 2013 (Methods Ecol Evol 4:1091) entropy estimator (nats).

    ``H = sum_i X_i/n (psi(n) - psi(X_i)) + f1/n (1-A)^(1-n) (-ln A - sum_{r=1}^{n-1} (1-A)^r / r)``,
    ``A = 2 f2 / ((n-1) f1 + 2 f2)`` (``f2 = 0``: ``2 / ((n-1)(f1-1) + 2)``; ``f1 = 0``: the second
    term is 0). The first term equals ``sum_k 1/k sum_i X_i/n C(n-X_i,k)/C(n-1,k)``.
    """
    n = int(x.sum())
    f1, f2 = int(np.sum(x == 1)), int(np.sum(x == 2))
    first = float(np.sum(x / n * (special.digamma(n) - special.digamma(x))))
    if f1 == 0:
        return first
    a = 2.0 * f2 / ((n - 1) * f1 + 2 * f2) if f2 > 0 else 2.0 / ((n - 1) * (f1 - 1) + 2)
    if a >= 1.0:
        return first
    r = np.arange(1, n)
    tail = -np.log(a) - float(np.sum(np.exp(r * np.log1p(-a)) / r))
    return first + f1 / n * float(np.exp((1 - n) * np.log1p(-a))) * tail


def _interpolated(x: np.ndarray, m: int) -> tuple[float, float, float, float]:
    """``D0, D1, D2`` and ``C`` of a sub-sample of ``m <= n`` (exact hypergeometric expectations)."""
    n = int(x.sum())
    if m == n:
        p = x / n
        f1, f2 = int(np.sum(x == 1)), int(np.sum(x == 2))
        return (
            float(x.size),
            float(np.exp(-np.sum(p * np.log(p)))),
            float(1.0 / np.sum(p * p)),
            _coverage_observed(n, f1, f2),
        )
    values, freq = np.unique(x, return_counts=True)
    absent = np.where(values <= n - m, np.exp(_lchoose(n - values, m) - _lchoose(n, m)), 0.0)
    d0 = float(np.sum(freq * (1.0 - absent)))
    # Ĉ(m) = 1 - sum_i X_i/n C(n-X_i, m)/C(n-1, m)
    miss = np.where(values <= n - m, np.exp(_lchoose(n - values, m) - _lchoose(n - 1, m)), 0.0)
    cov = 1.0 - float(np.sum(freq * values / n * miss))
    # H(m) = -sum_k (k/m) ln(k/m) f_k(m), f_k(m) = sum_i P(hypergeometric(n, X_i, m) = k): every (value, k)
    # pair at once (log-space binomials; ~1000x faster than a scipy pmf call per distinct value)
    lo, hi = np.maximum(1, m - (n - values)), np.minimum(values, m)
    lens = np.maximum(hi - lo + 1, 0)
    idx = np.repeat(np.arange(values.size), lens)
    k = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(lo, lens)
    v = values[idx]
    pk = np.exp(_lchoose(v, k) + _lchoose(n - v, m - k) - _lchoose(n, m))
    per_value = np.bincount(idx, weights=pk * (k / m) * np.log(k / m), minlength=values.size)
    h = -float(np.sum(freq * per_value))
    lam = float(np.sum(x * (x - 1.0))) / (n * (n - 1.0)) if n > 1 else 1.0
    d2 = 1.0 / (1.0 / m + (1.0 - 1.0 / m) * lam)
    return d0, float(np.exp(h)), d2, cov


def _coverage_observed(n: int, f1: int, f2: int) -> float:
    """``Ĉ(n) = 1 - f1/n [(n-1) f1 / ((n-1) f1 + 2 f2)]`` (Chao & Jost 2012, Eq. 4a)."""
    if f1 == 0:
        return 1.0
    return 1.0 - f1 / n * ((n - 1) * f1 / ((n - 1) * f1 + 2.0 * max(f2, 0)) if n > 1 else 1.0)


def _extrapolated(x: np.ndarray, m: int) -> tuple[float, float, float, float]:
    """``D0, D1, D2`` and ``C`` at ``m = n + m*`` (Chao et al. 2014, Eqs. 9, 10, 11; Chao & Jost 2012)."""
    n = int(x.sum())
    extra = m - n
    s_obs = float(x.size)
    f1, f2 = int(np.sum(x == 1)), int(np.sum(x == 2))
    f0 = _f0_hat(n, f1, f2)
    d0 = s_obs if f1 == 0 or f0 == 0 else s_obs + f0 * (1.0 - (1.0 - f1 / (n * f0 + f1)) ** extra)
    p = x / n
    h_obs = float(-np.sum(p * np.log(p)))
    h_est = max(_shannon_estimate(x), h_obs)
    d1 = float(np.exp(n / m * h_obs + extra / m * h_est))
    lam = float(np.sum(x * (x - 1.0))) / (n * (n - 1.0)) if n > 1 else 1.0
    d2 = 1.0 / (1.0 / m + (1.0 - 1.0 / m) * lam)
    if f1 == 0:
        cov = 1.0
    else:
        ratio = (n - 1) * f1 / ((n - 1) * f1 + 2.0 * f2) if n > 1 else 1.0
        cov = 1.0 - f1 / n * ratio ** (extra + 1)
    return d0, d1, d2, cov


def hill_at(counts: np.ndarray | Sequence[int], sizes: Sequence[int]) -> pl.DataFrame:
    """Interpolated (``m <= n``) and extrapolated (``m > n``) Hill numbers and coverage.

    Interpolation (Chao et al. 2014, Eqs. 4-6; exact expectations over sub-samples of ``m``):

    * ``D0(m) = sum_i [1 - C(n-X_i, m) / C(n, m)]``;
    * ``D1(m) = exp(-sum_{k=1}^m (k/m) ln(k/m) f_k(m))``, ``f_k(m) = sum_i C(X_i,k) C(n-X_i,m-k) / C(n,m)``;
    * ``D2(m) = 1 / (1/m + (1 - 1/m) sum_i X_i(X_i-1) / (n(n-1)))``;
    * ``C(m) = 1 - sum_i X_i/n C(n-X_i, m) / C(n-1, m)`` (Chao & Jost 2012, Eq. 4b).

    Extrapolation to ``m = n + m*``:

    * ``D0 = S_obs + f0 [1 - (1 - f1 / (n f0 + f1))^m*]``, ``f0 = (n-1)/n f1^2 / (2 f2)``
      (``(n-1)/n f1 (f1-1)/2`` when ``f2 = 0``);
    * ``D1 = exp(n/m H_obs + m*/m H_est)`` with ``H_est`` the Chao-Wang-Jost entropy estimator
      (floored at ``H_obs``, so the curve never decreases);
    * ``D2`` the interpolation formula at ``m``;
    * ``C = 1 - f1/n [(n-1) f1 / ((n-1) f1 + 2 f2)]^(m*+1)``.

    Parameters
    ----------
    counts
        Clone counts (zeros ignored).
    sizes
        Sample sizes ``m >= 1``.

    Returns
    -------
    polars.DataFrame
        ``m``, ``method`` (``interpolated``, ``observed`` at ``m = n``, ``extrapolated``), ``hill_0``,
        ``hill_1``, ``hill_2``, ``coverage``.
    """
    x = _counts(counts)
    n = int(x.sum())
    rows = []
    for m in sizes:
        m = int(m)
        if m < 1:
            raise ValueError(f"sample size must be >= 1, got {m}")
        d0, d1, d2, cov = _interpolated(x, m) if m <= n else _extrapolated(x, m)
        method = "observed" if m == n else ("interpolated" if m < n else "extrapolated")
        rows.append((m, method, d0, d1, d2, cov))
    return pl.DataFrame(rows, schema=["m", "method", "hill_0", "hill_1", "hill_2", "coverage"], orient="row")


def coverage_at(counts: np.ndarray | Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Sample coverage ``C(m)`` at each size (see :func:`hill_at`)."""
    return hill_at(counts, sizes)["coverage"].to_numpy()


def bootstrap_assemblage(counts: np.ndarray | Sequence[int]) -> np.ndarray:
    """The estimated assemblage iNEXT bootstraps from (Chao et al. 2014, Appendix S2).

    Seen clones get ``p_i = X_i/n [1 - w (1 - X_i/n)^n]`` with ``w = (f1/n) A / sum_j X_j/n (1-X_j/n)^n``,
    ``A = n f0 / (n f0 + f1)``; ``ceil(f0)`` unseen clones share ``(f1/n) A`` (the undetected
    probability mass, ``1 - C(n)``) equally. Returns the probabilities (sum 1).
    """
    x = _counts(counts)
    n = int(x.sum())
    f1, f2 = int(np.sum(x == 1)), int(np.sum(x == 2))
    f0 = _f0_hat(n, f1, f2)
    a = n * f0 / (n * f0 + f1) if f1 > 0 else 1.0
    mass = f1 / n * a
    b = float(np.sum(x / n * (1 - x / n) ** n))
    w = mass / b if f0 > 0 and b > 0 else 0.0
    seen = x / n * (1 - w * (1 - x / n) ** n)
    unseen = np.full(int(np.ceil(f0)), mass / np.ceil(f0)) if f0 > 0 else np.zeros(0)
    prob = np.concatenate([seen, unseen])
    return prob / prob.sum()


def inext_curve(
    counts: np.ndarray | Sequence[int],
    *,
    sizes: Sequence[int] | None = None,
    knots: int = 40,
    endpoint: int | None = None,
    n_boot: int = 50,
    seed: int = 0,
) -> pl.DataFrame:
    """Rarefaction/extrapolation curves of ``q = 0, 1, 2`` with 95% bootstrap intervals.

    Sizes default to ``knots`` points from 1 to ``endpoint`` (default ``2 n``, the extrapolation
    limit Chao et al. 2014 recommend), always including ``n``. Interval: ``estimate +- 1.96 sd`` over
    ``n_boot`` multinomial samples of size ``n`` from :func:`bootstrap_assemblage`, each evaluated at the
    same sizes (iNEXT's procedure; ``numpy.random.default_rng(seed)``). Lower bounds are clipped at 0
    and coverage bounds to ``[0, 1]``.

    Returns
    -------
    polars.DataFrame
        :data:`CURVE_SCHEMA`, one row per ``(q, m)``.
    """
    x = _counts(counts)
    n = int(x.sum())
    if sizes is None:
        end = 2 * n if endpoint is None else int(endpoint)
        sizes = np.unique(np.concatenate([np.linspace(1, end, knots).round().astype(int), [n]]))
    sizes = [int(m) for m in sizes]
    point = hill_at(x, sizes)
    columns = ["hill_0", "hill_1", "hill_2", "coverage"]
    sd = {c: np.full(len(sizes), np.nan) for c in columns}
    if n_boot > 1:
        prob = bootstrap_assemblage(x)
        rng = np.random.default_rng(seed)
        runs = {c: np.empty((n_boot, len(sizes))) for c in columns}
        for b in range(n_boot):
            star = rng.multinomial(n, prob)
            boot = hill_at(star[star > 0], sizes)
            for c in columns:
                runs[c][b] = boot[c].to_numpy()
        sd = {c: runs[c].std(axis=0, ddof=1) for c in columns}
    cov = point["coverage"].to_numpy()
    frames = []
    for q in (0, 1, 2):
        est = point[f"hill_{q}"].to_numpy()
        frames.append(
            pl.DataFrame(
                {
                    "q": [q] * len(sizes),
                    "m": sizes,
                    "method": point["method"],
                    "estimate": est,
                    "ci_low": np.maximum(est - Z95 * sd[f"hill_{q}"], 0.0),
                    "ci_high": est + Z95 * sd[f"hill_{q}"],
                    "coverage": cov,
                    "coverage_ci_low": np.clip(cov - Z95 * sd["coverage"], 0.0, 1.0),
                    "coverage_ci_high": np.clip(cov + Z95 * sd["coverage"], 0.0, 1.0),
                },
                schema=CURVE_SCHEMA,
            )
        )
    return pl.concat(frames)


def depth_for_coverage(counts: np.ndarray | Sequence[int], coverage: float) -> float:
    """The sample size ``m`` at which ``C(m) = coverage``.

    Below ``C(n)``: bisection on the (increasing) interpolated ``C(m)``, integer ``m``. Above it, the
    extrapolation formula inverted: ``m* = ln(n (1 - C) / f1) / ln(r) - 1``, ``r = (n-1) f1 / ((n-1) f1
    + 2 f2)``. Returns ``inf`` when the coverage cannot be reached (``C >= 1`` with singletons).
    """
    x = _counts(counts)
    n = int(x.sum())
    if not 0.0 < coverage <= 1.0:
        raise ValueError("coverage must be in (0, 1]")
    f1, f2 = int(np.sum(x == 1)), int(np.sum(x == 2))
    c_n = _coverage_observed(n, f1, f2)
    if coverage <= c_n:
        lo, hi = 1, n
        if _interpolated(x, 1)[3] >= coverage:
            return 1.0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _interpolated(x, mid)[3] < coverage else (lo, mid)
        return float(hi)
    if coverage >= 1.0 or f1 == 0:
        return float("inf")
    r = (n - 1) * f1 / ((n - 1) * f1 + 2.0 * f2)
    return float(n + max(np.ceil(np.log(n * (1 - coverage) / f1) / np.log(r) - 1), 1))


def at_equal_coverage(
    samples: Mapping[str, np.ndarray], *, coverage: float | None = None, n_boot: int = 50, seed: int = 0
) -> pl.DataFrame:
    """Every sample's Hill numbers at one common coverage (Chao & Jost 2012's "equal completeness").

    ``coverage`` defaults to iNEXT's choice: the smallest of the samples' coverages at twice their own
    size, ``min_s C_s(2 n_s)``, so no sample is extrapolated beyond ``2 n``. Each sample is evaluated at
    its own ``m_s = depth_for_coverage(counts_s, coverage)``, with :func:`inext_curve`'s intervals.

    Returns
    -------
    polars.DataFrame
        ``sample``, ``coverage`` (the target), ``m``, ``method``, ``q``, ``estimate``, ``ci_low``,
        ``ci_high``.
    """
    vectors = {name: _counts(c) for name, c in samples.items()}
    if coverage is None:
        coverage = min(float(coverage_at(x, [2 * int(x.sum())])[0]) for x in vectors.values())
    rows = []
    for name, x in vectors.items():
        m = depth_for_coverage(x, coverage)
        if not np.isfinite(m):
            rows.append(pl.DataFrame({"sample": [name] * 3, "q": [0, 1, 2]}))
            continue
        curve = inext_curve(x, sizes=[int(m)], n_boot=n_boot, seed=seed)
        rows.append(curve.select(pl.lit(name).alias("sample"), "q", "m", "method", "estimate", "ci_low", "ci_high"))
    out = pl.concat(rows, how="diagonal_relaxed").with_columns(coverage=pl.lit(coverage))
    return out.select("sample", "coverage", "m", "method", "q", "estimate", "ci_low", "ci_high")


# --- Workflow steps (workflow/rules/diversity_curves.smk, scripts/diversity_curves*.py): files in, files out ---


def diversity_curves_step(
    *, patient: str, clonotypes: Sequence[str], sheet: str, knots: int, n_boot: int, seed: int, out: str, figure: str
) -> None:
    """Every sample of one patient -> its rarefaction/extrapolation curves (:func:`inext_curve`, sizes 1 to
    ``2 n``, ``knots`` points, ``n_boot`` bootstraps seeded per sample) and the curve figure."""
    import logging
    from pathlib import Path

    from tcrtrack.io import write_tsv
    from tcrtrack.plots.diversity_curves import diversity_curves
    from tcrtrack.plots.style import save_figure
    from tcrtrack.samplesheet import read_patient_sheet
    from tcrtrack.seeds import sample_seed

    samples = read_patient_sheet(sheet, patient)
    meta = samples.select("sample", "compartment", "day", "replicate")
    frames = []
    for path in clonotypes:
        sample = Path(path).name.removesuffix(".parquet")
        counts = pl.read_parquet(path, columns=["count"])["count"].to_numpy()
        if counts.sum() == 0:
            continue
        curve = inext_curve(counts, knots=knots, n_boot=n_boot, seed=sample_seed(seed, sample))
        frames.append(curve.select(pl.lit(sample).alias("sample"), pl.lit(int(counts.sum())).alias("n"), pl.all()))
    table = pl.concat(frames) if frames else pl.DataFrame(schema={"sample": pl.Utf8, "n": pl.Int64, **CURVE_SCHEMA})
    table = meta.join(table, on="sample", how="inner", maintain_order="right")
    write_tsv(table.select(pl.lit(patient).alias("patient"), pl.all()), out)
    save_figure(diversity_curves(table, samples, patient=patient), figure)
    logging.getLogger(__name__).info(
        "%s: diversity curves of %d samples (%d knots, %d bootstraps)", patient, len(frames), knots, n_boot
    )


def diversity_coverage_step(*, clonotypes: Sequence[str], sheet: str, n_boot: int, seed: int, out: str) -> None:
    """Every sample of the cohort at one sample coverage per compartment (:func:`at_equal_coverage`:
    blood, tumour and product each get their own target, iNEXT's ``min C(2n)`` over the compartment's
    samples), with the sheet's columns."""
    from pathlib import Path

    from tcrtrack.io import write_tsv
    from tcrtrack.samplesheet import read_sample_sheet

    samples = read_sample_sheet(sheet, check_files=False)
    compartment = dict(samples.select("sample", "compartment").iter_rows())
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for path in clonotypes:
        sample = Path(path).name.removesuffix(".parquet")
        counts = pl.read_parquet(path, columns=["count"])["count"].to_numpy()
        if counts.sum() > 0:
            vectors.setdefault(compartment[sample], {})[sample] = counts
    frames = [at_equal_coverage(group, n_boot=n_boot, seed=seed) for _, group in sorted(vectors.items())]
    table = (
        pl.concat(frames, how="diagonal_relaxed")
        if frames
        else pl.DataFrame(
            schema={
                "sample": pl.Utf8,
                "coverage": pl.Float64,
                "m": pl.Int64,
                "method": pl.Utf8,
                "q": pl.Int64,
                "estimate": pl.Float64,
                "ci_low": pl.Float64,
                "ci_high": pl.Float64,
            }
        )
    )
    meta = samples.select("patient", "sample", "compartment", "day", "replicate")
    write_tsv(meta.join(table, on="sample", how="inner", maintain_order="left"), out)
