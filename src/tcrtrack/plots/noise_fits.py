"""The tables behind the noise-model figure of the ``overdispersed`` (and ``fisher``) model: every fit of
``noise_model.tsv`` with its check on the clones seen in both samples (:func:`null_fits`), the spread of the
log fold change per abundance bin (:func:`spread_by_bin`) and the comparison names resolved to the samples
they pool (:func:`resolve_timepoint`). No drawing: :mod:`tcrtrack.plots.noise` draws them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from tcrtrack.design import Timepoint, timepoints
from tcrtrack.plots.style import compartment_name, day_label, days_text

#: ``blood_d14``: one timepoint of a comparison name.
COMPARISON_LABEL = re.compile(r"^(?P<compartment>[A-Za-z]+)_d(?P<day>-?\d+)$")
#: ``blood baseline (days -14, 0 pooled)``: every pre-infusion draw pooled.
POOLED_LABEL = re.compile(r"^(?P<compartment>[A-Za-z]+) baseline \(days (?P<days>-?\d+(?:, -?\d+)*) pooled\)$")
_FLOOR_PREFIXES = ("replicates ", "draws ")
SPREAD_SCHEMA = {
    "log10_freq": pl.Float64,
    "n_clones": pl.Int64,
    "observed": pl.Float64,
    "expected": pl.Float64,
    "poisson": pl.Float64,
    "median_min_count": pl.Float64,
}


def robust_sd(values: ArrayLike) -> float:
    """``1.4826 * median(|x - median(x)|)``: the sd of a normal sample, unmoved by a minority of outliers
    (clones that truly expand); NaN for an empty sample."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def spread_by_bin(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_a: float,
    n_b: float,
    null_sd: Callable[[NDArray], NDArray] | None,
    bin_width: float = 0.25,
    min_clones: int = 20,
) -> pl.DataFrame:
    """Observed and model-expected spread of the log fold change of clones seen in both samples, per
    bin of abundance.

    For clones with ``a > 0`` and ``b > 0`` (counts in the reference and the later sample, depths
    ``N_a``, ``N_b``), ``y = log((b / N_b) / (a / N_a))`` and ``f = (a + b) / (N_a + N_b)``. Per bin of
    ``log10 f`` (``bin_width`` decades)::

        observed = 1.4826 * median(|y - median(y)|)                     (robust sd)
        expected = median( sqrt(sd_null(f)^2 + 1/a + 1/b) )               (null + Poisson sampling)
        poisson  = median( sqrt(1/a + 1/b) )                              (Poisson sampling only)

    ``1/a + 1/b`` is the delta-method variance of the log ratio of two Poisson counts; it is rough for
    counts below ~5 (``median_min_count``) and the selection ``a, b > 0`` trims the spread there.

    Parameters
    ----------
    a, b
        Counts of the same clones in the two samples (pools).
    n_a, n_b
        The depths the frequencies refer to.
    null_sd
        ``sd_null`` as a function of the frequency ``f``; ``None`` for no extra noise (Poisson).
    bin_width
        Bin width in decades of abundance.
    min_clones
        Bins with fewer clones seen in both samples are dropped.

    Returns
    -------
    polars.DataFrame
        ``log10_freq`` (bin mean), ``n_clones``, ``observed``, ``expected``, ``poisson``,
        ``median_min_count``, by abundance.
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape or not (n_a > 0 and n_b > 0):
        return pl.DataFrame(schema=SPREAD_SCHEMA)
    both = (a > 0) & (b > 0)
    a, b = a[both], b[both]
    if a.size == 0:
        return pl.DataFrame(schema=SPREAD_SCHEMA)
    f = (a + b) / (n_a + n_b)
    x = np.log10(f)
    y = np.log((b / n_b) / (a / n_a))
    sampling = 1 / a + 1 / b
    extra = np.zeros(a.size) if null_sd is None else np.nan_to_num(np.asarray(null_sd(f), dtype=float), nan=0.0)
    expected = np.sqrt(extra**2 + sampling)
    bins = np.floor(x / bin_width).astype(np.int64)
    rows = []
    for key in np.unique(bins):
        sel = bins == key
        if sel.sum() < max(min_clones, 1):
            continue
        rows.append(
            (
                float(x[sel].mean()),
                int(sel.sum()),
                robust_sd(y[sel]),
                float(np.median(expected[sel])),
                float(np.median(np.sqrt(sampling[sel]))),
                float(np.median(np.minimum(a[sel], b[sel]))),
            )
        )
    return pl.DataFrame(rows, schema=SPREAD_SCHEMA, orient="row").sort("log10_freq")


def null_sd_from_rows(rows: pl.DataFrame) -> Callable[[NDArray], NDArray]:
    """``sd_null(f)`` of one comparison from its ``noise_model.tsv`` rows (``log10_freq``, ``sd``):
    interpolated linearly in ``log10 f`` on ``log sd`` (the null's sd is a power of ``f``), held
    constant beyond the grid."""
    grid = rows.select("log10_freq", "sd").drop_nulls().filter(pl.col("sd").is_finite()).sort("log10_freq")
    x, sd = grid["log10_freq"].to_numpy(), grid["sd"].to_numpy()
    if x.size == 0:
        return lambda f: np.zeros(np.shape(f))
    positive = bool((sd > 0).all())

    def at(f: NDArray) -> NDArray:
        where = np.log10(np.maximum(np.asarray(f, dtype=float), 1e-300))
        if positive:
            return np.exp(np.interp(where, x, np.log(sd)))
        return np.interp(where, x, sd)

    return at


def _timepoint(samples: pl.DataFrame, label: str) -> Timepoint | None:
    match = COMPARISON_LABEL.match(label.strip())
    if not match:
        return None
    points = [p for p in timepoints(samples, match["compartment"]) if p.day == int(match["day"])]
    return points[0] if points else None


def resolve_timepoint(samples: pl.DataFrame, text: str) -> Timepoint | None:
    """The samples behind one side of a comparison name: ``blood_d14`` or ``blood baseline (days -14, 0
    pooled)`` (the pool of every pre-infusion draw). ``None`` when the sheet has no such samples."""
    text = text.strip()
    match = COMPARISON_LABEL.match(text)
    if match:
        return _timepoint(samples, text)
    pooled_match = POOLED_LABEL.match(text)
    if not pooled_match:
        return None
    days = [int(d) for d in pooled_match["days"].split(", ")]
    points = [p for p in timepoints(samples, pooled_match["compartment"]) if p.day in days]
    if not points:
        return None
    return Timepoint(
        points[-1].compartment,
        points[-1].day,
        tuple(s for p in points for s in p.samples),
        tuple(p.day for p in points),
    )


def _pool_counts(clones: pl.DataFrame, point: Timepoint, keep: NDArray[np.bool_]) -> tuple[NDArray, float] | None:
    """Pooled counts of ``point`` over the kept clones and the pool's depth (each sample's full depth,
    ``count / freq`` for a truncated export, minus the counts of the clones left out)."""
    names = [f"count_{s}" for s in point.samples]
    if not names or any(name not in clones.columns for name in names):
        return None
    total, depth = np.zeros(clones.height), 0.0
    for sample in point.samples:
        counts = clones[f"count_{sample}"].fill_null(0).to_numpy().astype(float)
        full = counts.sum()
        if f"freq_{sample}" in clones.columns:
            freq = clones[f"freq_{sample}"].fill_null(0).to_numpy().astype(float)
            seen = (counts > 0) & (freq > 0)
            if seen.any():
                full = max(full, float(np.median(counts[seen] / freq[seen])))
        total += counts
        depth += full - counts[~keep].sum()
    return total[keep], depth


@dataclass(frozen=True)
class NullFit:
    """One comparison (or replicate / draw-pair floor fit) of ``noise_model.tsv`` and its spread check."""

    comparison: str
    label: str
    compartment: str
    floor: bool
    source: str
    rows: pl.DataFrame
    lower_tail_005: float
    note: str
    spread: pl.DataFrame
    observed_range: tuple[float, float] | None = None
    """``log10 f`` of the comparison's least and most abundant clones seen twice or more (where the fit has data)."""


