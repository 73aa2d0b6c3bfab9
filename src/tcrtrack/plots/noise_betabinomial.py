"""The noise-model figure of ``expansion.model: betabinomial``: the fitted intra-class correlation ``rho``
by abundance and, as the check, the observed dispersion index against the one the fit expects
(:func:`dispersion_by_bin`), per fitted model (:func:`diagnostics`). :func:`tcrtrack.plots.noise.noise_diagnostic`
calls :func:`betabinomial_figure` for a beta-binomial ``noise_model.tsv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, ScalarFormatter
from numpy.typing import ArrayLike

from tcrtrack.design import Timepoint
from tcrtrack.noise import NoiseModel
from tcrtrack.plots.noise_fits import COMPARISON_LABEL, POOLED_LABEL, resolve_timepoint
from tcrtrack.plots.style import (
    COMPARTMENT_COLOURS,
    FIT_FAMILIES,
    compartment_name,
    day_label,
    days_text,
    log_zero_axis,
    message_axes,
    new_figure,
)


def model_from_rows(rows: pl.DataFrame) -> NoiseModel:
    """Rebuild a :class:`~tcrtrack.noise.NoiseModel` from its rows of ``noise_model.tsv``."""
    rows = rows.sort("bin")
    source = rows["source"][0]
    fitted = rows.filter(pl.col("log10_freq").is_not_null())
    if source == "poisson" or fitted.height == 0:
        return NoiseModel(source="poisson" if source == "poisson" else source, note=rows["note"][0] or "")
    return NoiseModel(
        source=source,
        log10_freq=tuple(fitted["log10_freq"]),
        rho_bins=tuple(fitted["rho"]),
        n_clones=tuple(int(n) for n in fitted["n_clones"]),
        p_null=tuple(float("nan") if p is None else p for p in fitted["p_null"]),
        note=rows["note"][0] or "",
    )


def dispersion_by_bin(
    a: ArrayLike, b: ArrayLike, *, model: NoiseModel, bin_width: float = 0.25, min_clones: int = 20
) -> pl.DataFrame:
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
    frame = pl.DataFrame(
        {
            "x": x,
            "bin": np.floor(x / bin_width).astype(np.int64),
            "resid": (b - n * p0) ** 2,
            "base": base,
            "inflated": base * (1 + (n - 1) * model.rho(freq)),
        }
    )
    out = (
        frame.group_by("bin")
        .agg(
            log10_freq=pl.col("x").mean(),
            n_clones=pl.len().cast(pl.Int64),
            observed=pl.col("resid").sum() / pl.col("base").sum(),
            expected=pl.col("inflated").sum() / pl.col("base").sum(),
        )
        .filter(pl.col("n_clones") >= min_clones)
        .sort("log10_freq")
    )
    return out.select(list(schema))


def _colours(found: list[Diagnostic]) -> list[str]:
    used: dict[str, int] = {}
    out = []
    for diag in found:
        compartment = diag.label.split(" ")[0].replace("tumour", "tumor")
        family = FIT_FAMILIES.get(compartment, tuple(COMPARTMENT_COLOURS.values()))
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
        key = (
            model.source,
            model.log10_freq,
            model.rho_bins,
            comparison.split(" vs ")[1] if model.source == "replicates" else comparison,
        )
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
                tables.append(
                    dispersion_by_bin(clones[f"count_{r1}"].to_numpy(), clones[f"count_{r2}"].to_numpy(), model=model)
                )
            fit = f"fit on the {len(reference.samples)} baseline replicates"
        else:
            later = resolve_timepoint(samples, later_labels[0])
            if reference is not None and later is not None:
                keep = (
                    ~clones[f"{later.label}_significant"].fill_null(False).to_numpy()
                    if f"{later.label}_significant" in clones.columns
                    else np.ones(clones.height, bool)
                )
                tables.append(
                    dispersion_by_bin(_counts(clones, reference)[keep], _counts(clones, later)[keep], model=model)
                )
            fit = {"bulk": "fit on the bulk of clones", "poisson": "Poisson, ρ = 0"}.get(model.source, model.source)
        label = f"{_describe(later_labels, reference_label)} ({fit})"
        dispersion = (
            pl.concat(tables)
            if tables
            else pl.DataFrame(
                schema={"log10_freq": pl.Float64, "n_clones": pl.Int64, "observed": pl.Float64, "expected": pl.Float64}
            )
        )
        out.append(Diagnostic(label=label, model=model, rows=rows_of[key], dispersion=dispersion))
    return out


def _describe(later_labels: list[str], reference_label: str) -> str:
    """``blood days 14, 28, 56 vs day 0`` from comparison labels."""
    parsed = [COMPARISON_LABEL.match(label) for label in (*later_labels, reference_label)]
    pooled_match = POOLED_LABEL.match(reference_label.strip())
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


def betabinomial_figure(noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str) -> Figure:
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
    for colour, diag in zip(colours, found, strict=True):
        model = diag.model
        if model.rho_bins:
            sizes = 12 + 60 * np.sqrt(np.asarray(model.n_clones) / max(max(model.n_clones), 1))
            left.plot(model.log10_freq, model.rho_bins, "-", color=colour, lw=1.5)
            left.scatter(model.log10_freq, model.rho_bins, s=sizes, color=colour, zorder=3, edgecolor="white")
        else:
            left.axhline(0.0, color=colour, lw=1.5)
        table = diag.dispersion
        if table.height:
            right.scatter(
                table["log10_freq"].to_numpy(),
                table["observed"].to_numpy(),
                color=colour,
                s=22,
                zorder=3,
                edgecolor="white",
                linewidths=0.5,
            )
            order = np.argsort(table["log10_freq"].to_numpy())
            right.plot(
                table["log10_freq"].to_numpy()[order], table["expected"].to_numpy()[order], "-", color=colour, lw=1.4
            )
        handles.append(Line2D([], [], color=colour, marker="o", lw=1.5, label=diag.label))
    xs = [v for d in found for v in d.model.log10_freq] + [v for d in found for v in d.dispersion["log10_freq"]]
    low, high = (int(np.floor(min(xs) - 0.1)), int(np.ceil(max(xs) + 0.1))) if xs else (-5, -1)
    for ax in (left, right):
        log_zero_axis(
            ax, axis="x", low=low, high=high, zero_band=False, label="clone frequency (mean of the two samples)"
        )
    left.set_ylabel("overdispersion ρ (0 = Poisson sampling only)")
    left.set_title("fitted noise: ρ by clone abundance (dot size = clones in bin)", fontsize=9)
    left.set_ylim(bottom=0)
    right.axhline(1.0, color="black", ls=":", lw=1)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: f"{v:g}" if v in (2, 3, 5, 20, 30, 50) else ""))
    right.set_ylabel("variance ÷ Poisson variance (dispersion index)")
    right.set_title("check: observed (dots) vs fitted model (lines)", fontsize=9)
    handles += [
        Line2D([], [], color="black", ls=":", label="pure sampling noise (dispersion 1, the Fisher test's model)")
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(
        f"{patient} · noise model of clone counts between samples\ndots on the lines = the beta-binomial "
        "fit explains the draw-to-draw variability; dots above = noise underestimated",
        ha="left",
        x=0.02,
        fontsize=10.5,
    )
    return fig
