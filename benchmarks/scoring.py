"""Scoring of per-patient calls against the planted truth, and an oracle that knows the noise law.

Scoring (:func:`score_calls`) takes any frame with ``clone_id``, ``expanded_in_blood`` and
``flagged`` (``PatientCalls.clones`` of tcrtrack, or :func:`oracle_calls`) and the truth table of
``scenarios.generate_patient``. Product clones are excluded; clones absent from the calls count as
not called. Per patient:

* blood: calls, false calls (not ``new_expanded_tumor``/``blood_only``), realised FDP =
  false / calls (0 without calls), recall of the planted blood clones, and recall among the
  *reachable* ones (>= 20 templates in some post-infusion blood sample);
* flags: calls, false calls (not ``new_expanded_tumor``), FDP, recall of ``new_expanded_tumor``,
  and recall among the reachable ones (>= 20 templates in some post-infusion blood sample and >= 5
  in some post-treatment biopsy, observed counts).

Oracle (:func:`oracle_calls`)
-----------------------------
A test that knows the true generative law. For every comparison (each post-infusion blood day
against the day-0 baseline, replicates pooled; each post-treatment biopsy against the
pre-treatment one) it re-runs the scenario's sampling with the patient's true reference
frequencies and nothing planted changed (:meth:`scenarios.PatientState.null_truth`: the
non-planted changes of the scenario, broad shifts and the product's share, are re-drawn from their
law) ``replicates`` times, and pools the null pairs ``(a', b')`` in bins of ``n' = a' + b'``
(one bin per n up to 25; above, one pool on a standardised deviance, see :class:`NullLaw`). The
p-value of an observed clone is the add-one Monte Carlo tail ``(1 + #{null stat >= stat}) / (1 +
#bin)``: the empirical conditional null law of ``b`` given ``n``. Large clones are rare, so clones
whose expected ``n`` is large get extra null replicates (up to ``boost_max`` each, until a bin of
expected n holds ~``boost_target`` pairs), drawn clone by clone (binomial marginals of the
multinomial, normalised by the sums of the full replicates). Narrow bins of n for large clones
were tried first: their floor (1/(20 x a few hundred)) made the oracle unable to call anything
after BH over ~40,000 clones; a pooled log-ratio z saturated for clones absent at baseline.

Multiplicity, implemented here with numpy: blood, one-sided p per day, a day *testable* when
``n >= 3`` (depends on ``n`` only, so the restriction keeps the conditional null valid; Tarone
1990, Gilbert 2005); per clone Simes over its testable days; Benjamini-Hochberg over the testable
clones; a clone is expanded when ``q < fdr`` and some day has ``log2fc >= 1`` (pseudocount 1) and a
post count >= 3. Flags: ``p = max(Simes blood p, Simes tumour p over the post biopsies)`` for
clones testable in both, BH over those, flagged when ``q < fdr`` and both effect filters hold.

Limits: the Monte Carlo floor is ``1 / (1 + pairs in the bin)`` (1/(20 x clones with that n) for
n <= 25; 1/(null pairs with n > 25), ~1e-6, above); pooling the large clones assumes ``z`` free of n
and frequency, which holds for lognormal-type noise and only roughly for jackpots and for the
negative binomial (whose extra variance grows like m^(gamma-2), not constant on the log scale): in
``jackpots`` the oracle's blood FDP is ~0.15 (the pool is not calibrated for infinite-variance
jackpots), and with exact bins only up to n = 10 it reached ~0.2 in ``product_50`` (hence 25); the boosted replicates
are drawn per clone with the normalising sums of the full replicates (exact for the negative
binomial, which has no normalisation; for heavy jackpots the sum fluctuates more than that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

REACHABLE_BLOOD = 20
REACHABLE_TUMOR = 5


# --------------------------------------------------------------------------- scoring


def _fdp(false: int, calls: int) -> float:
    return false / calls if calls else 0.0


def score_calls(calls: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Counts and rates of one patient's blood calls and flags (see the module docstring)."""
    t = (
        truth.filter(~pl.col("product"))
        .join(
            calls.select("clone_id", pl.col("expanded_in_blood").fill_null(False), pl.col("flagged").fill_null(False)),
            on="clone_id",
            how="left",
        )
        .with_columns(pl.col("expanded_in_blood", "flagged").fill_null(False))
    )
    reach_blood = t["max_post_blood_count"] >= REACHABLE_BLOOD
    reach_flag = reach_blood & (t["max_post_tumor_count"] >= REACHABLE_TUMOR)
    blood, flag = t["expanded_in_blood"], t["flagged"]
    bt, ft = t["blood_true"], t["flag_true"]
    out = {
        "blood_calls": int(blood.sum()),
        "blood_false": int((blood & ~bt).sum()),
        "blood_true": int(bt.sum()),
        "blood_tp": int((blood & bt).sum()),
        "blood_reachable": int((bt & reach_blood).sum()),
        "blood_tp_reachable": int((blood & bt & reach_blood).sum()),
        "flag_calls": int(flag.sum()),
        "flag_false": int((flag & ~ft).sum()),
        "flag_true": int(ft.sum()),
        "flag_tp": int((flag & ft).sum()),
        "flag_reachable": int((ft & reach_flag).sum()),
        "flag_tp_reachable": int((flag & ft & reach_flag).sum()),
        "flag_false_tumor_only": int((flag & (t["category"] == "tumor_only")).sum()),
    }
    out.update(rates(out))
    return out


