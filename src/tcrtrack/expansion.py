"""Clone expansion between two samples: fold changes, exact tests, false-discovery control.

Inputs per comparison are aligned count arrays ``a`` (reference: blood baseline or
pre-treatment biopsy; 0 when undetected) and ``b`` (later sample) with sample depths ``n_a``,
``n_b``. Clones *tested* at a comparison are those with ``a + b > 0``; q-values are computed
over exactly those.

Both tests are conditional on the clone's total ``n = a + b`` and one-sided (``b`` larger
than expected under unchanged frequency):

* ``"fisher"``: Fisher's exact test of ``[[b, n_b-b], [a, n_a-a]]`` (DeWitt et al. 2015,
  J Virol 89:4517; the immunoSEQ Analyzer / LymphoSeq differential-abundance test). Under it
  the only noise is sampling of templates, which real repertoires exceed (PCR, cell sampling,
  biology), so on overdispersed data it is anti-conservative.
* ``"betabinomial"``: ``b | n ~ BetaBinomial`` with an abundance-dependent
  intra-class correlation ``rho`` learned from replicates or from the bulk of clones
  (:mod:`tcrtrack.noise`; Rytlewski et al. 2019, PLoS One 14:e0213684; Koraichi et al. 2022).

Every p-value function works on the distinct ``(a, b)`` pairs (a few thousand in a
repertoire of a million clones) and scatters the results back; so do the q-values of
:func:`expansion_table`.

The expansion stage, end to end: rule ``expansion`` (``workflow/rules/expansion.smk``) ->
``scripts/expansion.py`` -> :func:`tcrtrack.pipeline.expansion_step` (reads and writes) ->
:func:`tcrtrack.patient.analyse_patient` (one patient's calls: the timepoints compared, the noise model,
the flags, built on the tests of this module) -> figures in :mod:`tcrtrack.plots.expansion` and
:mod:`tcrtrack.plots.tracking` (rule ``figures``). The cohort: rule ``expansion_cohort`` ->
:func:`tcrtrack.pipeline.expansion_cohort_step`, its tables' columns and summaries in :mod:`tcrtrack.cohort_tables`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from tcrtrack.multiplicity import bh_qvalues
from tcrtrack.noise import NoiseModel, betabinom_sf
from tcrtrack.noise_fit import fit_noise_from_bulk
from tcrtrack.validation import as_counts, as_depth

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "count_ref": pl.Int64(),
    "count_post": pl.Int64(),
    "freq_ref": pl.Float64(),
    "freq_post": pl.Float64(),
    "log2fc": pl.Float64(),
    "pvalue": pl.Float64(),
    "qvalue": pl.Float64(),
    "significant": pl.Boolean(),
}


def _validate(a: ArrayLike, b: ArrayLike, n_a: float, n_b: float) -> tuple[NDArray, NDArray, int, int]:
    a, b = as_counts(a, name="a"), as_counts(b, name="b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must be aligned, got lengths {a.size} and {b.size}")
    n_a, n_b = as_depth(n_a, name="depth n_a"), as_depth(n_b, name="depth n_b")
    if a.sum() > n_a or b.sum() > n_b:
        raise ValueError("counts exceed the sample depth (sum(a) > n_a or sum(b) > n_b)")
    return a, b, n_a, n_b


def _unique_pairs(a: NDArray, b: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Distinct ``(a, b)`` pairs and the index mapping each clone to its pair."""
    key = a * (int(b.max(initial=0)) + 1) + b
    uniq, inverse = np.unique(key, return_inverse=True)
    width = int(b.max(initial=0)) + 1
    return uniq // width, uniq % width, inverse


def log2_fold_change(
    a: ArrayLike, b: ArrayLike, *, n_a: float, n_b: float, pseudocount: float = 1.0
) -> NDArray[np.float64]:
    """Log2 fold change of frequency with a pseudocount in counts.

    .. math:: \\mathrm{log2fc} = \\log_2 \\frac{(b + c)/n_b}{(a + c)/n_a}

    The pseudocount ``c`` is added to both *counts*, not to the depths, so a clone absent from
    the reference gets ``log2((b+c)/c) + log2(n_a/n_b)``: finite, shrunk towards 0 when counts
    are small, and the same for every comparison at equal depths (the usual convention of
    count-based differential abundance, e.g. Love et al. 2014, Genome Biol 15:550 for the
    rationale of moderated fold changes).
    """
    if not pseudocount > 0:
        raise ValueError("pseudocount must be positive")
    a, b, n_a, n_b = _validate(a, b, n_a, n_b)
    return np.log2((b + pseudocount) / n_b) - np.log2((a + pseudocount) / n_a)


