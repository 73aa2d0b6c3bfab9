"""Specificity-group network (rule ``specificity_cohort``): nodes are clones, coloured by patient and sized by
their largest post-treatment tumour frequency; lines join TCRdist neighbours (same V gene). A simple layout
without a graph library: one cell of a grid per group, its members on a circle."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tcrtrack.plots.style import GREY, colour_cycle, message_axes, new_figure

MAX_GROUPS = 30


def _sizes(freq: np.ndarray, top: float) -> np.ndarray:
    """Marker areas (points^2): 25 for a clone absent from the tumour, up to 400 at the largest frequency."""
    scaled = np.sqrt(np.clip(np.nan_to_num(freq, nan=0.0), 0, None) / top) if top > 0 else np.zeros_like(freq)
    return 25 + 375 * scaled


def specificity_network(
    grouped: pl.DataFrame,
    edges: pl.DataFrame,
    groups: pl.DataFrame,
    *,
    n_clones: int,
    n_patients: int,
    max_distance: int = 12,
) -> Figure:
    """The network of specificity groups.

    Parameters
    ----------
    grouped
        The clones that were grouped (``patient``, ``junction_aa``, ``tumor_max_post_frequency``,
        ``specificity_group``; null when ungrouped), in the row order the ``edges`` index.
    edges
        ``i``, ``j`` (row indices into ``grouped``) and ``distance``.
    groups
        One row per group (``specificity_group``, ``motif``, ``v_genes``, ``n_patients``).
    """
    if groups.height == 0:
        fig, axes = new_figure(7, 3.5)
        message_axes(
            axes[0, 0],
            f"No specificity group: among the {n_clones} flagged, blood-expanded and\n"
            f"top tumour clones of {n_patients} patient(s), no two share a V gene and lie\n"
            f"within TCRdist {max_distance} of each other.",
        )
        axes[0, 0].set_title("Specificity groups (TCRdist CDR3, same V gene)")
        return fig
    shown = groups.head(MAX_GROUPS)["specificity_group"].to_list()
    ncols = max(1, math.ceil(math.sqrt(len(shown) * 1.5)))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = new_figure(min(2.4 * ncols + 2.5, 18), min(2.4 * nrows + 1.2, 16))
    ax = axes[0, 0]
    patients = sorted(grouped["patient"].drop_nulls().unique().to_list())
    colours = dict(zip(patients, colour_cycle(len(patients)), strict=True))
    indexed = grouped.with_row_index("_i")
    freq = indexed["tumor_max_post_frequency"].cast(pl.Float64).fill_null(0.0).to_numpy()
    top = float(freq.max()) if freq.size else 0.0
    position: dict[int, tuple[float, float]] = {}
    info = {row["specificity_group"]: row for row in groups.iter_rows(named=True)}
    for k, name in enumerate(shown):
        cx, cy = (k % ncols) * 3.0, -(k // ncols) * 3.0
        members = indexed.filter(pl.col("specificity_group") == name)
        n = members.height
        radius = 0.0 if n == 1 else min(1.1, 0.35 + 0.08 * n)
        for m, row in enumerate(members.iter_rows(named=True)):
            angle = 2 * math.pi * m / n + math.pi / 2
            position[row["_i"]] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
        label = f"{name} · {info[name]['v_genes'].split(':')[0]}\n{info[name]['motif']}"
        ax.text(cx, cy + 1.35, label, ha="center", va="bottom", fontsize=7, family="monospace")
    for i, j in edges.select("i", "j").iter_rows():
        if i in position and j in position:
            (x0, y0), (x1, y1) = position[i], position[j]
            ax.plot([x0, x1], [y0, y1], color=GREY, linewidth=0.8, zorder=1)
    nodes = np.array(sorted(position))
    xy = np.array([position[i] for i in nodes])
    node_patients = indexed["patient"].to_list()
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        s=_sizes(freq[nodes], top),
        c=[colours[node_patients[i]] for i in nodes],
        edgecolors="black",
        linewidths=0.5,
        zorder=2,
    )
    ax.set_xlim(-1.6, (ncols - 1) * 3.0 + 1.6)
    ax.set_ylim(-(nrows - 1) * 3.0 - 1.6, 2.3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles = [
        Line2D(
            [], [], marker="o", linestyle="", markerfacecolor=colours[p], markeredgecolor="black", markersize=7, label=p
        )
        for p in patients
    ]
    if top > 0:
        for value in (top, top / 10):
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    linestyle="",
                    markerfacecolor="white",
                    markeredgecolor="black",
                    markersize=math.sqrt(float(_sizes(np.array([value]), top)[0])),
                    label=f"tumour {value:.2g}",
                )
            )
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            markeredgecolor="black",
            markersize=5,
            label="not in tumour",
        )
    )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize=7,
        title="patient / tumour frequency",
        title_fontsize=7,
    )
    more = f"; the {len(shown)} largest of {groups.height} shown" if groups.height > len(shown) else ""
    ax.set_title(
        f"Specificity groups: {groups.height} among {n_clones} clones of {n_patients} patient(s){more}\n"
        f"(flagged, blood-expanded, top tumour; TCRdist CDR3 ≤ {max_distance}, same V gene)",
        fontsize=9,
    )
    return fig
