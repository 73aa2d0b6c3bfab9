"""The noise-model diagnostic of one patient: the fitted null of every comparison and a calibration check.

Three tables can reach it (``noise_model.tsv``, one per ``expansion.model``):

* ``overdispersed`` (default, :mod:`tcrtrack.empirical_null`): panel A draws the null's standard
  deviation ``sd(f)`` of the log fold change of an unchanged clone against abundance, per comparison,
  with the replicate and draw-pair fits behind the floors dashed; panel B compares, per abundance bin,
  the observed day-to-day spread of clones seen in both samples with the spread the model expects
  (:func:`spread_by_bin`).
* ``betabinomial``: the earlier figure (``rho`` per bin and the dispersion index, :func:`dispersion_by_bin`).
* ``fisher``: no fitted noise; panel A says so and panel B shows the same check against pure Poisson
  sampling.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, ScalarFormatter
from numpy.typing import ArrayLike, NDArray

from tcrtrack.noise import NoiseModel
from tcrtrack.patient import Timepoint, timepoints
from tcrtrack.plots.style import (COMPARTMENT_COLOURS, OKABE_ITO, compartment_name, day_label, days_text,
                                  log_zero_axis, message_axes, new_figure)

# Colour families per compartment, so blood and tumour fits are told apart at a glance.
_FAMILIES = {"blood": (OKABE_ITO["vermillion"], OKABE_ITO["orange"], OKABE_ITO["purple"], "#882255"),
             "tumor": (OKABE_ITO["blue"], OKABE_ITO["sky_blue"], OKABE_ITO["green"], "#332288")}

_LABEL = re.compile(r"^(?P<compartment>[A-Za-z]+)_d(?P<day>-?\d+)$")


def model_from_rows(rows: pl.DataFrame) -> NoiseModel:
    """Rebuild a :class:`~tcrtrack.noise.NoiseModel` from its rows of ``noise_model.tsv``."""
    rows = rows.sort("bin")
    source = rows["source"][0]
    fitted = rows.filter(pl.col("log10_freq").is_not_null())
    if source == "poisson" or fitted.height == 0:
        return NoiseModel(source="poisson" if source == "poisson" else source, note=rows["note"][0] or "")
    return NoiseModel(source=source, log10_freq=tuple(fitted["log10_freq"]), rho_bins=tuple(fitted["rho"]),
                      n_clones=tuple(int(n) for n in fitted["n_clones"]),
                      p_null=tuple(float("nan") if p is None else p for p in fitted["p_null"]),
                      note=rows["note"][0] or "")


def dispersion_by_bin(a: ArrayLike, b: ArrayLike, *, model: NoiseModel, bin_width: float = 0.25,
                      min_clones: int = 20) -> pl.DataFrame:
    """Observed and expected dispersion index of two samples' counts, per bin of clone frequency.

    With counts ``a_i``, ``b_i``, depths ``N_a``, ``N_b``, ``n_i = a_i + b_i`` and ``p0 = N_b/(N_a+N_b)``,
    over the clones with ``n_i >= 2`` of a bin of ``log10(n_i/(N_a+N_b))``::

        D_obs = sum_i (b_i - n_i p0)^2 / sum_i n_i p0 (1 - p0)
        D_exp = sum_i n_i p0 (1 - p0) (1 + (n_i - 1) rho(f_i)) / sum_i n_i p0 (1 - p0)

    ``D = 1`` is pure sampling noise (binomial, i.e. Poisson sampling of both samples); the beta-binomial
    variance ``n p (1-p) (1 + (n-1) rho)`` (Williams 1975, Biometrics 31:949; Rytlewski et al. 2019,
    PLoS One 14:e0213684) gives ``D_exp``. When the model fits, ``D_obs ≈ D_exp``; ``D_obs >> 1`` where
    ``D_exp ≈ 1`` means the Poisson/Fisher test would call noise significant.

    Parameters
    ----------
    a, b
        Counts of the same clones in the reference and the later sample.
    model
        The fitted noise model (``rho`` as a function of frequency).
    bin_width
        Bin width in decades of frequency.
    min_clones
        Bins with fewer informative clones are dropped.

    Returns
    -------
    polars.DataFrame
        ``log10_freq`` (bin mean), ``n_clones``, ``observed``, ``expected``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n_a, n_b = a.sum(), b.sum()
    schema = {"log10_freq": pl.Float64, "n_clones": pl.Int64, "observed": pl.Float64, "expected": pl.Float64}
    if n_a <= 0 or n_b <= 0:
        return pl.DataFrame(schema=schema)
    n = a + b
    keep = n >= 2
    n, b = n[keep], b[keep]
    p0 = n_b / (n_a + n_b)
    freq = n / (n_a + n_b)
    x = np.log10(freq)
    base = n * p0 * (1 - p0)
    frame = pl.DataFrame({"x": x, "bin": np.floor(x / bin_width).astype(np.int64), "resid": (b - n * p0) ** 2,
                          "base": base, "inflated": base * (1 + (n - 1) * model.rho(freq))})
    out = frame.group_by("bin").agg(
        log10_freq=pl.col("x").mean(), n_clones=pl.len().cast(pl.Int64),
        observed=pl.col("resid").sum() / pl.col("base").sum(),
        expected=pl.col("inflated").sum() / pl.col("base").sum(),
    ).filter(pl.col("n_clones") >= min_clones).sort("log10_freq")
    return out.select(list(schema))