def rates(c: dict[str, float]) -> dict[str, float]:
    """FDPs and recalls from summed counts (recall 0 with nothing to find)."""
    return {
        "blood_fdp": _fdp(c["blood_false"], c["blood_calls"]),
        "blood_recall": c["blood_tp"] / c["blood_true"] if c["blood_true"] else 0.0,
        "blood_recall_reachable": c["blood_tp_reachable"] / c["blood_reachable"] if c["blood_reachable"] else 0.0,
        "flag_fdp": _fdp(c["flag_false"], c["flag_calls"]),
        "flag_recall": c["flag_tp"] / c["flag_true"] if c["flag_true"] else 0.0,
        "flag_recall_reachable": c["flag_tp_reachable"] / c["flag_reachable"] if c["flag_reachable"] else 0.0,
    }


COUNTS = (
    "blood_calls",
    "blood_false",
    "blood_true",
    "blood_tp",
    "blood_reachable",
    "blood_tp_reachable",
    "flag_calls",
    "flag_false",
    "flag_true",
    "flag_tp",
    "flag_reachable",
    "flag_tp_reachable",
    "flag_false_tumor_only",
)
RATES = ("blood_fdp", "blood_recall", "blood_recall_reachable", "flag_fdp", "flag_recall", "flag_recall_reachable")


def summarise(records: pl.DataFrame) -> pl.DataFrame:
    """Per scenario and method: the rates of the counts pooled over a seed's patients, then the mean
    (and max, for FDPs) over seeds. ``records`` has ``scenario, seed, method`` and the counts."""
    per_seed = records.group_by("scenario", "method", "seed").agg(pl.col(COUNTS).sum())
    rows = []
    for row in per_seed.iter_rows(named=True):
        rows.append({**row, **rates(row)})
    seeds = pl.DataFrame(rows)
    return seeds.group_by("scenario", "method").agg(
        *(pl.col(r).mean() for r in RATES),
        pl.col("blood_fdp").max().alias("blood_fdp_max"),
        pl.col("flag_fdp").max().alias("flag_fdp_max"),
        (pl.col("blood_calls").sum() / pl.col("seed").n_unique()).alias("blood_calls_per_seed"),
        (pl.col("flag_calls").sum() / pl.col("seed").n_unique()).alias("flag_calls_per_seed"),
        pl.col("seed").n_unique().alias("seeds"),
    )