def fisher_pvalues(a: ArrayLike, b: ArrayLike, *, n_a: float, n_b: float) -> NDArray[np.float64]:
    """One-sided Fisher's exact test that the clone is more frequent in the later sample.

    Table ``[[b, n_b - b], [a, n_a - a]]``; conditioning on the margins, ``b`` is
    hypergeometric and

    .. math:: p = P(X \\ge b),\\quad X \\sim \\mathrm{Hypergeom}(M = n_a + n_b,\\ K = n_b,\\ N = a + b),

    computed as ``scipy.stats.hypergeom.sf(b - 1, M, K, N)``, equal to
    ``scipy.stats.fisher_exact(table, alternative="greater")``. DeWitt et al. (2015) J Virol
    89:4517 (the immunoSEQ Analyzer / LymphoSeq differential-abundance test). Clones with
    ``a + b = 0`` get ``p = 1``.
    """
    a, b, n_a, n_b = _validate(a, b, n_a, n_b)
    if a.size == 0:
        return np.zeros(0)
    ua, ub, inv = _unique_pairs(a, b)
    p = stats.hypergeom.sf(ub - 1, n_a + n_b, n_b, ua + ub)
    return np.clip(p, 0.0, 1.0)[inv]


def betabinomial_pvalues(
    a: ArrayLike, b: ArrayLike, *, n_a: float, n_b: float, noise: NoiseModel
) -> NDArray[np.float64]:
    """One-sided beta-binomial test that the clone is more frequent in the later sample.

    .. math:: p = P(X \\ge b),\\quad X \\sim \\mathrm{BetaBinomial}(n = a + b,\\ \\alpha,\\ \\beta),
              \\quad \\frac{\\alpha}{\\alpha+\\beta} = p_0 = \\frac{n_b}{n_a+n_b},\\quad
              \\frac{1}{\\alpha+\\beta+1} = \\rho\\!\\left(\\frac{a+b}{n_a+n_b}\\right),

    i.e. ``scipy.stats.betabinom.sf(b - 1, n, alpha, beta)`` evaluated by
    :func:`tcrtrack.noise.betabinom_sf` (exact, vectorised, accurate in the far tail). ``rho``
    comes from ``noise`` (Rytlewski et al. 2019, PLoS One 14:e0213684); ``rho = 0`` is the
    binomial test, the conditional form of two Poisson samplings. Clones with ``a + b = 0`` get
    ``p = 1``.
    """
    a, b, n_a, n_b = _validate(a, b, n_a, n_b)
    if a.size == 0:
        return np.zeros(0)
    ua, ub, inv = _unique_pairs(a, b)
    n = ua + ub
    rho = noise.rho(n / float(n_a + n_b))
    return betabinom_sf(ub - 1, n, p=n_b / (n_a + n_b), rho=rho)[inv]


