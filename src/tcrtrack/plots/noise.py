"""The noise-model diagnostic of one patient: the fitted null of every comparison and a calibration check.

Three tables can reach it (``noise_model.tsv``, one per ``expansion.model``):

* ``overdispersed`` (default, :mod:`tcrtrack.empirical_null`): panel A draws the null's standard
  deviation ``sd(f)`` of the log fold change of an unchanged clone against abundance, per comparison,
  with the replicate and draw-pair fits behind the floors dashed; panel B compares, per abundance bin,
  the observed day-to-day spread of clones seen in both samples with the spread the model expects
  (the tables: :mod:`tcrtrack.plots.noise_fits`).
* ``betabinomial``: the earlier figure, ``rho`` per bin and the dispersion index
  (:mod:`tcrtrack.plots.noise_betabinomial`).
* ``fisher``: no fitted noise; panel A says so and panel B shows the same check against pure Poisson
  sampling.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from numpy.typing import NDArray

from tcrtrack.plots.noise_betabinomial import betabinomial_figure
from tcrtrack.plots.noise_fits import NullFit, null_fits
from tcrtrack.plots.style import COMPARTMENT_COLOURS, FIT_FAMILIES, log_zero_axis, message_axes, new_figure

_SOURCE_TEXT = {
    "bulk": "fitted on its own clones",
    "replicates": "technical replicates: floor",
    "draws": "pre-infusion draw pair: floor",
    "fallback": "too few shared clones: shape borrowed",
    "poisson": "too few clones: Poisson sampling, with any floor",
}
_FLOOR_STYLES = ((0, (5, 2)), (0, (2, 1.5)), (0, (6, 2, 1, 2)), (0, (1, 1)))
_FLOOR_GREYS = ("#444444", "#777777", "#222222", "#999999")
MAX_NOTE = 100
"""Characters of a fit's note shown in the legend (the full note is in ``noise_model.tsv``)."""
LOW_COUNT = 5
"""Bins whose median smaller count is below this are drawn hollow: the delta-method term is rough there."""


def _shorten(text: str, limit: int = MAX_NOTE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ;,") + "…"


def _null_colours(fits: list[NullFit]) -> list[str]:
    used: dict[str, int] = {}
    floors = 0
    out = []
    for fit in fits:
        if fit.floor:
            out.append(_FLOOR_GREYS[floors % len(_FLOOR_GREYS)])
            floors += 1
            continue
        family = FIT_FAMILIES.get(fit.compartment, tuple(COMPARTMENT_COLOURS.values()))
        out.append(family[used.get(fit.compartment, 0) % len(family)])
        used[fit.compartment] = used.get(fit.compartment, 0) + 1
    return out


def _legend_text(fit: NullFit) -> str:
    source = _SOURCE_TEXT.get(
        fit.source, f"noise shape from the {fit.source}" if fit.source.startswith("blood pair") else fit.source
    )
    parts = [f"{fit.label} ({source})"]
    if fit.lower_tail_005 == fit.lower_tail_005:  # a borrowed shape carries its donor's check
        whose = " of the borrowed fit" if fit.source == "fallback" else ""
        parts.append(f"lower-tail check{whose} {fit.lower_tail_005:.1%}")
    text = " · ".join(parts)
    return text + (f"\n    note: {_shorten(fit.note)}" if fit.note else "")


def _spread_panel(ax: Axes, fits: list[NullFit], colours: list[str], *, poisson_only: bool) -> bool:
    """Panel B; returns whether anything was drawn."""
    drawn = False
    for colour, fit in zip(colours, fits, strict=True):
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


def _empirical_figure(
    noise: pl.DataFrame, clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str, poisson_only: bool
) -> Figure:
    fits = null_fits(noise, clones, samples)
    shown = [fit for fit in fits if not (poisson_only and fit.floor)]
    labels = [
        fit.label + (f"\n    note: {_shorten(fit.note)}" if fit.note else "") if poisson_only else _legend_text(fit)
        for fit in shown
    ]
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
        message_axes(
            left,
            "model: fisher (Fisher's exact test)\n\nno noise model is fitted: clone counts are\n"
            "assumed to vary between samples by Poisson\nsampling only.\n\nThe check on the right "
            "shows how much wider\nthe real day-to-day spread is: where dots sit\nabove their line, "
            "Fisher's p-values are too\nsmall (the test over-calls expansions).",
        )
        handles = [
            Line2D([], [], color=c, marker="o", lw=1.4, label=label) for c, label in zip(colours, labels, strict=True)
        ]
    else:
        floors = 0
        grid_x: list[float] = []
        for colour, fit, label in zip(colours, shown, labels, strict=True):
            rows = (
                fit.rows.drop_nulls(["log10_freq", "sd"])
                if {"log10_freq", "sd"} <= set(fit.rows.columns)
                else fit.rows.head(0)
            )
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
        left.set_title(
            "A · fitted noise of unchanged clones, by abundance\nsolid: sd where the comparison has "
            "clones · dotted: 97.5% quantile\ndashed: replicate / draw-pair fits (floors) · ×: borrowed "
            "or Poisson",
            fontsize=9,
        )
        fold = left.secondary_yaxis("right", functions=(np.exp, lambda v: np.log(np.maximum(v, 1e-12))))
        fold.set_ylabel("typical fold change of an unchanged clone (e^sd)")
        fold.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}×"))
    drawn = _spread_panel(right, shown, colours, poisson_only=poisson_only)
    low, high = (int(np.floor(min(xs) - 0.3)), int(np.ceil(max(xs) + 0.3))) if xs else (-7, -1)
    for ax in [right] if poisson_only else [left, right]:
        log_zero_axis(
            ax,
            axis="x",
            low=low,
            high=max(high, low + 1),
            zero_band=False,
            label="clone abundance, (a + b) / (N_a + N_b)",
        )
    if drawn:
        right.set_ylim(bottom=0)
        right.set_ylabel("spread of the log fold change between the two samples (sd)")
        expected = "Poisson sampling only, √(1/a + 1/b)" if poisson_only else "model, √(null sd² + 1/a + 1/b)"
        right.set_title(
            "B · check on the clones seen in both samples, per abundance bin\n"
            f"dots: observed spread (robust sd) · lines: {expected}"
            + ("" if poisson_only else "\nthin dotted: Poisson sampling alone, √(1/a + 1/b)"),
            fontsize=9,
        )
        right.legend(
            handles=[
                Line2D([], [], ls="", marker="o", color="#555555", label="observed"),
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="o",
                    markerfacecolor="white",
                    color="#555555",
                    label=f"observed, median count < {LOW_COUNT}\n(expected value rough there)",
                ),
            ],
            loc="best",
            frameon=False,
            fontsize=7.5,
        )
    else:
        message_axes(right, "no abundance bin holds 20 clones seen in both samples\nof a comparison: no check")
    fig.legend(
        handles=handles,
        loc="outside lower left",
        ncols=1,
        frameon=False,
        fontsize=7.5,
        title=None
        if poisson_only
        else "lower-tail check = share of clones shrinking at p < 0.05 "
        "(about 5% when the null fits; more: null too narrow)",
        title_fontsize=7.5,
        alignment="left",
    )
    reading = (
        "dots on their line: the noise model explains the day-to-day spread, so its p-values are calibrated; "
        "dots above: noise underestimated (too many calls)"
        if not poisson_only
        else "dots above their line: the real spread exceeds Poisson sampling, and Fisher's test over-calls"
    )
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
    return betabinomial_figure(noise, clones, samples, patient=patient)