# --------------------------------------------------------------------------- multiplicity


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values."""
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def simes(p: np.ndarray, testable: np.ndarray) -> np.ndarray:
    """Per row, Simes' combination of the testable entries (NaN where none is testable).

    ``p`` and ``testable`` are (clones, days); ``min_k m p_(k) / k`` over the m testable days.
    """
    p = np.where(testable, p, np.inf)
    m = testable.sum(axis=1)
    s = np.sort(p, axis=1)
    k = np.arange(1, p.shape[1] + 1)
    with np.errstate(invalid="ignore"):
        combined = np.min(np.where(np.isfinite(s), s * m[:, None] / k, np.inf), axis=1)
    return np.where(m > 0, np.minimum(combined, 1.0), np.nan)


def tarone(p: np.ndarray, p_min: np.ndarray, alpha: float) -> np.ndarray:
    """``p`` with NaN for the clones Tarone's restriction drops: the smallest K with
    ``#{p_min <= alpha / K} <= K`` keeps the clones with ``p_min <= alpha / K`` (Tarone 1990; for FDR,
    Gilbert 2005). ``p_min`` depends on n only, so the kept clones' p-values stay valid."""
    ok = ~np.isnan(p) & ~np.isnan(p_min)
    pm = np.sort(p_min[ok])
    if not pm.size:
        return np.where(ok, p, np.nan)
    for k in range(1, pm.size + 1):
        if np.searchsorted(pm, alpha / k, side="right") <= k:
            break
    keep = ok & (np.nan_to_num(p_min, nan=np.inf) <= alpha / k)
    return np.where(keep, p, np.nan)


# --------------------------------------------------------------------------- oracle null laws


def _bin_of(n: np.ndarray, exact_up_to: int = 40, width: float = 0.1) -> np.ndarray:
    """Bin index of totals n >= 1: one bin per n up to ``exact_up_to``, then log bins ``width`` wide."""
    n = np.asarray(n, dtype=float)
    log_bin = exact_up_to + np.floor(np.log(np.maximum(n, 1) / exact_up_to) / np.log1p(width)).astype(np.int64) + 1
    return np.where(n <= exact_up_to, n.astype(np.int64), log_bin)