def _colours(found: list["Diagnostic"]) -> list[str]:
    used: dict[str, int] = {}
    out = []
    for diag in found:
        compartment = diag.label.split(" ")[0].replace("tumour", "tumor")
        family = _FAMILIES.get(compartment, tuple(COMPARTMENT_COLOURS.values()))
        out.append(family[used.get(compartment, 0) % len(family)])
        used[compartment] = used.get(compartment, 0) + 1
    return out


@dataclass(frozen=True)
class Diagnostic:
    """One fitted model with the comparisons that share it and its dispersion table."""

    label: str
    model: NoiseModel
    rows: pl.DataFrame
    dispersion: pl.DataFrame


def _timepoint(samples: pl.DataFrame, label: str) -> Timepoint | None:
    match = _LABEL.match(label.strip())
    if not match:
        return None
    points = [p for p in timepoints(samples, match["compartment"]) if p.day == int(match["day"])]
    return points[0] if points else None


def _counts(clones: pl.DataFrame, point: Timepoint) -> np.ndarray:
    return clones.select(pl.sum_horizontal(pl.col(f"count_{s}") for s in point.samples)).to_series().to_numpy()


def diagnostics(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame) -> list[Diagnostic]:
    """Group the comparisons of ``noise_model.tsv`` by identical fit and compute each fit's dispersion
    table: on the baseline replicates for a replicate fit (every pair of replicates), else on the
    comparison itself without the clones called significant in it."""
    if noise.height == 0 or "comparison" not in noise.columns:
        return []
    groups: dict[tuple, list[str]] = {}
    models: dict[tuple, NoiseModel] = {}
    rows_of: dict[tuple, pl.DataFrame] = {}
    for comparison in noise["comparison"].unique(maintain_order=True):
        rows = noise.filter(pl.col("comparison") == comparison)
        model = model_from_rows(rows)
        key = (model.source, model.log10_freq, model.rho_bins,
               comparison.split(" vs ")[1] if model.source == "replicates" else comparison)
        groups.setdefault(key, []).append(comparison)
        models[key] = model
        rows_of[key] = rows
    out = []
    for key, comparisons in groups.items():
        model = models[key]
        later_labels = [c.split(" vs ")[0] for c in comparisons]
        reference_label = comparisons[0].split(" vs ")[1]
        reference = resolve_timepoint(samples, reference_label)
        tables = []
        if model.source == "replicates" and reference is not None and len(reference.samples) >= 2:
            for r1, r2 in combinations(reference.samples, 2):
                tables.append(dispersion_by_bin(clones[f"count_{r1}"].to_numpy(), clones[f"count_{r2}"].to_numpy(),
                                                model=model))
            fit = f"fit on the {len(reference.samples)} baseline replicates"
        else:
            later = resolve_timepoint(samples, later_labels[0])
            if reference is not None and later is not None:
                keep = ~clones[f"{later.label}_significant"].fill_null(False).to_numpy() \
                    if f"{later.label}_significant" in clones.columns else np.ones(clones.height, bool)
                tables.append(dispersion_by_bin(_counts(clones, reference)[keep], _counts(clones, later)[keep],
                                                model=model))
            fit = {"bulk": "fit on the bulk of clones", "poisson": "Poisson, ρ = 0"}.get(model.source, model.source)
        label = f"{_describe(later_labels, reference_label)} ({fit})"
        dispersion = pl.concat(tables) if tables else pl.DataFrame(
            schema={"log10_freq": pl.Float64, "n_clones": pl.Int64, "observed": pl.Float64, "expected": pl.Float64})
        out.append(Diagnostic(label=label, model=model, rows=rows_of[key],
                              dispersion=dispersion))
    return out


