"""Per-patient figure of the calls: the clone-tracking plot (the flagged and top expanded clones' frequencies
across the infused product, blood draws and biopsies)."""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tcrtrack.patient import timepoints
from tcrtrack.plots.expansion import pooled_frequency
from tcrtrack.plots.style import (
    COMPARTMENT_COLOURS,
    GREY,
    colour_cycle,
    compartment_name,
    log_limits,
    log_zero_axis,
    message_axes,
    new_figure,
    to_log_position,
)
from tcrtrack.schema import COMPARTMENTS

TRACKING_ORDER = ("product", "blood", "tumor")  # where the cells come from, then where they go


def tracked_clones(clones: pl.DataFrame, *, max_flagged: int = 10, n_top_expanded: int = 5) -> pl.DataFrame:
    """The clones of the tracking plot: the flagged ones (strongest blood evidence first, at most
    ``max_flagged``) and the ``n_top_expanded`` expanded-but-not-flagged clones with the highest
    post-infusion blood frequency. Adds ``kind`` (``flagged`` / ``expanded``)."""
    blood_freqs = [c for c in clones.columns if c.startswith("blood_d") and c.endswith("_freq")]
    peak = pl.max_horizontal(pl.col(c).fill_null(0.0) for c in blood_freqs) if blood_freqs else pl.lit(0.0)
    flagged = (
        clones.filter(pl.col("flagged"))
        .sort(["blood_qvalue", "blood_log2fc", "clone_id"], descending=[False, True, False], nulls_last=True)
        .head(max_flagged)
        .with_columns(kind=pl.lit("flagged"))
    )
    top = (
        clones.filter(pl.col("expanded_in_blood") & ~pl.col("flagged"))
        .with_columns(_peak=peak)
        .sort(["_peak", "clone_id"], descending=[True, False])
        .head(n_top_expanded)
        .drop("_peak")
        .with_columns(kind=pl.lit("expanded"))
    )
    return pl.concat([flagged, top], how="vertical_relaxed")


def tracking_frame(clones: pl.DataFrame, samples: pl.DataFrame, selected: pl.DataFrame) -> pl.DataFrame:
    """Long table ``clone_id, compartment, day, frequency`` of the selected clones at every timepoint
    (replicates pooled)."""
    rows = []
    for compartment in sorted(set(samples["compartment"]), key=lambda c: (c not in COMPARTMENTS, c)):
        for point in timepoints(samples, compartment):
            freq, _ = pooled_frequency(clones, point)
            values = clones.select("clone_id", freq.alias("frequency")).join(
                selected.select("clone_id"), on="clone_id", how="semi"
            )
            rows.append(values.with_columns(compartment=pl.lit(compartment), day=pl.lit(point.day)))
    if not rows:
        return pl.DataFrame(
            schema={"clone_id": pl.Utf8, "frequency": pl.Float64, "compartment": pl.Utf8, "day": pl.Int64}
        )
    return pl.concat(rows).with_columns(pl.col("day").cast(pl.Int64))


def clone_tracking(
    clones: pl.DataFrame, samples: pl.DataFrame, *, patient: str, max_flagged: int = 10, n_top_expanded: int = 5
) -> Figure:
    """Frequencies of the flagged clones (and the top expanded ones) across blood days and tumour
    biopsies: one panel per compartment on a shared time axis, zeros on a separate band.

    Parameters
    ----------
    clones
        The patient's wide clone table.
    samples
        The patient's sample-sheet rows.
    patient
        Patient id, for the title.
    max_flagged, n_top_expanded
        How many flagged clones (coloured) and expanded-only clones (grey) to draw.
    """
    selected = tracked_clones(clones, max_flagged=max_flagged, n_top_expanded=n_top_expanded)
    compartments = sorted(
        set(samples["compartment"]), key=lambda c: (TRACKING_ORDER.index(c) if c in TRACKING_ORDER else 99, c)
    )
    where = (
        " and ".join([", ".join(compartment_name(c) for c in compartments[:-1]), compartment_name(compartments[-1])])
        if len(compartments) > 1
        else compartment_name(compartments[0])
    )
    fig, axes = new_figure(9.5, 2.9 * len(compartments) + 1.2, nrows=len(compartments), sharex=True)
    n_flagged_total = int(clones["flagged"].sum())
    if selected.height == 0:
        for ax in axes.flat:
            message_axes(ax, "no flagged or expanded clones")
        fig.suptitle(f"{patient} · flagged clones across {where}", ha="left", x=0.02)
        return fig
    frame = tracking_frame(clones, samples, selected)
    low, high = log_limits(frame["frequency"].to_numpy())
    high = min(high, 0)
    colours = dict(
        zip(
            selected.filter(pl.col("kind") == "flagged")["clone_id"],
            colour_cycle(int((selected["kind"] == "flagged").sum())),
            strict=False,
        )
    )
    days = frame["day"].unique().sort().to_list()
    span = (max(days) - min(days)) or 1
    for ax, compartment in zip(axes[:, 0], compartments, strict=False):
        zero_y = log_zero_axis(ax, axis="y", low=low, high=high, label="clone frequency")
        part = frame.filter(pl.col("compartment") == compartment)
        for row in selected.iter_rows(named=True):
            line = part.filter(pl.col("clone_id") == row["clone_id"]).sort("day")
            y = to_log_position(line["frequency"].to_numpy(), zero_at=zero_y)
            if row["kind"] == "flagged":
                ax.plot(line["day"].to_numpy(), y, "-o", color=colours[row["clone_id"]], lw=1.8, ms=5, zorder=3)
            else:
                ax.plot(line["day"].to_numpy(), y, "--o", color=GREY, lw=1.0, ms=3, zorder=2, alpha=0.9)
        ax.axvspan(min(days) - 0.05 * span, 0, color="#F6F6F6", zorder=0, lw=0)
        ax.axvline(0, color="#444444", lw=0.8, ls=":")
        ax.text(0, 1.0, " infusion (day 0)", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="#444444")
        point_days = sorted(set(part["day"]))
        ax.set_title(
            f"{compartment_name(compartment)} · day{'s' if len(point_days) > 1 else ''} "
            f"{', '.join(str(d).replace('-', '−') for d in point_days)}",
            color=COMPARTMENT_COLOURS.get(compartment, "black"),
            fontweight="bold",
        )
        ax.set_xlim(min(days) - 0.05 * span, max(days) + 0.05 * span)
        ax.set_xticks(days)
    axes[-1, 0].set_xlabel("day relative to first infusion (pre-treatment shaded)")
    handles = []
    for row in selected.iter_rows(named=True):
        tag = " · new in blood" if row["new_in_blood"] else ""
        if row["kind"] == "flagged":
            handles.append(
                Line2D(
                    [],
                    [],
                    color=colours[row["clone_id"]],
                    marker="o",
                    lw=1.8,
                    label=f"{row['junction_aa']} {row['v_gene']}{tag}",
                )
            )
    n_expanded_only = int((selected["kind"] == "expanded").sum())
    if n_expanded_only:
        handles.append(
            Line2D([], [], color=GREY, ls="--", marker="o", ms=3, label=f"top {n_expanded_only} expanded, not flagged")
        )
    shown = int((selected["kind"] == "flagged").sum())
    title = (
        f"flagged clones ({shown} of {n_flagged_total})"
        if n_flagged_total > shown
        else f"flagged clones ({n_flagged_total})"
    )
    fig.legend(handles=handles, loc="outside lower center", frameon=False, title=title, ncols=2)
    fig.suptitle(
        f"{patient} · flagged clones across {where}\nfrequency at each sample "
        "(replicates pooled); grey band = not detected",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
