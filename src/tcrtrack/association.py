"""Association of per-patient metrics with a sample-sheet column (response, arm, ...).

Input is one row per patient: a group column (e.g. ``response``) and metric columns (flagged
counts, tumour shares, diversity changes, half-lives, clone-origin shares). Designed for 5-20
patients per group, so every test is exact or permutation-based where it matters:

* two groups, numeric metric: exact Mann-Whitney U (Mann & Whitney 1947, Ann Math Stat 18:50). With
  no ties this is ``scipy.stats.mannwhitneyu(method="exact")``; with ties the exact null ignores
  them, so the p-value is the exact permutation p-value of U given the tied values (every split
  counted, by dynamic programming over the mid-ranks). Effect: the
  Hodges-Lehmann shift (Hodges & Lehmann 1963, Ann Math Stat 34:598) with a seeded percentile
  bootstrap 95% interval (Efron & Tibshirani 1993, ch. 13);
* three or more groups: Kruskal-Wallis H (Kruskal & Wallis 1952, JASA 47:583; chi-square with
  ``k - 1`` df, tie-corrected); effect: ``epsilon^2 = H / (n - 1)`` (Tomczak & Tomczak 2014);
* boolean metric (patients with / without, e.g. "any flagged clone"): Fisher's exact test (2 x k,
  Freeman & Halton 1951, Biometrika 38:141; for 2 x 2 the two-sided p-value of
  ``scipy.stats.fisher_exact``); effect: the conditional maximum-likelihood odds ratio with its
  exact 95% interval (``scipy.stats.contingency.odds_ratio``);
* q-values: Benjamini & Hochberg 1995 (JRSS B 57:289) over the metrics tested, ``n_tests`` stated.

Survival (``pfs_days``/``os_days`` with an event column): the k-group log-rank test (Mantel 1966;
Peto & Peto 1972) implemented here with numpy; ``lifelines`` 0.30.3 requires ``pandas<3`` and the
environment has pandas 3.1, so Cox regression is left out.

Patients whose group is missing, or whose metric is missing (null or NaN), are counted
(``n_missing``, ``n_ungrouped``) and named (``missing_patients``), never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np
import polars as pl
from scipy import stats
from scipy.stats.contingency import odds_ratio

#: Columns of :func:`compare_groups`.
ASSOCIATION_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.Utf8(),
    "groups": pl.Utf8(),
    "n_per_group": pl.Utf8(),
    "medians": pl.Utf8(),
    "effect": pl.Float64(),
    "effect_type": pl.Utf8(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "statistic": pl.Float64(),
    "p": pl.Float64(),
    "q": pl.Float64(),
    "test": pl.Utf8(),
    "n_tests": pl.Int64(),
    "n_missing": pl.Int64(),
    "n_ungrouped": pl.Int64(),
    "missing_patients": pl.Utf8(),
}


def hodges_lehmann(reference: np.ndarray, other: np.ndarray) -> float:
    """Hodges-Lehmann shift of ``other`` over ``reference``: ``median_{i,j}(y_j - x_i)``.

    The median of all ``n_x n_y`` pairwise differences, the estimator that goes with the Mann-Whitney
    test (Hodges & Lehmann 1963, Ann Math Stat 34:598).
    """
    x, y = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    return float(np.median(np.subtract.outer(y, x)))


def hodges_lehmann_ci(
    reference: np.ndarray, other: np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`hodges_lehmann`.

    Each of ``n_boot`` replicates resamples both groups with replacement (stratified; group sizes
    fixed) with ``numpy.random.default_rng(seed)``; the interval is the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the replicate shifts. With fewer than 5 patients per group the
    bootstrap distribution is coarse and the interval under-covers (Efron & Tibshirani 1993).
    """
    x, y = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    rng = np.random.default_rng(seed)
    xs = x[rng.integers(0, x.size, size=(n_boot, x.size))]
    ys = y[rng.integers(0, y.size, size=(n_boot, y.size))]
    shifts = np.median((ys[:, :, None] - xs[:, None, :]).reshape(n_boot, -1), axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(shifts, alpha)), float(np.quantile(shifts, 1.0 - alpha))