def _describe(later_labels: list[str], reference_label: str) -> str:
    """``blood days 14, 28, 56 vs day 0`` from comparison labels."""
    parsed = [_LABEL.match(label) for label in (*later_labels, reference_label)]
    pooled_match = _POOLED.match(reference_label.strip())
    if all(parsed[:-1]) and pooled_match:
        compartment = compartment_name(pooled_match["compartment"])
        days = days_text(int(m["day"]) for m in parsed[:-1])
        reference = days_text(int(d) for d in pooled_match["days"].split(", "))
        return f"{compartment} day{'s' if len(later_labels) > 1 else ''} {days} vs baseline (days {reference})"
    if not all(parsed):
        return f"{', '.join(later_labels)} vs {reference_label}"
    compartment = compartment_name(parsed[-1]["compartment"])
    days = days_text(int(m["day"]) for m in parsed[:-1])
    plural = "s" if len(later_labels) > 1 else ""
    return f"{compartment} day{plural} {days} vs {day_label(int(parsed[-1]['day']))}"


def _betabinomial_figure(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *,
                         patient: str) -> Figure:
    """``expansion.model: betabinomial``. Left: fitted intra-class correlation ``rho`` vs log10 clone
    frequency, per fit. Right: observed dispersion index vs the one the fit expects (and 1, pure
    sampling noise), per frequency bin."""
    fig, axes = new_figure(11.0, 4.9, ncols=2)
    left, right = axes[0]
    found = diagnostics(noise, clones, samples)
    if not found:
        message_axes(left, "no comparisons tested: no noise model")
        message_axes(right, "")
        fig.suptitle(f"{patient} · noise model", ha="left", x=0.02)
        return fig
    colours = _colours(found)
    handles = []
    for colour, diag in zip(colours, found):
        model = diag.model
        if model.rho_bins:
            sizes = 12 + 60 * np.sqrt(np.asarray(model.n_clones) / max(max(model.n_clones), 1))
            left.plot(model.log10_freq, model.rho_bins, "-", color=colour, lw=1.5)
            left.scatter(model.log10_freq, model.rho_bins, s=sizes, color=colour, zorder=3, edgecolor="white")
        else:
            left.axhline(0.0, color=colour, lw=1.5)
        table = diag.dispersion
        if table.height:
            right.scatter(table["log10_freq"].to_numpy(), table["observed"].to_numpy(), color=colour, s=22,
                          zorder=3, edgecolor="white", linewidths=0.5)
            order = np.argsort(table["log10_freq"].to_numpy())
            right.plot(table["log10_freq"].to_numpy()[order], table["expected"].to_numpy()[order], "-",
                       color=colour, lw=1.4)
        handles.append(Line2D([], [], color=colour, marker="o", lw=1.5, label=diag.label))
    xs = [v for d in found for v in d.model.log10_freq] + [v for d in found for v in d.dispersion["log10_freq"]]
    low, high = (int(np.floor(min(xs) - 0.1)), int(np.ceil(max(xs) + 0.1))) if xs else (-5, -1)
    for ax in (left, right):
        log_zero_axis(ax, axis="x", low=low, high=high, zero_band=False,
                      label="clone frequency (mean of the two samples)")
    left.set_ylabel("overdispersion ρ (0 = Poisson sampling only)")
    left.set_title("fitted noise: ρ by clone abundance (dot size = clones in bin)", fontsize=9)
    left.set_ylim(bottom=0)
    right.axhline(1.0, color="black", ls=":", lw=1)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: f"{v:g}" if v in (2, 3, 5, 20, 30, 50) else ""))
    right.set_ylabel("variance ÷ Poisson variance (dispersion index)")
    right.set_title("check: observed (dots) vs fitted model (lines)", fontsize=9)
    handles += [Line2D([], [], color="black", ls=":", label="pure sampling noise (dispersion 1, the Fisher test's model)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"{patient} · noise model of clone counts between samples\ndots on the lines = the beta-binomial "
                 "fit explains the draw-to-draw variability; dots above = noise underestimated",
                 ha="left", x=0.02, fontsize=10.5)
    return fig


# ---------------------------------------------------------------------------------------------------
# expansion.model: overdispersed (the empirical null)

_POOLED = re.compile(r"^(?P<compartment>[A-Za-z]+) baseline \(days (?P<days>-?\d+(?:, -?\d+)*) pooled\)$")
_FLOOR_PREFIXES = ("replicates ", "draws ")
_SOURCE_TEXT = {"bulk": "fitted on its own clones", "replicates": "technical replicates: floor",
                "draws": "pre-infusion draw pair: floor", "fallback": "too few shared clones: shape borrowed",
                "poisson": "too few clones: Poisson sampling, with any floor"}
_FLOOR_STYLES = ((0, (5, 2)), (0, (2, 1.5)), (0, (6, 2, 1, 2)), (0, (1, 1)))
_FLOOR_GREYS = ("#444444", "#777777", "#222222", "#999999")
MAX_NOTE = 100
"""Characters of a fit's note shown in the legend (the full note is in ``noise_model.tsv``)."""
LOW_COUNT = 5
"""Bins whose median smaller count is below this are drawn hollow: the delta-method term is rough there."""
SPREAD_SCHEMA = {"log10_freq": pl.Float64, "n_clones": pl.Int64, "observed": pl.Float64, "expected": pl.Float64,
                 "poisson": pl.Float64, "median_min_count": pl.Float64}


def robust_sd(values: ArrayLike) -> float:
    """``1.4826 * median(|x - median(x)|)``: the sd of a normal sample, unmoved by a minority of outliers
    (clones that truly expand); NaN for an empty sample."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def spread_by_bin(a: ArrayLike, b: ArrayLike, *, n_a: float, n_b: float,
                  null_sd: Callable[[NDArray], NDArray] | None, bin_width: float = 0.25,
                  min_clones: int = 20) -> pl.DataFrame:
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
        rows.append((float(x[sel].mean()), int(sel.sum()), robust_sd(y[sel]), float(np.median(expected[sel])),
                     float(np.median(np.sqrt(sampling[sel]))), float(np.median(np.minimum(a[sel], b[sel])))))
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


def resolve_timepoint(samples: pl.DataFrame, text: str) -> Timepoint | None:
    """The samples behind one side of a comparison name: ``blood_d14`` or ``blood baseline (days -14, 0
    pooled)`` (the pool of every pre-infusion draw). ``None`` when the sheet has no such samples."""
    text = text.strip()
    match = _LABEL.match(text)
    if match:
        return _timepoint(samples, text)
    pooled_match = _POOLED.match(text)
    if not pooled_match:
        return None
    days = [int(d) for d in pooled_match["days"].split(", ")]
    points = [p for p in timepoints(samples, pooled_match["compartment"]) if p.day in days]
    if not points:
        return None
    return Timepoint(points[-1].compartment, points[-1].day, tuple(s for p in points for s in p.samples),
                     tuple(p.day for p in points))


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
    first = _LABEL.match(later.strip())
    if not first:
        return comparison
    compartment = compartment_name(first["compartment"])
    ref = _LABEL.match(reference.strip())
    pooled_match = _POOLED.match(reference.strip())
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
    match = _LABEL.match(first)
    if match:
        return match["compartment"]
    name = first.split(" ", 1)[-1]
    if "sample" in samples.columns and "compartment" in samples.columns:
        hit = samples.filter(pl.col("sample") == name)["compartment"]
        if hit.len():
            return str(hit[0])
    return "blood"


def _shorten(text: str, limit: int = MAX_NOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip(" ;,") + "…"


def null_fits(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, bin_width: float = 0.25,
              min_clones: int = 20) -> list[NullFit]:
    """Every fit of an ``overdispersed`` (or ``fisher``) ``noise_model.tsv`` with its spread check: for a
    comparison, :func:`spread_by_bin` of its two (pooled) timepoints, product clones left out of blood
    comparisons as in the fit; floor fits (``replicates ...``, ``draws ...``) get no check (they are
    fitted on depth-thinned pairs)."""
    if noise.height == 0 or "comparison" not in noise.columns:
        return []
    product = clones["in_product"].fill_null(False).to_numpy() if "in_product" in clones.columns \
        else np.zeros(clones.height, dtype=bool)
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
                    spread = spread_by_bin(ref_counts[0], later_counts[0], n_a=ref_counts[1], n_b=later_counts[1],
                                           null_sd=sd, bin_width=bin_width, min_clones=min_clones)
        out.append(NullFit(comparison=comparison, label=_label(comparison), compartment=compartment, floor=floor,
                           source=source, rows=rows, lower_tail_005=tail, note=note, spread=spread,
                           observed_range=span))
    return out


def _null_colours(fits: list[NullFit]) -> list[str]:
    used: dict[str, int] = {}
    floors = 0
    out = []
    for fit in fits:
        if fit.floor:
            out.append(_FLOOR_GREYS[floors % len(_FLOOR_GREYS)])
            floors += 1
            continue
        family = _FAMILIES.get(fit.compartment, tuple(COMPARTMENT_COLOURS.values()))
        out.append(family[used.get(fit.compartment, 0) % len(family)])
        used[fit.compartment] = used.get(fit.compartment, 0) + 1
    return out


def _legend_text(fit: NullFit) -> str:
    source = _SOURCE_TEXT.get(fit.source, f"noise shape from the {fit.source}" if fit.source.startswith("blood pair")
                              else fit.source)
    parts = [f"{fit.label} ({source})"]
    if fit.lower_tail_005 == fit.lower_tail_005:  # a borrowed shape carries its donor's check
        whose = " of the borrowed fit" if fit.source == "fallback" else ""
        parts.append(f"lower-tail check{whose} {fit.lower_tail_005:.1%}")
    text = " · ".join(parts)
    return text + (f"\n    note: {_shorten(fit.note)}" if fit.note else "")


def _spread_panel(ax: Axes, fits: list[NullFit], colours: list[str], *, poisson_only: bool) -> bool:
    """Panel B; returns whether anything was drawn."""
    drawn = False
    for colour, fit in zip(colours, fits):
        table = fit.spread
        if fit.floor or table.height == 0:
            continue
        x = table["log10_freq"].to_numpy()
        rough = table["median_min_count"].to_numpy() < LOW_COUNT
        observed = table["observed"].to_numpy()
        ax.scatter(x[~rough], observed[~rough], color=colour, s=24, zorder=3, edgecolor="white", linewidths=0.5)
        ax.scatter(x[rough], observed[rough], facecolor="white", edgecolor=colour, s=24, zorder=3, linewidths=1.1)
        ax.plot(x, table["poisson" if poisson_only else "expected"].to_numpy(), "-", color=colour, lw=1.4)
        if not poisson_only:
            ax.plot(x, table["poisson"].to_numpy(), ":", color=colour, lw=1.0, alpha=0.8)
        drawn = True
    return drawn


def _segments(x: NDArray, y: NDArray, span: tuple[float, float] | None) -> tuple[NDArray, NDArray]:
    """``y`` where ``x`` lies inside ``span`` (NaN elsewhere), the ends interpolated onto the span."""
    if span is None:
        return x, y
    lo, hi = span
    grid = np.unique(np.concatenate([x[(x > lo) & (x < hi)], [lo, hi]]))
    return grid, np.interp(grid, x, y)


def _empirical_figure(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str,
                      poisson_only: bool) -> Figure:
    fits = null_fits(noise, clones, samples)
    shown = [fit for fit in fits if not (poisson_only and fit.floor)]
    labels = [fit.label + (f"\n    note: {_shorten(fit.note)}" if fit.note else "") if poisson_only
              else _legend_text(fit) for fit in shown]
    n_lines = sum(1 + label.count("\n") for label in labels)
    fig, axes = new_figure(11.5, 5.0 + 0.16 * n_lines, ncols=2)
    left, right = axes[0]
    title = f"{patient} · noise model of clone counts between samples"
    if not shown:
        message_axes(left, "no comparisons tested: no noise model")
        message_axes(right, "")
        fig.suptitle(title, ha="left", x=0.02)
        return fig
    colours = _null_colours(shown)
    handles = []
    xs = [v for fit in shown if fit.observed_range for v in fit.observed_range]
    xs += [v for fit in shown for v in fit.spread["log10_freq"]]
    if poisson_only:
        message_axes(left, "model: fisher (Fisher's exact test)\n\nno noise model is fitted: clone counts are\n"
                           "assumed to vary between samples by Poisson\nsampling only.\n\nThe check on the right "
                           "shows how much wider\nthe real day-to-day spread is: where dots sit\nabove their line, "
                           "Fisher's p-values are too\nsmall (the test over-calls expansions).")
        handles = [Line2D([], [], color=c, marker="o", lw=1.4, label=label)
                   for c, label in zip(colours, labels)]
    else:
        floors = 0
        grid_x: list[float] = []
        for colour, fit, label in zip(colours, shown, labels):
            rows = fit.rows.drop_nulls(["log10_freq", "sd"]) if {"log10_freq", "sd"} <= set(fit.rows.columns) \
                else fit.rows.head(0)
            if rows.height == 0:
                continue
            x, sd = rows["log10_freq"].to_numpy(), rows["sd"].to_numpy()
            grid_x += [float(x.min()), float(x.max())]
            if fit.floor:
                style = _FLOOR_STYLES[floors % len(_FLOOR_STYLES)]
                floors += 1
                left.plot(x, sd, color=colour, lw=1.3, ls=style)
                handles.append(Line2D([], [], color=colour, ls=style, lw=1.3, label=label))
                continue
            marker = None if fit.source == "bulk" else "x"
            left.plot(x, sd, "-", color=colour, lw=0.9, alpha=0.35)  # beyond the clones: extrapolated
            left.plot(*_segments(x, sd, fit.observed_range), "-", color=colour, lw=1.8)
            if marker:
                left.plot(x, sd, ls="", marker=marker, color=colour, ms=5)
            if "q975" in rows.columns:
                left.plot(*_segments(x, rows["q975"].to_numpy(), fit.observed_range), ":", color=colour, lw=1.0)
            handles.append(Line2D([], [], color=colour, marker=marker, lw=1.8, label=label))
        if not xs:
            xs = grid_x
        left.set_ylim(bottom=0, top=max(left.get_ylim()[1], 0.5))  # near-zero noise is drawn as near zero
        left.set_ylabel("null sd of the log fold change (0 = Poisson sampling only)")
        left.set_title("A · fitted noise of unchanged clones, by abundance\nsolid: sd where the comparison has "
                       "clones · dotted: 97.5% quantile\ndashed: replicate / draw-pair fits (floors) · ×: borrowed "
                       "or Poisson", fontsize=9)
        fold = left.secondary_yaxis("right", functions=(np.exp, lambda v: np.log(np.maximum(v, 1e-12))))
        fold.set_ylabel("typical fold change of an unchanged clone (e^sd)")
        fold.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}×"))
    drawn = _spread_panel(right, shown, colours, poisson_only=poisson_only)
    low, high = (int(np.floor(min(xs) - 0.3)), int(np.ceil(max(xs) + 0.3))) if xs else (-7, -1)
    for ax in [right] if poisson_only else [left, right]:
        log_zero_axis(ax, axis="x", low=low, high=max(high, low + 1), zero_band=False,
                      label="clone abundance, (a + b) / (N_a + N_b)")
    if drawn:
        right.set_ylim(bottom=0)
        right.set_ylabel("spread of the log fold change between the two samples (sd)")
        expected = "Poisson sampling only, √(1/a + 1/b)" if poisson_only else "model, √(null sd² + 1/a + 1/b)"
        right.set_title("B · check on the clones seen in both samples, per abundance bin\n"
                        f"dots: observed spread (robust sd) · lines: {expected}"
                        + ("" if poisson_only else "\nthin dotted: Poisson sampling alone, √(1/a + 1/b)"), fontsize=9)
        right.legend(handles=[
            Line2D([], [], ls="", marker="o", color="#555555", label="observed"),
            Line2D([], [], ls="", marker="o", markerfacecolor="white", color="#555555",
                   label=f"observed, median count < {LOW_COUNT}\n(expected value rough there)")],
            loc="best", frameon=False, fontsize=7.5)
    else:
        message_axes(right, "no abundance bin holds 20 clones seen in both samples\nof a comparison: no check")
    fig.legend(handles=handles, loc="outside lower left", ncols=1, frameon=False, fontsize=7.5,
               title=None if poisson_only else "lower-tail check = share of clones shrinking at p < 0.05 "
               "(about 5% when the null fits; more: null too narrow)", title_fontsize=7.5, alignment="left")
    reading = ("dots on their line: the noise model explains the day-to-day spread, so its p-values are calibrated; "
               "dots above: noise underestimated (too many calls)" if not poisson_only else
               "dots above their line: the real spread exceeds Poisson sampling, and Fisher's test over-calls")
    fig.suptitle(f"{title}\n{reading}", ha="left", x=0.02, fontsize=10.5)
    return fig


def noise_diagnostic(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str) -> Figure:
    """The noise-model figure for whichever model wrote ``noise_model.tsv`` (see the module notes).

    Parameters
    ----------
    noise
        The patient's ``noise_model.tsv``.
    clones
        The patient's wide clone table (``clones.parquet``: ``count_<sample>``, ``freq_<sample>``,
        ``in_product``).
    samples
        The patient's sample-sheet rows.
    patient
        Patient id, for the title.
    """
    columns = set(noise.columns)
    if noise.height == 0 or "comparison" not in columns:
        return _empirical_figure(noise.head(0), clones, samples, patient=patient, poisson_only=False)
    if "sd" in columns:
        return _empirical_figure(noise, clones, samples, patient=patient, poisson_only=False)
    if "source" in columns and noise["source"].drop_nulls().is_in(["poisson"]).all():
        return _empirical_figure(noise, clones, samples, patient=patient, poisson_only=True)
    return _betabinomial_figure(noise, clones, samples, patient=patient)