def _first(rows: pl.DataFrame, column: str) -> object:
    return rows[column][0] if column in rows.columns and rows.height else None


def _label(comparison: str) -> str:
    """``blood day 14 vs day 0``, ``blood day 14 vs baseline (days −14, 0)``, ``replicates b0r1 vs b0r2``."""
    later, _, reference = comparison.partition(" vs ")
    first = COMPARISON_LABEL.match(later.strip())
    if not first:
        return comparison
    compartment = compartment_name(first["compartment"])
    ref = COMPARISON_LABEL.match(reference.strip())
    pooled_match = POOLED_LABEL.match(reference.strip())
    if ref:
        right = day_label(int(ref["day"]))
    elif pooled_match:
        right = f"baseline (days {days_text(int(d) for d in pooled_match['days'].split(', '))})"
    else:
        right = reference
    return f"{compartment} {day_label(int(first['day']))} vs {right}"


def _compartment(comparison: str, samples: pl.DataFrame) -> str:
    """``blood`` / ``tumor`` of a comparison, or of the first sample of a floor fit's pair."""
    first = comparison.split(" vs ")[0].strip()
    match = COMPARISON_LABEL.match(first)
    if match:
        return match["compartment"]
    name = first.split(" ", 1)[-1]
    if "sample" in samples.columns and "compartment" in samples.columns:
        hit = samples.filter(pl.col("sample") == name)["compartment"]
        if hit.len():
            return str(hit[0])
    return "blood"