class NullLaw:
    """The empirical conditional null law of one comparison, from null pairs ``(a', b')``.

    Totals ``n <= exact_up_to``: the law of ``b / n`` in each exact n. Larger totals: one pool of a
    standardised statistic, the signed root of the binomial deviance of ``b | n`` against the null
    pairs' share ``p0 = sum b' / sum n'`` divided by ``sqrt(1 + s2 n p0 (1-p0))``, with ``s2`` the extra-binomial
    variance of the log-ratio measured on the null pairs themselves (n > 200): ``z`` is then nearly
    free of n, so every large clone draws on all large null pairs (a floor of
    ~1/(10^5..10^6) instead of 1/(pairs in a narrow bin)).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, n_a: int, n_b: int, exact_up_to: int = 25):
        self.n_a, self.n_b, self.exact = n_a, n_b, exact_up_to
        n = a + b
        keep = n > 0
        a, b, n = a[keep], b[keep], n[keep]
        # the null's own share of the later sample (differs from N_b/(N_a+N_b) when, e.g., a product dilutes it)
        self.p0 = float(b.sum() / n.sum()) if n.size else n_b / (n_a + n_b)
        small = n <= exact_up_to
        bins, r = n[small], b[small] / n[small]
        order = np.argsort(bins * 2.0 + r, kind="stable")  # by n, then r (r in [0, 1])
        self.bins, self.r = bins[order], r[order]
        self.present, self.start = np.unique(self.bins, return_index=True)
        self.stop = np.append(self.start[1:], self.bins.size)
        lr, binom = self._lr(a[~small], b[~small])
        big = n[~small] > 200
        self.s2 = max(float(np.var(lr[big]) - np.mean(binom[big])), 0.0) if big.sum() > 50 else 0.0
        self.z = np.sort(self._z(a[~small], b[~small]))
        self.n_pairs = int(n.size)

    def _lr(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lr = np.log((b + 0.5) / (a + 0.5)) - np.log(self.p0 / (1 - self.p0))
        return lr, 1.0 / (a + 0.5) + 1.0 / (b + 0.5)

    def _z(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Signed root of the binomial deviance of b | n against the null share p0 (sum b' / sum n' of the
        null pairs, N_b/(N_a+N_b) without a product), divided by the
        square root of the variance inflation 1 + s2 n p0 (1 - p0) of the log-odds."""
        a, b = a.astype(float), b.astype(float)
        n = a + b
        p0 = self.p0
        with np.errstate(divide="ignore", invalid="ignore"):
            tb = np.where(b > 0, b * np.log(b / (n * p0)), 0.0)
            ta = np.where(a > 0, a * np.log(a / (n * (1 - p0))), 0.0)
        dev = np.sqrt(np.maximum(2 * (tb + ta), 0.0)) * np.sign(b - n * p0)
        return dev / np.sqrt(1.0 + self.s2 * n * p0 * (1 - p0))

    def pvalues(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Add-one Monte Carlo upper-tail p-values (NaN where n = 0)."""
        a, b = np.asarray(a), np.asarray(b)
        n = a + b
        out = np.full(n.size, np.nan)
        small = np.flatnonzero((n > 0) & (n <= self.exact))
        if small.size and self.present.size:
            k = np.clip(np.searchsorted(self.present, n[small]), 0, self.present.size - 1)
            r = b[small] / n[small] - 1e-12
            exceed = np.empty(small.size, dtype=np.int64)
            for j in np.unique(k):
                sel = k == j
                seg = self.r[self.start[j] : self.stop[j]]
                exceed[sel] = seg.size - np.searchsorted(seg, r[sel], side="left")
            out[small] = (1.0 + exceed) / (1.0 + self.stop[k] - self.start[k])
        large = np.flatnonzero(n > self.exact)
        if large.size:
            z = self._z(a[large], b[large]) - 1e-12
            out[large] = (1.0 + self.z.size - np.searchsorted(self.z, z, side="left")) / (1.0 + self.z.size)
        return out


def _pooled(state, libs) -> np.ndarray:
    return sum(state.counts[lib.sample] for lib in libs)


def null_pairs(
    state,
    compartment: str,
    ref_day: int,
    day: int,
    rng: np.random.Generator,
    *,
    replicates: int = 20,
    boost_target: int = 10_000,
    boost_max: int = 1_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Null pairs of one comparison: ``replicates`` full re-runs of the scenario's sampling plus boosted
    per-clone replicates of the clones with large expected totals (see the module docstring)."""
    law = state.noise_of(compartment)
    points = dict(state.points(compartment))
    ref_libs, later_libs = points[ref_day], points[day]
    f_ref = state.true[(compartment, ref_day)]
    a_out, b_out, sums_ref, sums_later, later_truths = [], [], [], [], []

    def side(f, libs, sums):
        w = law.draw(f, rng)
        total = np.zeros(f.size, dtype=np.int64)
        for lib in libs:
            wl = law.library(w, rng)
            z = wl.sum()
            sums.append(z)
            total += law.counts(wl / z, lib.depth, rng)
        return total

    scored = state.category != "product"  # product clones are known (their own sample) and not null clones
    for _ in range(replicates):
        f_later = state.null_truth(compartment, day, ref_day, rng)
        later_truths.append(f_later)
        a_out.append(side(f_ref, ref_libs, sums_ref)[scored])
        b_out.append(side(f_later, later_libs, sums_later)[scored])
    # boosted replicates of clones with large expected totals
    depth = sum(lib.depth for lib in ref_libs) + sum(lib.depth for lib in later_libs)
    expected = f_ref * depth
    big = np.flatnonzero((expected >= 20) & scored)
    if big.size:
        ebins = _bin_of(expected[big])
        _, inverse, sizes = np.unique(ebins, return_inverse=True, return_counts=True)
        extra = np.clip(np.ceil(boost_target / sizes[inverse]).astype(np.int64) - replicates, 0, boost_max)
        z_ref = np.mean(np.reshape(sums_ref, (replicates, len(ref_libs))), axis=0)
        z_later = np.mean(np.reshape(sums_later, (replicates, len(later_libs))), axis=0)
        clone = np.repeat(big, extra)
        if clone.size:
            f_later = later_truths[0][clone]  # a re-drawn broad shift would differ per replicate; see docstring
            if state.scenario.broad_change_share > 0 and compartment == "blood" and day > 0:
                f_later = np.stack([t[clone] for t in later_truths])[
                    rng.integers(0, replicates, clone.size), np.arange(clone.size)
                ]

            def boosted(f, libs, z):
                w = law.draw(f, rng)
                total = np.zeros(f.size, dtype=np.int64)
                for lib, zl in zip(libs, z, strict=False):
                    total += law.counts(law.library(w, rng) / zl, lib.depth, rng, exact_total=False)
                return total

            a_out.append(boosted(f_ref[clone], ref_libs, z_ref))
            b_out.append(boosted(f_later, later_libs, z_later))
    return np.concatenate(a_out), np.concatenate(b_out)


def _log2fc(a: np.ndarray, b: np.ndarray, n_a: int, n_b: int, c: float = 1.0) -> np.ndarray:
    return np.log2(((b + c) / n_b) / ((a + c) / n_a))


def oracle_pvalues(
    state, compartment: str, rng: np.random.Generator, **null_options
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(p, n, b, log2fc, p_min) arrays of shape (clones, post days) for the compartment's comparisons;
    ``p_min`` is the smallest p-value the clone's n can reach (at b = n), for Tarone's restriction."""
    points = state.points(compartment)
    before = [d for d, _ in points if d <= 0]
    ref_day = before[-1]
    ref_libs = dict(points)[ref_day]
    a = _pooled(state, ref_libs)
    n_a = int(a.sum())
    cols = [[], [], [], [], []]
    for day, libs in points:
        if day <= 0:
            continue
        b = _pooled(state, libs)
        law = NullLaw(*null_pairs(state, compartment, ref_day, day, rng, **null_options), n_a, int(b.sum()))
        cols[0].append(law.pvalues(a, b))
        cols[1].append(a + b)
        cols[2].append(b)
        cols[3].append(_log2fc(a, b, n_a, int(b.sum())))
        cols[4].append(law.pvalues(np.zeros_like(a), a + b))
    return tuple(np.column_stack(c) for c in cols)  # type: ignore[return-value]


def oracle_calls(
    state,
    *,
    seed: int = 0,
    fdr: float = 0.05,
    min_log2fc: float = 1.0,
    min_count: int = 3,
    tumor_min_count: int = 3,
    **null_options,
) -> pl.DataFrame:
    """The oracle's ``clone_id, expanded_in_blood, flagged`` (plus its p- and q-values) for one patient."""
    rng = np.random.default_rng([seed, 7331, int(state.patient[1:])])
    pb, nb, bb, lb, mb = oracle_pvalues(state, "blood", rng, **null_options)
    pt, nt, bt, lt, mt = oracle_pvalues(state, "tumor", rng, **null_options)
    blood_day = nb >= min_count
    tumor_day = nt >= tumor_min_count
    blood_p = tarone(simes(pb, blood_day), simes(mb, blood_day), fdr)
    tumor_p = simes(pt, tumor_day)
    blood_effect = (blood_day & (lb >= min_log2fc) & (bb >= min_count)).any(axis=1)
    tumor_effect = (tumor_day & (lt >= min_log2fc) & (bt >= tumor_min_count)).any(axis=1)
    n = state.clone_ids.size
    blood_q = np.full(n, np.nan)
    ok = ~np.isnan(blood_p)
    blood_q[ok] = bh(blood_p[ok])
    expanded = ok & (np.nan_to_num(blood_q, nan=1.0) < fdr) & blood_effect
    flag_p = np.fmax(blood_p, tumor_p)
    both = ~np.isnan(blood_p) & ~np.isnan(tumor_p)
    both &= ~np.isnan(tarone(np.where(both, flag_p, np.nan), np.fmax(simes(mb, blood_day), simes(mt, tumor_day)), fdr))
    flag_p = np.where(both, flag_p, np.nan)
    flag_q = np.full(n, np.nan)
    flag_q[both] = bh(flag_p[both])
    flagged = both & (np.nan_to_num(flag_q, nan=1.0) < fdr) & blood_effect & tumor_effect
    return pl.DataFrame(
        {
            "clone_id": pl.Series(state.clone_ids, dtype=pl.Utf8),
            "expanded_in_blood": expanded,
            "flagged": flagged,
            "blood_pvalue": blood_p,
            "blood_qvalue": blood_q,
            "tumor_pvalue": tumor_p,
            "flag_pvalue": flag_p,
            "flag_qvalue": flag_q,
        }
    )


def methods_available(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split requested tcrtrack methods into (known, unknown) by ``CallSettings.model``'s Literal; a method is
    a model name, optionally ``+`` a flag FDR procedure (``overdispersed+replicability``)."""
    import typing

    from tcrtrack.patient import CallSettings

    try:
        known = set(typing.get_args(typing.get_type_hints(CallSettings)["model"]))
    except Exception:  # an annotation we cannot read: let analyse_patient decide
        return list(names), []
    if not known:
        return list(names), []
    return ([m for m in names if m.partition("+")[0] in known], [m for m in names if m.partition("+")[0] not in known])
