"""Per-patient figure of the calls: the expansion scatter (the clone-tracking plot is in
:mod:`tcrtrack.plots.tracking`)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tcrtrack.patient import CallSettings, Timepoint, reference_and_later, timepoints
from tcrtrack.plots.style import (
    LIGHT_GREY,
    OKABE_ITO,
    day_label,
    log_limits,
    log_zero_axis,
    message_axes,
    new_figure,
    to_log_position,
)

CATEGORIES: dict[str, dict[str, object]] = {
    "other": {"color": LIGHT_GREY, "s": 6, "alpha": 0.5, "zorder": 1, "label": "not expanded"},
    "expanded": {
        "color": OKABE_ITO["sky_blue"],
        "s": 16,
        "alpha": 0.9,
        "zorder": 2,
        "label": "expanded at this day, present at baseline",
    },
    "expanded_new": {
        "color": OKABE_ITO["blue"],
        "s": 16,
        "alpha": 0.9,
        "zorder": 3,
        "label": "expanded at this day, new in blood",
    },
    "flagged": {
        "color": OKABE_ITO["vermillion"],
        "s": 42,
        "alpha": 1.0,
        "zorder": 4,
        "label": "flagged: expanded in blood and accumulating in tumour",
        "edgecolor": "black",
        "linewidths": 0.6,
    },
}
MAX_LABELS = 10
MAX_POINTS = 20_000  # beyond this many unremarkable clones, draw their density (hexagonal bins)
# light grey (one clone: still visible) to near black (many), so single large clones do not vanish
DENSITY_CMAP = LinearSegmentedColormap.from_list("clone_density", [LIGHT_GREY, "#1A1A1A"])
LABEL_GAP = 0.22  # decades between two labels' baselines (6.5 pt text on ~0.5 inch per decade)


def pooled_frequency(clones: pl.DataFrame, point: Timepoint) -> tuple[pl.Expr, int]:
    """Frequency of every clone at ``point`` with technical replicates pooled
    (``sum of counts / sum of depths``), and the pooled depth."""
    counts = pl.sum_horizontal(pl.col(f"count_{s}") for s in point.samples)
    depth = int(clones.select(counts.sum()).item())
    return counts / max(depth, 1), depth


@dataclass(frozen=True)
class ScatterPanel:
    """One post-infusion blood day against baseline."""

    day: int
    data: pl.DataFrame  # baseline, later, category, junction_aa, v_gene
    depth_baseline: int
    depth_later: int
    n_expanded: int
    n_expanded_new: int
    n_flagged_expanded: int


def scatter_panels(
    clones: pl.DataFrame, samples: pl.DataFrame, *, settings: CallSettings
) -> tuple[Timepoint | None, list[ScatterPanel]]:
    """The data of the expansion scatter: one panel per post-infusion blood day, clones seen at baseline
    or that day, with their category (flagged > expanded & new > expanded > other)."""
    baseline, later = reference_and_later(timepoints(samples, "blood"), day=settings.baseline_day)
    if baseline is None:
        return None, []
    base_freq, depth_a = pooled_frequency(clones, baseline)
    panels = []
    for point in later:
        freq, depth_b = pooled_frequency(clones, point)
        significant = (
            pl.col(f"{point.label}_significant").fill_null(False)
            if f"{point.label}_significant" in clones.columns
            else pl.lit(False)
        )
        new = pl.col("new_in_blood").fill_null(False)
        category = (
            pl.when(pl.col("flagged"))
            .then(pl.lit("flagged"))
            .when(significant & new)
            .then(pl.lit("expanded_new"))
            .when(significant)
            .then(pl.lit("expanded"))
            .otherwise(pl.lit("other"))
        )
        data = clones.select(
            base_freq.alias("baseline"),
            freq.alias("later"),
            category.alias("category"),
            significant.alias("significant"),
            new.alias("new"),
            "junction_aa",
            "v_gene",
        )
        data = data.filter((pl.col("baseline") > 0) | (pl.col("later") > 0))
        expanded = data.filter(pl.col("significant"))
        panels.append(
            ScatterPanel(
                day=point.day,
                data=data,
                depth_baseline=depth_a,
                depth_later=depth_b,
                n_expanded=expanded.height,
                n_expanded_new=int(expanded["new"].sum()),
                n_flagged_expanded=int((expanded["category"] == "flagged").sum()),
            )
        )
    return baseline, panels


def fold_change_bound(
    baseline: np.ndarray, *, min_log2fc: float, pseudocount: float, depth_baseline: int, depth_later: int
) -> np.ndarray:
    """The later frequency at which ``log2fc`` equals ``min_log2fc``, as a function of the baseline frequency.

    ``log2fc = log2(((b + c)/N_b) / ((a + c)/N_a)) >= m``  <=>  ``f_b >= 2^m (f_a + c/N_a) - c/N_b``,
    with ``f = count / depth`` and pseudocount ``c`` (the definition in :mod:`tcrtrack.expansion`).
    """
    c = pseudocount
    return 2.0**min_log2fc * (np.asarray(baseline, float) + c / depth_baseline) - c / depth_later


def expansion_scatter(
    clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str, settings: CallSettings = CallSettings()
) -> Figure:
    """Baseline vs each post-infusion blood frequency (log-log, zeros on a separate band), with the
    expanded, new and flagged clones highlighted, the diagonal and the fold-change bound.

    Parameters
    ----------
    clones
        The patient's wide clone table (``results/patients/{patient}/clones.parquet``).
    samples
        The patient's sample-sheet rows.
    patient
        Patient id, for the title.
    settings
        The call settings (baseline day, ``min_log2fc``, pseudocount, ``new_max_frequency``).
    """
    baseline, panels = scatter_panels(clones, samples, settings=settings)
    ncols = max(1, min(len(panels), 3))
    nrows = max(1, -(-len(panels) // 3))
    fig, axes = new_figure(4.3 * ncols + 0.4, 4.5 * nrows + 1.3, nrows=nrows, ncols=ncols, sharex=True, sharey=True)
    if not panels:
        message_axes(axes[0, 0], "no baseline and post-infusion blood samples: expansion not tested")
        fig.suptitle(f"{patient} · blood clone expansion after infusion", ha="left", x=0.02)
        return fig
    values = np.concatenate(
        [np.concatenate([p.data["baseline"].to_numpy(), p.data["later"].to_numpy()]) for p in panels]
    )
    low, high = log_limits(values)
    high = min(high, 0)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        zero_x = log_zero_axis(
            ax, axis="x", low=low, high=high, label=f"baseline frequency ({day_label(baseline.day)})"
        )
        zero_y = log_zero_axis(ax, axis="y", low=low, high=high, label="frequency after infusion")
        for name, style in CATEGORIES.items():
            rows = panel.data.filter(pl.col("category") == name)
            if rows.height == 0:
                continue
            kwargs = {k: v for k, v in style.items() if k != "label"}
            x, y = _positions(rows, zero_x=zero_x, zero_y=zero_y)
            if name == "other" and rows.height > MAX_POINTS:  # density instead of a saturated cloud
                ax.hexbin(
                    x,
                    y,
                    gridsize=90,
                    bins="log",
                    cmap=DENSITY_CMAP,
                    mincnt=1,
                    linewidths=0,
                    zorder=1,
                    extent=(zero_x - 0.45, high, zero_y - 0.45, high),
                    rasterized=True,
                )
            else:
                ax.scatter(x, y, rasterized=True, **kwargs)
        grid = np.linspace(low, high, 400)
        ax.plot(grid, grid, color="#555555", lw=0.9, ls="--", zorder=0.5)
        bound = fold_change_bound(
            10.0**grid,
            min_log2fc=settings.min_log2fc,
            pseudocount=settings.pseudocount,
            depth_baseline=panel.depth_baseline,
            depth_later=panel.depth_later,
        )
        at_zero = fold_change_bound(
            np.zeros(1),
            min_log2fc=settings.min_log2fc,
            pseudocount=settings.pseudocount,
            depth_baseline=panel.depth_baseline,
            depth_later=panel.depth_later,
        )
        ok = bound >= 10.0**low
        ax.plot(grid[ok], np.log10(bound[ok]), color="black", lw=1.1, ls=":", zorder=0.6)
        if at_zero[0] >= 10.0**low:
            ax.plot([zero_x - 0.4, zero_x + 0.4], [np.log10(at_zero[0])] * 2, color="black", lw=1.1, ls=":")
        if settings.min_count > 0:
            ax.axhline(
                np.log10(settings.min_count / panel.depth_later), color=OKABE_ITO["green"], lw=0.9, ls="-.", zorder=0.6
            )
        _label_flagged(ax, panel, zero_x=zero_x, zero_y=zero_y)
        ax.set_title(
            f"{day_label(panel.day)} vs baseline ({day_label(baseline.day)})\n"
            f"{panel.n_expanded} expanded ({panel.n_expanded_new} new) · "
            f"{panel.n_flagged_expanded} of them flagged",
            fontsize=9,
        )
        for axis_ax in (ax.xaxis, ax.yaxis):
            axis_ax.label.set_fontsize(8.5)
    dense = any(p.data.filter(pl.col("category") == "other").height > MAX_POINTS for p in panels)
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="h" if name == "other" and dense else "o",
            markersize=7 if name == "flagged" else 5,
            markerfacecolor="#777777" if name == "other" and dense else style["color"],
            markeredgecolor=style.get("edgecolor", "#777777" if name == "other" and dense else style["color"]),
            label=f"{style['label']} (shade = number of clones)" if name == "other" and dense else style["label"],
        )
        for name, style in CATEGORIES.items()
    ]
    handles += [
        Line2D([], [], color="#555555", ls="--", label="no change (same frequency)"),
        Line2D(
            [],
            [],
            color="black",
            ls=":",
            label=f"fold-change bound: log2 FC = {settings.min_log2fc:g} (pseudocount {settings.pseudocount:g})",
        ),
        Line2D(
            [],
            [],
            color=OKABE_ITO["green"],
            ls="-.",
            label=f"minimum count after infusion ({settings.min_count} templates)",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    reps = f", {len(baseline.samples)} replicates pooled" if len(baseline.samples) > 1 else ""
    fig.suptitle(
        f"{patient} · blood clone expansion after infusion\nbaseline: blood {day_label(baseline.day)}"
        f"{reps} · expanded = FDR < {settings.fdr:g}, log2 FC ≥ {settings.min_log2fc:g}, "
        f"≥ {settings.min_count} templates · grey band = not detected",
        ha="left",
        x=0.02,
        fontsize=10.5,
    )
    return fig


def _jitter(names: pl.Series) -> np.ndarray:
    """A stable offset in [-0.3, 0.3] decades per clone (CRC-32 of its CDR3 and V gene): the same clone sits
    at the same place in every panel and every run."""
    return np.array([zlib.crc32(str(n).encode()) / 2**32 * 0.6 - 0.3 for n in names], dtype=float)


def _positions(rows: pl.DataFrame, *, zero_x: float, zero_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Plot positions of clones: log10 frequency, zeros spread across the zero band (so that their
    number is visible) by a stable per-clone offset."""
    x = to_log_position(rows["baseline"].to_numpy(), zero_at=zero_x)
    y = to_log_position(rows["later"].to_numpy(), zero_at=zero_y)
    key = rows.select(pl.concat_str("junction_aa", "v_gene", separator="|").fill_null("")).to_series()
    offset = _jitter(key)
    x = np.where(rows["baseline"].to_numpy() > 0, x, x + offset)
    y = np.where(rows["later"].to_numpy() > 0, y, y + offset)
    return x, y


