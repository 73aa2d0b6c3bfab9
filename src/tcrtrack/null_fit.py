"""Fitting the empirical null of :mod:`tcrtrack.empirical_null` on a comparison's clones.

The likelihood of a clone's ``(n, b)`` under each mixture component is a 20-node Gauss-Hermite average of
the binomial over the logit deviation; the mixture weights are fitted by EM (Dempster et al. 1977, JRSS B
39:1) for each abundance exponent ``beta``, ``beta`` by a grid and one parabolic step, the centre from the
clones least touched by expansions (:func:`_robust_center`), and the widest components the data do not need
are pruned (:func:`_prune_tail`). See :mod:`tcrtrack.empirical_null` for the model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from tcrtrack.empirical_null import ALT_SHIFTS, MAX_BETA, MAX_CENTER, NULL_SCALES, EmpiricalNull, poisson_null

_MAX_PAIRS = 4000  # distinct (n, b) pairs used by a fit (more are thinned to this, seeded)

_FIT_NODES, _FIT_WEIGHTS = np.polynomial.hermite_e.hermegauss(20)
_FIT_WEIGHTS = _FIT_WEIGHTS / _FIT_WEIGHTS.sum()


def _component_loglik(
    b: NDArray, n: NDArray, sd: NDArray, base: NDArray, *, shift: NDArray | None = None
) -> NDArray[np.float64]:
    """``log E_z Binom(b; n, expit(base + shift + sd z))`` by 20-node Gauss-Hermite, per row and column of
    ``sd`` (rows: pairs, columns: components; ``shift`` one per column, default 0). For the fit only: the
    p-values use :func:`_tail`."""
    up = np.zeros(sd.shape[1]) if shift is None else np.asarray(shift, float)
    logit = base[:, None, None] + up[None, :, None] + sd[:, :, None] * _FIT_NODES[None, None, :]
    log_choose = special.gammaln(n + 1.0) - special.gammaln(b + 1.0) - special.gammaln(n - b + 1.0)
    lp = -(b[:, None, None] * np.logaddexp(0, -logit) + (n - b)[:, None, None] * np.logaddexp(0, logit))
    top = lp.max(axis=2)
    total = np.exp(lp - top[:, :, None]) @ _FIT_WEIGHTS
    return np.log(total) + top + log_choose[:, None]


def _distinct_pairs(n: NDArray, b: NDArray, *, seed: int) -> tuple[NDArray, NDArray, NDArray]:
    """Distinct ``(n, b)`` with multiplicities; beyond :data:`_MAX_PAIRS`, singleton pairs (large clones)
    are subsampled, seeded, and the kept ones weighted up by the inverse sampling rate."""
    width = int(b.max(initial=0)) + 1
    uniq, mult = np.unique(n * width + b, return_counts=True)
    un, ub, m = uniq // width, uniq % width, mult.astype(float)
    single = np.flatnonzero(mult == 1)
    excess = un.size - _MAX_PAIRS
    if excess > 0 and single.size > excess:
        keep_n = single.size - excess
        kept = np.random.default_rng(seed).choice(single, size=keep_n, replace=False)
        drop = np.setdiff1d(single, kept)
        m[kept] = single.size / keep_n
        mask = np.ones(un.size, bool)
        mask[drop] = False
        un, ub, m = un[mask], ub[mask], m[mask]
    return un, ub, m


def _em_weights(
    loglik: NDArray, mult: NDArray, start: NDArray, *, iterations: int = 500, tol: float = 1e-10
) -> tuple[NDArray, float]:
    """Maximum-likelihood mixture weights over the columns of ``loglik`` (EM; Dempster et al. 1977,
    JRSS B 39:1) for rows of multiplicity ``mult``; returns the weights and the log-likelihood."""
    top = loglik.max(axis=1, keepdims=True)
    lik = np.exp(loglik - top)
    w = start.copy()
    total = mult.sum()
    previous = -np.inf
    for _ in range(iterations):
        mix = lik @ w
        value = float(mult @ np.log(mix))
        w = w * ((mult / mix) @ lik) / total
        if value - previous < tol * max(1.0, abs(value)):
            break
        previous = value
    return w / w.sum(), float(mult @ np.log(lik @ w)) + float(mult @ top[:, 0])


def fit_empirical_null(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_a: int,
    n_b: int,
    source: str = "bulk",
    expansion: bool = True,
    floor: tuple[ArrayLike, ArrayLike] | None = None,
    min_clones: int = 50,
    fallback: EmpiricalNull | None = None,
    seed: int = 0,
    prune: bool = True,
) -> EmpiricalNull:
    """Fit the null law of ``b | n`` on the clones of one comparison (see the module notes).

    ``delta`` from the singletons (:func:`_robust_center`); maximum likelihood over ``beta`` (a grid on
    ``[0, 0.6]`` and one parabolic step) and the mixture weights (EM for each ``beta``), then the widest
    components the data do not need are pruned (:func:`_prune_tail`). With
    ``expansion`` the likelihood of each clone is ``pi_0 f_null + (1 - pi_0) f_up`` where ``f_up`` shifts
    the logit up by ``|t_j z|`` (one-sided); the p-values use the null part only.

    Parameters
    ----------
    a, b
        Aligned counts in the reference and the later sample (clones absent from both are ignored).
    n_a, n_b
        The depths the comparison's frequencies refer to.
    source
        Recorded in :attr:`EmpiricalNull.source`.
    expansion
        Fit the one-sided expansion component (off for technical replicates, an exact null).
    floor
        ``(log10_freq, sd)`` points of a floor on every component sd (replicates, draw pairs).
    min_clones
        Clones with ``n >= 2`` needed to fit; with fewer, ``fallback`` (its shape, centre 0, this floor)
        or, without one, the binomial (Poisson) null, either with a note.
    seed
        Seed of the subsampling of very many distinct pairs.
    prune
        Drop the widest components the data do not need (:func:`_prune_tail`); off for the replicate and
        draw-pair fits whose tails guard the comparison's (``tcrtrack.comparisons.NoiseFloors.tail_nulls``).
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    n = a + b
    keep = n > 0
    n, b = n[keep], b[keep]
    offset, total = float(np.log(n_b / n_a)), float(n_a + n_b)
    floor_points = (tuple(map(float, floor[0])), tuple(map(float, floor[1]))) if floor is not None else ((), ())
    informative = int((n >= 2).sum())
    if informative < min_clones:
        why = f"only {informative} clones seen twice or more (need {min_clones})"
        if fallback is not None:
            return replace(
                fallback,
                source="fallback",
                center=0.0,
                floor_log10_freq=floor_points[0],
                floor_sd=floor_points[1],
                n_clones=int(n.size),
                note=f"{why}: noise shape borrowed from the {fallback.source} fit"
                + (f" ({fallback.note})" if fallback.note else ""),
            )
        return replace(
            poisson_null(note=f"{why}: binomial (Poisson) null"),
            floor_log10_freq=floor_points[0],
            floor_sd=floor_points[1],
        )
    un, ub, mult = _distinct_pairs(n, b, seed=seed)
    f = un / total
    big = un >= 2
    order = np.argsort(f[big])
    cum = np.cumsum(mult[big][order])
    f_ref = float(f[big][order][np.searchsorted(cum, cum[-1] / 2)])
    template = EmpiricalNull(source=source, f_ref=f_ref, floor_log10_freq=floor_points[0], floor_sd=floor_points[1])
    k = len(NULL_SCALES)
    shifts = np.asarray(ALT_SHIFTS)
    state = {"w": np.full(k + len(ALT_SHIFTS) * expansion, 1.0 / (k + len(ALT_SHIFTS) * expansion))}

    cache: dict[float, NDArray] = {}

    def evaluate(delta: float, beta: float) -> tuple[float, NDArray]:
        model = replace(template, beta=beta)
        base = np.full(un.size, offset + delta)
        parts = [_component_loglik(ub, un, model.component_sd(f), base)]
        if expansion:
            if delta not in cache:  # the expansion component does not depend on beta
                cache[delta] = _component_loglik(ub, un, np.tile(shifts / 2, (un.size, 1)), base, shift=shifts)
            parts.append(cache[delta])
        start = np.maximum(state["w"], 1e-6)
        state["loglik"] = np.hstack(parts)
        w, value = _em_weights(state["loglik"], mult, start / start.sum())
        state["w"] = w
        return -value, w

    delta = _robust_center(un, ub, mult, offset)
    betas = np.linspace(0.0, MAX_BETA, 7)
    values = np.array([evaluate(delta, x)[0] for x in betas])
    i = int(np.argmin(values))
    beta = float(betas[i])
    if 0 < i < betas.size - 1:  # one parabolic step through the grid minimum and its neighbours
        y0, y1, y2 = values[i - 1 : i + 2]
        curvature = y0 - 2 * y1 + y2
        if curvature > 0:
            beta = float(np.clip(betas[i] + 0.5 * (betas[1] - betas[0]) * (y0 - y2) / curvature, 0.0, MAX_BETA))
    value, w = evaluate(delta, beta)
    if prune:
        w = _prune_tail(state["loglik"], mult, w, -value, k=k, penalty=0.5 * np.log(max(informative, 2)))
    null_w = w[:k]
    null_share = float(null_w.sum())
    model = replace(
        template,
        center=delta,
        beta=beta,
        weights=tuple(map(float, null_w / null_share)),
        null_share=null_share,
        n_clones=int(n.size),
    )
    return replace(
        model,
        lower_tail_005=_lower_tail_share(model, un, ub, mult, offset, total),
        note=_fit_note(model, delta, beta, null_share, expansion),
    )