def _rank_sum_null(doubled_ranks: np.ndarray, size: int) -> np.ndarray:
    """Permutation distribution of twice the rank sum of a random subset of ``size`` items.

    ``count[j, s]`` = number of ``j``-subsets of the (doubled, integer) mid-ranks with sum ``s``,
    by dynamic programming over the items (``count_new[j, s] = count[j, s] + count[j-1, s - r]``);
    returns ``count[size] / C(N, size)``. Exact with ties, O(N * size * sum of ranks).
    """
    total = int(doubled_ranks.sum())
    count = np.zeros((size + 1, total + 1))
    count[0, 0] = 1.0
    for r in doubled_ranks.astype(int):
        count[1:, r:] += count[:-1, : total + 1 - r].copy()
    return count[size] / count[size].sum()


def mann_whitney(reference: np.ndarray, other: np.ndarray) -> tuple[float, float, str]:
    """Two-sided Mann-Whitney U of ``reference`` vs ``other``: ``(U_reference, p, test)``.

    ``U = sum_i sum_j [1(x_i > y_j) + 1/2 1(x_i = y_j)] = R_x - n_x (n_x + 1) / 2`` (``R_x`` the mid-rank
    sum of ``x``). Without ties: the exact null distribution, ``scipy.stats.mannwhitneyu(method="exact")``
    (``test = "mann_whitney_exact"``). With ties scipy's exact null ignores them, so the p-value is the
    exact permutation distribution of ``R_x`` over all ``C(N, n_x)`` splits of the observed mid-ranks
    (:func:`_rank_sum_null`; ``mann_whitney_permutation``). Two-sided p in both cases:
    ``min(1, 2 min(P(U <= u), P(U >= u)))``.
    """
    x, y = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    pooled = np.concatenate([x, y])
    if np.unique(pooled).size == pooled.size:
        res = stats.mannwhitneyu(x, y, alternative="two-sided", method="exact")
        return float(res.statistic), float(res.pvalue), "mann_whitney_exact"
    doubled = np.rint(2 * stats.rankdata(pooled)).astype(np.int64)
    dist = _rank_sum_null(doubled, x.size)
    observed = int(doubled[: x.size].sum())
    cdf = float(dist[: observed + 1].sum())
    sf = float(dist[observed:].sum())
    u = observed / 2 - x.size * (x.size + 1) / 2
    return float(u), float(min(1.0, 2 * min(cdf, sf))), "mann_whitney_permutation"


def fisher_exact_groups(positives: Sequence[int], totals: Sequence[int]) -> float:
    """Exact test of equal proportions in a 2 x k table (Freeman-Halton extension of Fisher's test).

    With the margins fixed, the positives per group follow the multivariate hypergeometric law
    ``P(a) = prod_g C(n_g, a_g) / C(N, A)``; the p-value sums ``P`` over all tables no more probable
    than the observed one (relative tolerance ``1e-7``, as scipy's ``fisher_exact``).
    """
    pos, tot = [int(a) for a in positives], [int(n) for n in totals]
    total_pos, total = sum(pos), sum(tot)

    def logp(a: Sequence[int]) -> float:
        log_numerator = sum(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k, n in zip(a, tot, strict=True)
        )
        return log_numerator - (
            math.lgamma(total + 1) - math.lgamma(total_pos + 1) - math.lgamma(total - total_pos + 1)
        )

    observed = logp(pos)
    p = 0.0
    for head in product(*(range(n + 1) for n in tot[:-1])):
        last = total_pos - sum(head)
        if 0 <= last <= tot[-1]:
            lp = logp((*head, last))
            if lp <= observed + math.log1p(1e-7):
                p += math.exp(lp)
    return min(p, 1.0)


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """BH q-values ``q_(i) = min_{j >= i} m p_(j) / j`` over the finite p-values (``m`` of them);
    NaN stays NaN (Benjamini & Hochberg 1995, JRSS B 57:289)."""
    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = ranked
    q[ok] = out
    return q