def null_fits(
    noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, bin_width: float = 0.25, min_clones: int = 20
) -> list[NullFit]:
    """Every fit of an ``overdispersed`` (or ``fisher``) ``noise_model.tsv`` with its spread check: for a
    comparison, :func:`spread_by_bin` of its two (pooled) timepoints, product clones left out of blood
    comparisons as in the fit; floor fits (``replicates ...``, ``draws ...``) get no check (they are
    fitted on depth-thinned pairs)."""
    if noise.height == 0 or "comparison" not in noise.columns:
        return []
    product = (
        clones["in_product"].fill_null(False).to_numpy()
        if "in_product" in clones.columns
        else np.zeros(clones.height, dtype=bool)
    )
    out = []
    for comparison in noise["comparison"].drop_nulls().unique(maintain_order=True):
        rows = noise.filter(pl.col("comparison") == comparison)
        if "log10_freq" in rows.columns:
            rows = rows.sort("log10_freq", nulls_last=True)
        floor = comparison.startswith(_FLOOR_PREFIXES)
        compartment = _compartment(comparison, samples)
        source = str(_first(rows, "source") or "")
        tail = _first(rows, "lower_tail_005")
        tail = float(tail) if isinstance(tail, (int, float)) else float("nan")
        note = str(_first(rows, "note") or "")
        spread = pl.DataFrame(schema=SPREAD_SCHEMA)
        span = None
        later_text, _, reference_text = comparison.partition(" vs ")
        if not floor and reference_text:
            reference = resolve_timepoint(samples, reference_text)
            later = resolve_timepoint(samples, later_text)
            if reference is not None and later is not None:
                keep = ~product if compartment == "blood" else np.ones(clones.height, dtype=bool)
                ref_counts, later_counts = _pool_counts(clones, reference, keep), _pool_counts(clones, later, keep)
                if ref_counts is not None and later_counts is not None:
                    n = ref_counts[0] + later_counts[0]
                    if (n >= 2).any() and ref_counts[1] + later_counts[1] > 0:
                        f = np.log10(n[n >= 2] / (ref_counts[1] + later_counts[1]))
                        span = (float(f.min()), float(f.max()))
                    sd = null_sd_from_rows(rows) if "sd" in rows.columns else None
                    spread = spread_by_bin(
                        ref_counts[0],
                        later_counts[0],
                        n_a=ref_counts[1],
                        n_b=later_counts[1],
                        null_sd=sd,
                        bin_width=bin_width,
                        min_clones=min_clones,
                    )
        out.append(
            NullFit(
                comparison=comparison,
                label=_label(comparison),
                compartment=compartment,
                floor=floor,
                source=source,
                rows=rows,
                lower_tail_005=tail,
                note=note,
                spread=spread,
                observed_range=span,
            )
        )
    return out