def _prune_tail(loglik: NDArray, mult: NDArray, w: NDArray, value: float, *, k: int, penalty: float) -> NDArray:
    """Drop the null's widest components while the data do not need them: from the widest in use down,
    a component of weight below 5% is removed (the rest refitted by EM) when that costs less than
    ``penalty`` log-likelihood units (Schwarz's ``log(m) / 2`` for one weight, ``m`` the clones seen twice
    or more; Akaike's 1 kept spurious 0.5% components in simulation). A tiny weight on a very wide component is
    poorly estimated and would put a floor under every p-value: a weight of 1e-4 on sd 2.5 alone bounds
    ``p`` near 1e-5, so no clone could reach genome-wide significance."""
    for j in range(k - 1, -1, -1):
        if w[j] <= 0:
            continue
        if w[j] >= 0.05:
            break
        trial = w.copy()
        trial[j] = 0.0
        refit, reduced = _em_weights(loglik, mult, trial / trial.sum())
        if value - reduced >= penalty:
            break
        w, value = refit, reduced
    return w


def _robust_center(un: NDArray, ub: NDArray, mult: NDArray, offset: float) -> float:
    """``delta``, the null's centre, from the clones least touched by expansions.

    With 200 or more singletons (``n = 1``): ``logit(s) - theta_0`` where ``s`` is the share of singletons
    seen in the later sample (``P(b = 1 | n = 1) = E[expit(theta_0 + delta + eps)]``, about
    ``expit(theta_0 + delta)``; an expanded clone is rarely a singleton). Otherwise ``logit`` of the
    weighted median of ``b / n`` over the clones seen on both sides with the largest ``n`` available
    (``n >= 50``, else fewer, as long as 200 clones remain). A centre fitted jointly with the one-sided
    expansion component trades off with it (in simulation it moved down and gave a fifth of unchanged
    clones to the expansion component), and a median over large clones moves up when expanded clones
    are a good share of them. The result is kept within ``+-MAX_CENTER``."""
    single = un == 1
    if mult[single].sum() >= 200:
        share = float(mult[single & (ub == 1)].sum() / mult[single].sum())
        share = min(max(share, 1e-6), 1 - 1e-6)
        return float(np.clip(np.log(share / (1 - share)) - offset, -MAX_CENTER, MAX_CENTER))
    inside = (ub > 0) & (ub < un)
    for least in (50, 20, 10, 3, 1):
        sel = inside & (un >= least)
        if mult[sel].sum() >= 200 or least == 1:
            break
    if not sel.any():
        return 0.0
    share = ub[sel] / un[sel]
    order = np.argsort(share)
    cum = np.cumsum(mult[sel][order])
    median = float(share[order][np.searchsorted(cum, cum[-1] / 2)])
    return float(np.clip(np.log(median / (1 - median)) - offset, -MAX_CENTER, MAX_CENTER))