def logrank(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> tuple[float, int, float]:
    """k-group log-rank test: ``(chi2, df, p)``.

    At each distinct event time ``t`` with ``d_t`` events among ``n_t`` at risk (``n_tg``, ``d_tg`` per
    group): ``O_g - E_g = sum_t (d_tg - d_t n_tg / n_t)`` and
    ``V_gh = sum_t d_t (n_t - d_t) / (n_t^2 (n_t - 1)) (n_t n_tg 1(g=h) - n_tg n_th)``;
    ``chi2 = (O-E)' V^- (O-E)`` on the first ``k - 1`` groups, ``df = k - 1`` (Mantel 1966, Cancer
    Chemother Rep 50:163; Peto & Peto 1972, JRSS A 135:185). ``event`` is 1 for an event, 0 censored.
    """
    t, e = np.asarray(time, dtype=float), np.asarray(event).astype(bool)
    labels, g = np.unique(np.asarray(group), return_inverse=True)
    k = labels.size
    if k < 2:
        return float("nan"), 0, float("nan")
    o_minus_e, v = np.zeros(k), np.zeros((k, k))
    for tt in np.unique(t[e]):
        at_risk = t >= tt
        n_g = np.bincount(g[at_risk], minlength=k).astype(float)
        d_g = np.bincount(g[at_risk & e & (t == tt)], minlength=k).astype(float)
        n, d = n_g.sum(), d_g.sum()
        o_minus_e += d_g - d * n_g / n
        if n > 1:
            v += d * (n - d) / (n * n * (n - 1)) * (n * np.diag(n_g) - np.outer(n_g, n_g))
    chi2 = float(o_minus_e[:-1] @ np.linalg.pinv(v[:-1, :-1]) @ o_minus_e[:-1])
    return chi2, k - 1, float(stats.chi2.sf(chi2, k - 1))


def _join(values: Sequence[object]) -> str:
    return "|".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values)


def _one_metric(
    values: list[np.ndarray], labels: list[str], boolean: bool, *, n_boot: int, seed: int
) -> dict[str, object]:
    sizes = [v.size for v in values]
    row: dict[str, object] = {
        "groups": _join(labels),
        "n_per_group": _join(sizes),
        "effect": None,
        "effect_type": None,
        "ci_low": None,
        "ci_high": None,
        "statistic": None,
        "p": None,
        "test": None,
    }
    if len(values) < 2:
        return {**row, "medians": None, "test": "not_tested"}
    if boolean:
        pos = [int(v.sum()) for v in values]
        row["medians"] = _join([f"{a}/{n}" for a, n in zip(pos, sizes, strict=True)])
        if min(sizes) == 0:
            return {**row, "test": "not_tested"}
        row.update(p=fisher_exact_groups(pos, sizes), test="fisher_exact")
        if len(values) == 2:
            res = odds_ratio([[pos[1], sizes[1] - pos[1]], [pos[0], sizes[0] - pos[0]]], kind="conditional")
            ci = res.confidence_interval(confidence_level=0.95)
            row.update(
                effect=float(res.statistic), effect_type="odds_ratio", ci_low=float(ci.low), ci_high=float(ci.high)
            )
        return row
    row["medians"] = _join([float(np.median(v)) if v.size else float("nan") for v in values])
    if min(sizes) == 0 or (len(values) > 2 and sum(sizes) < 3):
        return {**row, "test": "not_tested"}
    if len(values) == 2:
        u, p, test = mann_whitney(values[0], values[1])
        low, high = hodges_lehmann_ci(values[0], values[1], n_boot=n_boot, seed=seed)
        row.update(
            statistic=u,
            p=p,
            test=test,
            effect=hodges_lehmann(values[0], values[1]),
            effect_type="hodges_lehmann_shift",
            ci_low=low,
            ci_high=high,
        )
        return row
    pooled = np.concatenate(values)
    if np.unique(pooled).size == 1:
        return {**row, "test": "not_tested"}
    h, p = stats.kruskal(*values)
    row.update(
        statistic=float(h),
        p=float(p),
        test="kruskal_wallis",
        effect=float(h) / (pooled.size - 1),
        effect_type="epsilon_squared",
    )
    return row