def _bh_qvalues_of_repeated(p: NDArray[np.float64], repeats: NDArray[np.int64]) -> NDArray[np.float64]:
    """:func:`bh_qvalues` of ``np.repeat(p, repeats)``, one q-value per entry of ``p``, bit for bit.

    Tied p-values share the q-value of the last of them in sorted order, ``p m / k`` with ``k`` the number
    of p-values up to and including the tie (``p m / j`` does not increase along a tie), so sorting the
    distinct p-values (a few thousand distinct ``(a, b)`` pairs) replaces sorting every clone's.
    """
    if repeats.sum() <= 1 or not np.all((p >= 0) & (p <= 1)):
        return bh_qvalues(np.repeat(p, repeats))  # the trivial case, or bh_qvalues' error
    order = np.argsort(p, kind="stable")
    ps = p[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # the last entry of each run of equal p-values
    k = np.cumsum(repeats[order])[last]
    q = ps[last] * (int(repeats.sum()) / k.astype(np.float64))  # as scipy: p * (m / i), i as float
    q = np.clip(np.minimum.accumulate(q[::-1])[::-1], 0.0, 1.0)
    out = np.empty_like(q, shape=p.shape)
    out[order] = q[np.cumsum(np.r_[True, last[:-1]]) - 1]  # each entry's run
    return out


def pool_replicates(
    replicate_counts: Sequence[ArrayLike], *, depths: Sequence[float] | None = None
) -> tuple[NDArray[np.int64], int]:
    """Pool technical replicates of one sample: counts summed clone-wise, depths summed.

    Pooling is the sufficient summary under the Poisson (and, for the mean, the
    beta-binomial) sampling model when replicates are aliquots of the same draw. ``depths``
    defaults to each replicate's count total.
    """
    reps = [as_counts(r, name=f"replicate {i}") for i, r in enumerate(replicate_counts)]
    if not reps or len({r.size for r in reps}) != 1:
        raise ValueError("need at least one replicate; replicates must be aligned (equal length)")
    d = [r.sum() for r in reps] if depths is None else list(depths)
    if len(d) != len(reps):
        raise ValueError("one depth per replicate")
    d = [as_depth(x, name=f"depth depths[{i}]") for i, x in enumerate(d)]
    if any(x < r.sum() for x, r in zip(d, reps, strict=True)):
        raise ValueError("a replicate's counts exceed its depth")
    return np.sum(reps, axis=0).astype(np.int64), int(sum(d))


def expansion_table(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_a: float,
    n_b: float,
    model: Literal["fisher", "betabinomial"] = "betabinomial",
    noise: NoiseModel | None = None,
    pseudocount: float = 1.0,
    fdr: float = 0.05,
    min_log2fc: float = 1.0,
    min_count: int = 2,
) -> pl.DataFrame:
    """Test every clone for expansion from the reference (``a``) to the later sample (``b``).

    Parameters
    ----------
    a, b
        Aligned counts (0 when undetected); pool replicates first (:func:`pool_replicates`).
    n_a, n_b
        Sample depths.
    model
        ``"betabinomial"`` (beta-binomial, :func:`betabinomial_pvalues`) or ``"fisher"``
        (:func:`fisher_pvalues`).
    noise
        Noise model for ``"betabinomial"``; ``None`` fits one on this comparison's bulk
        (:func:`tcrtrack.noise_fit.fit_noise_from_bulk`, default options). Must be ``None`` for
        ``"fisher"``.
    pseudocount
        Count added to ``a`` and ``b`` in ``log2fc`` (:func:`log2_fold_change`).
    fdr, min_log2fc, min_count
        ``significant = qvalue < fdr & log2fc >= min_log2fc & count_post >= min_count``.

    Returns
    -------
    polars.DataFrame
        One row per input clone, in input order, columns of :data:`RESULT_SCHEMA`.
        ``pvalue``/``qvalue`` are null (and ``significant`` false) for clones not tested
        (``a + b = 0``); q-values are Benjamini-Hochberg over the tested clones only.
    """
    columns = expansion_arrays(
        a,
        b,
        n_a=n_a,
        n_b=n_b,
        model=model,
        noise=noise,
        pseudocount=pseudocount,
        fdr=fdr,
        min_log2fc=min_log2fc,
        min_count=min_count,
    )
    for name in ("count_ref", "count_post"):  # the table must not share the caller's arrays
        columns[name] = columns[name].copy()
    return pl.DataFrame(columns, schema=RESULT_SCHEMA).with_columns(pl.col("pvalue", "qvalue").fill_nan(None))


def expansion_arrays(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_a: float,
    n_b: float,
    model: Literal["fisher", "betabinomial"] = "betabinomial",
    noise: NoiseModel | None = None,
    pseudocount: float = 1.0,
    fdr: float = 0.05,
    min_log2fc: float = 1.0,
    min_count: int = 2,
) -> dict[str, NDArray]:
    """:func:`expansion_table` as numpy arrays, one per column of :data:`RESULT_SCHEMA`, with NaN
    p- and q-values for the clones not tested (for callers that keep working on arrays).
    ``count_ref`` and ``count_post`` are ``a`` and ``b`` themselves when these are int64 arrays."""
    a, b, n_a, n_b = _validate(a, b, n_a, n_b)
    if model not in ("fisher", "betabinomial"):
        raise ValueError(f"model must be 'fisher' or 'betabinomial', got {model!r}")
    if model == "fisher" and noise is not None:
        raise ValueError("noise is only used by model='betabinomial'")
    if not 0 < fdr < 1:
        raise ValueError("fdr must lie in (0, 1)")
    log2fc = log2_fold_change(a, b, n_a=n_a, n_b=n_b, pseudocount=pseudocount)
    tested = (a + b) > 0
    pvalue = np.full(a.size, np.nan)
    qvalue = np.full(a.size, np.nan)
    if tested.any():
        every = tested.all()  # as pipelines call it: no copy of the counts
        ua, ub, inv = _unique_pairs(*((a, b) if every else (a[tested], b[tested])))
        if model == "fisher":
            p = fisher_pvalues(ua, ub, n_a=n_a, n_b=n_b)
        else:
            if noise is None:
                noise = fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b)
            p = betabinomial_pvalues(ua, ub, n_a=n_a, n_b=n_b, noise=noise)
        q = _bh_qvalues_of_repeated(p, np.bincount(inv, minlength=p.size))
        if every:
            pvalue, qvalue = p[inv], q[inv]
        else:
            pvalue[tested], qvalue[tested] = p[inv], q[inv]
    significant = tested & (np.nan_to_num(qvalue, nan=1.0) < fdr) & (log2fc >= min_log2fc) & (b >= min_count)
    return {
        "count_ref": a,
        "count_post": b,
        "freq_ref": a / n_a,
        "freq_post": b / n_b,
        "log2fc": log2fc,
        "pvalue": pvalue,
        "qvalue": qvalue,
        "significant": significant,
    }


def test_expansion(a: ArrayLike, b: ArrayLike, **options: Any) -> pl.DataFrame:
    """Deprecated name of :func:`expansion_table` (kept for benchmarks/run.py; warns)."""
    warnings.warn(
        "tcrtrack.expansion.test_expansion is deprecated; use expansion_table", DeprecationWarning, stacklevel=2
    )
    return expansion_table(a, b, **options)


test_expansion.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