def _label_flagged(ax, panel: ScatterPanel, *, zero_x: float, zero_y: float) -> None:
    """Name the flagged clones (CDR3) next to their points, moving labels down until they do not collide."""
    flagged = panel.data.filter(pl.col("category") == "flagged").sort("later", "junction_aa", descending=True)
    flagged = flagged.head(MAX_LABELS)
    xs, ys = _positions(flagged, zero_x=zero_x, zero_y=zero_y)
    placed: list[tuple[float, float, float]] = []  # (x start, x end, y) of labels, in decades
    in_band = flagged["baseline"].to_numpy() <= 0
    for x, y, aa, zero in zip(xs, ys, flagged["junction_aa"], in_band, strict=False):
        start = zero_x + 0.65 if zero else x + 0.22  # labels of undetected-at-baseline clones form a column
        end = start + 0.085 * len(aa)
        ty = y
        while any(abs(ty - py) < LABEL_GAP and start < pe and ps < end for ps, pe, py in placed):
            ty -= LABEL_GAP
        placed.append((start, end, ty))
        ax.annotate(
            aa,
            (x, y),
            xytext=(start, ty),
            fontsize=6.5,
            va="center",
            color="#222222",
            arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.5, "shrinkA": 0, "shrinkB": 3},
            zorder=6,
        )