def compare_groups(
    table: pl.DataFrame,
    *,
    group: str,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    patient: str = "patient",
    n_boot: int = 2000,
    seed: int = 0,
) -> pl.DataFrame:
    """Test every metric between the groups of ``group``; one row per metric, BH across them.

    Parameters
    ----------
    table
        One row per patient: ``patient``, ``group`` and the metric columns.
    group
        The column defining the groups (e.g. ``response``); patients with it null are ``n_ungrouped``.
    metrics
        Columns to test (default: every numeric or boolean column but ``patient`` and ``group``).
        Boolean columns get Fisher's exact test, numeric ones Mann-Whitney / Kruskal-Wallis.
    reference
        The reference group: effects are ``other - reference`` (default the first group in sorted
        order, e.g. ``non-responder`` before ``responder``). Groups are listed reference first.
    n_boot, seed
        Bootstrap replicates and seed of the Hodges-Lehmann interval.

    Returns
    -------
    polars.DataFrame
        :data:`ASSOCIATION_SCHEMA`. ``groups``, ``n_per_group`` and ``medians`` are ``|``-joined in
        group order (for boolean metrics ``medians`` holds ``positives/n``); ``q`` is BH over the rows
        with a p-value and ``n_tests`` their number; ``n_missing`` counts grouped patients without
        the metric, ``missing_patients`` names them.
    """
    if group not in table.columns:
        raise ValueError(f"no column {group!r} in the per-patient table")
    if metrics is None:
        metrics = [
            c for c, t in table.schema.items() if c not in (patient, group) and (t.is_numeric() or t == pl.Boolean)
        ]
    grouped = table.filter(pl.col(group).is_not_null())
    labels = sorted(str(v) for v in grouped[group].unique().to_list())
    if reference is not None:
        if reference not in labels:
            raise ValueError(f"reference group {reference!r} is not among {labels}")
        labels = [reference, *(lab for lab in labels if lab != reference)]
    rows = []
    for metric in metrics:
        col = grouped[metric]
        boolean = col.dtype == pl.Boolean
        missing = col.is_null() | (col.is_nan() if col.dtype.is_float() else pl.repeat(False, col.len(), eager=True))
        present = grouped.filter(~missing)
        values = [present.filter(pl.col(group).cast(pl.Utf8) == lab)[metric].to_numpy().astype(float) for lab in labels]
        ids = grouped.filter(missing)[patient].cast(pl.Utf8).to_list() if patient in grouped.columns else []
        row = {
            "metric": metric,
            **_one_metric(values, labels, boolean, n_boot=n_boot, seed=seed),
            "n_missing": int(missing.sum()),
            "n_ungrouped": table.height - grouped.height,
            "missing_patients": ",".join(ids) or None,
        }
        rows.append(row)
    out = pl.DataFrame(rows, schema={k: v for k, v in ASSOCIATION_SCHEMA.items() if k not in ("q", "n_tests")})
    p = out["p"].to_numpy().astype(float) if out.height else np.zeros(0)
    q = benjamini_hochberg(p)
    return out.with_columns(
        pl.Series("q", q).fill_nan(None), pl.lit(int(np.isfinite(p).sum()), dtype=pl.Int64).alias("n_tests")
    ).select(list(ASSOCIATION_SCHEMA))


def survival_association(
    table: pl.DataFrame, *, time: str, event: str, by: str, threshold: float | None = None, patient: str = "patient"
) -> pl.DataFrame:
    """Log-rank test of survival between groups: a categorical column, or a metric split at a threshold.

    A numeric ``by`` is dichotomised at ``threshold`` (default its median): ``high`` is ``>= threshold``.
    Patients missing time, event or ``by`` are counted in ``n_missing``.

    Returns
    -------
    polars.DataFrame
        One row: ``by``, ``split``, ``groups``, ``n_per_group``, ``events_per_group``, ``chi2``, ``df``,
        ``p``, ``test`` (``logrank``), ``n_missing``.
    """
    ok = table.filter(pl.col(time).is_not_null() & pl.col(event).is_not_null() & pl.col(by).is_not_null())
    if ok.schema[by].is_float():
        ok = ok.filter(pl.col(by).is_not_nan())
    split = None
    if ok.schema[by].is_numeric():
        split = float(ok[by].median()) if threshold is None else float(threshold)
        labels = np.where(ok[by].to_numpy() >= split, "high", "low")
    else:
        labels = ok[by].cast(pl.Utf8).to_numpy()
    t, e = ok[time].to_numpy().astype(float), ok[event].cast(pl.Int64).to_numpy()
    chi2, df, p = logrank(t, e, labels)
    names = sorted(set(labels.tolist()))
    return pl.DataFrame(
        [
            {
                "by": by,
                "split": split,
                "groups": _join(names),
                "n_per_group": _join([int(np.sum(labels == n)) for n in names]),
                "events_per_group": _join([int(np.sum(e[labels == n])) for n in names]),
                "chi2": chi2,
                "df": df,
                "p": p,
                "test": "logrank",
                "n_missing": table.height - ok.height,
            }
        ]
    )
