"""One comparison of a later timepoint with its reference: depths, noise fit, p-values, fold changes.

Three models of the null "unchanged frequency", conditional on a clone's total ``n = a + b``:

* ``overdispersed`` (default): the empirical null of :mod:`tcrtrack.empirical_null`, fitted on the
  comparison's own clones with sd floors from technical replicates and pre-infusion draw pairs
  (:class:`NoiseFloors`);
* ``betabinomial``: the earlier beta-binomial with ``rho`` per abundance bin (:mod:`tcrtrack.noise`),
  kept for comparison;
* ``fisher``: Fisher's exact test (Poisson sampling only; DeWitt et al. 2015, J Virol 89:4517).

Depths. The infused product's clones are left out of a comparison's tests, fit and depths: a product
that fills half the blood would otherwise halve every other clone's frequency, and its thousands of
expanding clones would make BH permissive for the patient's own (in simulation, 2,000 product
discoveries let 30-35 unchanged clones through: FDP 0.38 among the patient's own clones). The product is
followed by the kinetics stage instead. A truncated
export (top-N sequences) uses its full depth, and a clone absent from a truncated reference is given
``cut - 1`` templates there (the most it can hold), so absence below the cut is not read as absence;
clones absent from a truncated sample are left out of the fit.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats

from tcrtrack.design import Timepoint, Truncation
from tcrtrack.empirical_null import NULL_SCALES, EmpiricalNull, poisson_null
from tcrtrack.multiplicity import bh_over_testable
from tcrtrack.noise import NoiseModel, betabinom_sf, for_pooled_libraries, poisson_noise
from tcrtrack.noise_fit import fit_noise_from_bulk, fit_noise_from_replicates
from tcrtrack.null_fit import fit_empirical_null, pooling_weight

# statistic -> suffix of the comparison's column in the clone table
STATISTICS = {
    "count_post": "count",
    "freq_post": "freq",
    "log2fc": "log2fc",
    "pvalue": "pvalue",
    "qvalue": "qvalue",
    "significant": "significant",
}


def masked(name: str, values: NDArray, valid: NDArray[np.bool_]) -> pl.Series:
    """``values`` as a column, null where ``valid`` is false."""
    column = pl.Series(name, values)
    if valid.all():
        return column
    return pl.select(pl.when(pl.Series(valid)).then(column)).to_series().alias(name)


def nulls(name: str, dtype: pl.DataType, n: int) -> pl.Series:
    """A column of ``n`` nulls."""
    return pl.repeat(None, n, dtype=dtype, eager=True).alias(name)


@dataclass
class Comparison:
    """One later timepoint tested against the reference, aligned on the wide table.

    ``stats`` holds one array per entry of :data:`STATISTICS` (0 or false where not tested);
    ``significant`` is set by the clone-level calls of :mod:`tcrtrack.patient`.
    """

    later: Timepoint
    tested: NDArray[np.bool_]
    stats: dict[str, NDArray]
    p_min: NDArray[np.float64]
    reference_counts: NDArray[np.int64]
    reference_depth: int
    noise: Any
    noise_frame: pl.DataFrame
    noise_source: str
    noise_note: str = ""

    def columns(self) -> list[pl.Series]:
        """The ``<label>_count``, ``_freq``, ``_log2fc``, ``_pvalue``, ``_qvalue``, ``_significant`` columns."""
        return [
            masked(f"{self.later.label}_{suffix}", self.stats[name], self.tested) for name, suffix in STATISTICS.items()
        ]


def _counts(
    wide: pl.DataFrame, point: Timepoint, depths: Mapping[str, Truncation]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], int]:
    """Raw pooled counts, counts with absences of truncated samples set to ``cut - 1``, the mask of such
    absences, and the full depth of the timepoint."""
    raw = reduce(np.add, (wide[f"count_{s}"].to_numpy() for s in point.samples))
    filled, censored = raw.copy(), np.zeros(raw.size, dtype=bool)
    for s in point.samples:
        info = depths.get(s)
        if info is not None and info.truncated:
            absent = wide[f"count_{s}"].to_numpy() == 0
            filled = filled + np.where(absent, info.cut - 1, 0)
            censored |= absent
    depth = sum(depths[s].depth if s in depths else int(wide[f"count_{s}"].sum()) for s in point.samples)
    return raw, filled, censored, int(depth)


def _thin(x: NDArray[np.int64], y: NDArray[np.int64], seed: int) -> tuple[NDArray, NDArray]:
    """Binomially thin the deeper of two libraries to the shallower's depth (Poisson thinning keeps the
    noise law of a Poisson-log-normal), so a pair is compared at equal depths."""
    rng = np.random.default_rng(seed)
    sx, sy = x.sum(), y.sum()
    if sx > sy:
        return rng.binomial(x, sy / sx), y
    if sy > sx:
        return x, rng.binomial(y, sx / sy)
    return x, y


@dataclass
class NoiseFloors:
    """sd floors of a comparison's null from technical replicates and pre-infusion draw pairs.

    A replicate pair of single libraries measures ``2 s_L^2`` (technical); a pair of draws ``2 s_D^2``
    (technical and biological). For a comparison of pooled libraries the floor variance is
    ``max(s_L^2 (W_a + W_b), s_D^2 (D_a + 1))`` with ``W`` the libraries' and ``D`` the draws'
    :func:`~tcrtrack.empirical_null.pooling_weight`.
    """

    wide: pl.DataFrame
    samples: pl.DataFrame
    depths: Mapping[str, Truncation]
    settings: Any
    exclude: NDArray[np.bool_]
    frames: list[pl.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _cache: dict[tuple[str, ...], tuple[NDArray, NDArray] | None] = field(default_factory=dict)

    def _day_groups(self, point: Timepoint) -> list[list[str]]:
        rows = self.samples.filter(pl.col("sample").is_in(list(point.samples))).sort("day", "replicate")
        return [group["sample"].to_list() for _, group in rows.group_by("day", maintain_order=True)]

    def _pair_fit(self, x: NDArray, y: NDArray, *, label: str, source: str, seed: int) -> EmpiricalNull | None:
        keep = ~self.exclude
        x, y = _thin(x[keep], y[keep], seed)
        if x.sum() == 0 or y.sum() == 0:
            return None
        model = fit_empirical_null(
            x,
            y,
            n_a=int(x.sum()),
            n_b=int(y.sum()),
            source=source,
            expansion=source != "replicates",
            seed=seed,
            prune=False,
        )  # their tails guard the comparison's: keep them whole
        if model.source == "poisson":
            return None
        self.frames.append(model.to_frame().select(pl.lit(label).alias("comparison"), pl.all()))
        return model

    def _variances(self, reference: Timepoint) -> tuple[NDArray, NDArray, NDArray, list] | None:
        """Per-library and per-draw floor variances on a frequency grid, and the pair fits with their kind
        (or None without either)."""
        grid = np.linspace(-7.0, -0.5, 27)
        library = np.zeros(grid.size)
        draw = np.zeros(grid.size)
        groups = self._day_groups(reference)
        counts = {s: self.wide[f"count_{s}"].to_numpy() for s in reference.samples}
        found = False
        models: list[tuple[str, EmpiricalNull]] = []
        for group in groups:
            if len(group) >= 2:
                model = self._pair_fit(
                    counts[group[0]],
                    counts[group[1]],
                    source="replicates",
                    label=f"replicates {group[0]} vs {group[1]}",
                    seed=zlib.crc32(group[0].encode()),
                )
                if model is not None:
                    library = np.maximum(library, model.sd(10.0**grid) ** 2 / 2)
                    models.append(("library", model))
                    found = True
        if len(groups) >= 2:
            first, last = groups[-2], groups[-1]
            x = reduce(np.add, (counts[s] for s in first))
            y = reduce(np.add, (counts[s] for s in last))
            model = self._pair_fit(
                x, y, source="draws", label=f"draws {first[0]} vs {last[0]}", seed=zlib.crc32(last[0].encode())
            )
            if model is not None:
                draw = model.sd(10.0**grid) ** 2 / 2
                models.append(("draw", model))
                found = True
        return (grid, library, draw, models) if found else None

    def for_comparison(self, reference: Timepoint, later: Timepoint) -> tuple[NDArray, NDArray] | None:
        """``(log10_freq, sd)`` floor points for ``later`` against ``reference`` (None: no floor)."""
        if self.settings.model != "overdispersed":
            return None
        key = reference.samples
        if key not in self._cache:
            self._cache[key] = self._variances(reference)
        found = self._cache[key]
        if found is None:
            return None
        grid, library, draw, _ = found
        w, d = self._factors(reference, later)
        return grid, np.sqrt(np.maximum(library * w, draw * d))

    def _factors(self, reference: Timepoint, later: Timepoint) -> tuple[float, float]:
        """Variance factors ``W_a + W_b`` (libraries) and ``D_a + 1`` (draws) of the comparison."""

        def lib_depth(names):
            return [self.depths[s].depth for s in names]

        w = pooling_weight(lib_depth(reference.samples)) + pooling_weight(lib_depth(later.samples))
        day_totals = [sum(lib_depth(g)) for g in self._day_groups(reference)]
        return w, pooling_weight(day_totals) + 1.0

    def tail_nulls(self, reference: Timepoint, later: Timepoint, *, center: float) -> list[EmpiricalNull]:
        """The replicate and draw-pair fits carried over to this comparison, whole laws (not only sds).

        A pair of single libraries shows the noise of one library in each tail: a PCR jackpot in either
        library is a jump. A comparison against a pooled baseline dilutes the baseline's jackpots, so its
        own lower tail under-states the jackpots of the single later library, and a symmetric null fitted
        on it is too light in the upper tail (in simulation with 0.5% jackpots per library: FDP 0.26; with
        these pair laws, unpruned, 0.09, at the cost of much of the recall in that scenario).
        The tests therefore also take each pair's law, its sds scaled by ``sqrt(c / 2)`` for the
        comparison's variance factor ``c`` (Gaussian parts shrink as pooling shrinks them; the tail shape
        is kept), centred on the comparison's centre, and report the largest of the p-values.
        """
        if self.settings.model != "overdispersed":
            return []
        key = reference.samples
        if key not in self._cache:
            self._cache[key] = self._variances(reference)
        found = self._cache[key]
        if found is None:
            return []
        w, d = self._factors(reference, later)
        out = []
        for kind, model in found[3]:
            factor = np.sqrt((w if kind == "library" else d) / 2.0)
            out.append(
                replace(
                    model, center=center, _scales=np.asarray(NULL_SCALES) * factor, floor_log10_freq=(), floor_sd=()
                )
            )
        return out


def _fisher(a: NDArray, b: NDArray, n_a: int, n_b: int) -> tuple[NDArray, NDArray]:
    """One-sided Fisher p-values ``P(X >= b)``, ``X ~ Hypergeom(n_a + n_b, n_b, a + b)``, and their minima."""
    n = a + b
    p = stats.hypergeom.sf(b - 1, n_a + n_b, n_b, n)
    return np.clip(p, 0, 1), np.clip(stats.hypergeom.sf(n - 1, n_a + n_b, n_b, n), 0, 1)


def compare(
    wide: pl.DataFrame,
    reference: Timepoint,
    later: Timepoint,
    *,
    settings: Any,
    min_count: int,
    depths: Mapping[str, Truncation],
    exclude: NDArray[np.bool_],
    floors: NoiseFloors,
    fallback: Any = None,
) -> Comparison:
    """Test every clone seen at ``reference`` or ``later`` (see the module notes)."""
    del min_count  # the effect filters are applied with the clone-level calls
    a_raw, a, _, depth_a = _counts(wide, reference, depths)
    b, _, _, depth_b = _counts(wide, later, depths)
    n_a = max(1, depth_a - int(a_raw[exclude].sum()))
    n_b = max(1, depth_b - int(b[exclude].sum()))
    tested = ((a_raw + b) > 0) & ~exclude
    where = np.flatnonzero(tested)
    aw, bw = a[where], b[where]
    truncated = any(depths[s].truncated for s in (*reference.samples, *later.samples) if s in depths)
    # with a truncated side, absences are censored on that side only; fitting the other side's absences
    # would make the null lopsided, so the fit keeps the clones seen in both
    fit = (~exclude & (((a_raw > 0) & (b > 0)) if truncated else np.ones(b.size, dtype=bool)))[where]
    note = "truncated export: noise fitted on the clones seen in both samples" if truncated else ""
    if settings.model == "fisher":
        p, p_min = _fisher(aw, bw, n_a, n_b)
        noise, frame, source = None, poisson_noise().to_frame(), "poisson"
    elif settings.model == "betabinomial":
        if len(reference.samples) >= 2:
            reps = [wide[f"count_{s}"].to_numpy()[where][fit] for s in reference.samples]
            noise = fit_noise_from_replicates(reps, fallback=fallback)
        else:
            noise = fit_noise_from_bulk(
                a_raw[where][fit], bw[fit], n_a=max(n_a, int(a_raw[where][fit].sum())), n_b=n_b, fallback=fallback
            )
        noise = for_pooled_libraries(noise, k_a=len(reference.samples), k_b=len(later.samples))
        n = aw + bw
        rho = noise.rho(n / float(n_a + n_b))
        p = betabinom_sf(bw - 1, n, p=n_b / (n_a + n_b), rho=rho)
        p_min = betabinom_sf(n - 1, n, p=n_b / (n_a + n_b), rho=rho)
        frame, source = noise.to_frame(), noise.source
    else:
        floor = floors.for_comparison(reference, later)
        base = fallback if isinstance(fallback, EmpiricalNull) else None
        noise = fit_empirical_null(
            a_raw[where][fit],
            bw[fit],
            n_a=n_a,
            n_b=n_b,
            floor=floor,
            fallback=base,
            seed=zlib.crc32(later.label.encode()),
        )
        if noise.source == "poisson" and floor is not None:
            noise = noise.with_floor(*floor)
        offset, total = float(np.log(n_b / n_a)), float(n_a + n_b)
        p = noise.pvalues(bw, aw + bw, offset=offset, total_depth=total)
        p_min = noise.min_pvalues(aw + bw, offset=offset, total_depth=total)
        for pair in floors.tail_nulls(reference, later, center=noise.center):
            p = np.maximum(p, pair.pvalues(bw, aw + bw, offset=offset, total_depth=total))
            p_min = np.maximum(p_min, pair.min_pvalues(aw + bw, offset=offset, total_depth=total))
        frame, source = noise.to_frame(), noise.source
        note = "; ".join(filter(None, (note, noise.note)))
        if n_b / n_a < 0.5 or n_a / n_b < 0.5:
            note = "; ".join(
                filter(
                    None,
                    (
                        note,
                        f"depth ratio {min(n_a, n_b) / max(n_a, n_b):.2f} "
                        "(the depth offset models it; shallow samples have less power)",
                    ),
                )
            )
    if not isinstance(noise, NoiseModel) and noise is None:
        noise = poisson_null()
    c = settings.pseudocount
    log2fc = np.log2((bw + c) / n_b) - np.log2((aw + c) / n_a)
    full = {"count_post": b, "freq_post": b / max(1, depth_b)}
    for name, values in (("log2fc", log2fc), ("pvalue", p), ("qvalue", bh_over_testable(p, p_min, alpha=settings.fdr))):
        full[name] = np.zeros(wide.height)
        full[name][where] = values
    full["significant"] = np.zeros(wide.height, dtype=bool)
    p_min_full = np.ones(wide.height)
    p_min_full[where] = p_min
    return Comparison(
        later=later,
        tested=tested,
        stats=full,
        p_min=p_min_full,
        reference_counts=a,
        reference_depth=n_a,
        noise=noise,
        noise_frame=frame,
        noise_source=source,
        noise_note=note,
    )


def best_pair_null(
    wide: pl.DataFrame,
    points: list[Timepoint],
    depths: Mapping[str, Truncation],
    *,
    exclude: NDArray[np.bool_],
    min_shared: int = 50,
) -> EmpiricalNull | None:
    """A stand-in noise shape when a comparison shares too few clones to fit its own: the fit on the two
    blood timepoints of the patient that share the most clones (thinned to equal depth), if they share
    ``min_shared``. After a transplant, for example, baseline and day 32 share 4 of ~1,000 clones while two
    late draws share hundreds: their fit is wider than technical noise and keeps power, unlike giving up."""
    best, pair = 0, None
    for i, first in enumerate(points):
        for second in points[i + 1 :]:
            x, _, cx, _ = _counts(wide, first, depths)
            y, _, cy, _ = _counts(wide, second, depths)
            shared = int(((x > 0) & (y > 0) & ~exclude).sum())
            if shared > best:
                best, pair = shared, (first, second, x, y, ~(cx | cy | exclude))
    if pair is None or best < min_shared:
        return None
    first, second, x, y, keep = pair
    x, y = _thin(x[keep], y[keep], zlib.crc32(second.label.encode()))
    model = fit_empirical_null(
        x, y, n_a=max(1, int(x.sum())), n_b=max(1, int(y.sum())), source=f"blood pair {first.label}/{second.label}"
    )
    if model.source == "poisson":
        return None
    return replace(model, note=f"{best} clones shared; " + model.note if model.note else f"{best} clones shared")