def _lower_tail_share(
    model: EmpiricalNull, un: NDArray, ub: NDArray, mult: NDArray, offset: float, total: float
) -> float:
    """Share of pairs with ``n >= 5`` whose lower-tail p ``P(X <= b)`` is below 0.05 under ``model``."""
    sel = un >= 5
    if not sel.any():
        return float("nan")
    lower = 1.0 - model.pvalues(ub[sel] + 1, un[sel], offset=offset, total_depth=total)
    return float(mult[sel] @ (lower < 0.05) / mult[sel].sum())


def _fit_note(model: EmpiricalNull, delta: float, beta: float, null_share: float, expansion: bool) -> str:
    """Plain-language warnings about a fit: bounds reached, broad change, poor calibration."""
    notes = []
    if beta >= MAX_BETA:
        notes.append(f"abundance exponent at its bound {MAX_BETA}")
    wide = float(np.dot(model.weights, np.asarray(NULL_SCALES) > 1.7))
    if wide > 0.2 or (expansion and null_share < 0.5):
        notes.append(
            f"broad change: {wide:.0%} of the null has an sd over 5-fold and {1 - null_share:.0%} of clones"
            " fit the expansion component; calls are rises beyond this comparison's broad change"
        )
    if model.weights[-1] > 0.05:
        notes.append("the null's widest component is in use: the noise may be wider than the grid")
    if abs(delta) >= MAX_CENTER:
        notes.append(f"centre at its bound +-{MAX_CENTER:g}: few clones are seen in both samples")
    elif abs(delta) > 0.5:
        notes.append(f"composition shift: clones are {np.exp(delta):.2g}x as frequent as the depths predict")
    if model.lower_tail_005 == model.lower_tail_005 and model.lower_tail_005 > 0.1:
        notes.append(f"lower tail miscalibrated ({model.lower_tail_005:.0%} of clones below p = 0.05, 5% expected)")
    return "; ".join(notes)


def pooling_weight(depths: ArrayLike) -> float:
    """``sum d^2 / (sum d)^2``: the variance factor of a depth-weighted pool of libraries (1 for one)."""
    d = np.asarray(depths, dtype=float)
    return float((d**2).sum() / d.sum() ** 2)
