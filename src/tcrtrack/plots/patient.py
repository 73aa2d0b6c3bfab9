"""Per-patient figures: clone overlap heatmap and diversity over time."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tcrtrack.overlap import overlap_matrix, sample_order
from tcrtrack.plots.style import (
    COMPARTMENT_COLOURS,
    SEQUENTIAL_CMAP,
    compartment_name,
    days_text,
    message_axes,
    new_figure,
    sample_label,
)

DIVERSITY_METRICS: dict[str, str] = {
    "clonality": "clonality (1 − Pielou evenness)",
    "shannon_bits": "Shannon entropy (bits)",
}


def sample_labels(samples: pl.DataFrame, order: list[str]) -> list[str]:
    """Axis labels (``blood d0 r1``) of ``order``; replicates are numbered only where a timepoint has several."""
    n_reps = samples.group_by("compartment", "day").agg(n=pl.len())
    rows = samples.join(n_reps, on=["compartment", "day"]).select("sample", "compartment", "day", "replicate", "n")
    info = {r[0]: r[1:] for r in rows.iter_rows()}
    return [sample_label(c, d, r, n_replicates=n) for c, d, r, n in (info[s] for s in order)]


def overlap_heatmap(
    overlap: pl.DataFrame, samples: pl.DataFrame, *, patient: str, metric: str = "morisita_horn"
) -> Figure:
    """Heatmap of ``metric`` between every two samples of a patient, samples ordered by compartment and day.

    Parameters
    ----------
    overlap
        The patient's pairwise table (:func:`tcrtrack.overlap.patient_overlap`).
    samples
        The patient's sample-sheet rows.
    patient
        Patient id, for the title.
    metric
        Column of ``overlap`` to draw (``morisita_horn``, ``jaccard``, ``overlap_coefficient``).
    """
    import pandas as pd  # seaborn's boundary
    import seaborn as sns

    order = [s for s in sample_order(samples) if s in set(overlap["sample_a"]) | set(overlap["sample_b"])]
    n = len(order)
    side = max(4.5, 0.62 * n + 2.6)
    fig, axes = new_figure(side + 1.0, side)
    ax = axes[0, 0]
    if n < 2:
        message_axes(ax, "fewer than two samples: no overlap to show")
        fig.suptitle(f"{patient} · clone overlap between samples", ha="left", x=0.02)
        return fig
    labels = sample_labels(samples, order)
    matrix = pd.DataFrame(
        np.array(overlap_matrix(overlap, order, metric=metric), dtype=float), index=labels, columns=labels
    )
    names = {"morisita_horn": "Morisita–Horn", "jaccard": "Jaccard", "overlap_coefficient": "overlap coefficient"}
    sns.heatmap(
        matrix,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap=SEQUENTIAL_CMAP,
        square=True,
        annot=n <= 16,
        fmt=".2f",
        annot_kws={"fontsize": 7 if n > 10 else 8},
        linewidths=0.5,
        linecolor="white",
        cbar_kws={
            "label": f"{names.get(metric, metric)} overlap\n0 = no shared clones · 1 = same clone frequencies",
            "shrink": 0.75,
        },
    )
    compartments = dict(samples.select("sample", "compartment").iter_rows())
    sequence = [compartments[s] for s in order]
    for i in range(1, n):
        if sequence[i] != sequence[i - 1]:
            ax.axhline(i, color="white", lw=3)
            ax.axvline(i, color="white", lw=3)
    for tick, sample in zip(ax.get_yticklabels(), order, strict=False):
        tick.set_color(COMPARTMENT_COLOURS.get(compartments[sample], "black"))
    for tick, sample in zip(ax.get_xticklabels(), order, strict=False):
        tick.set_color(COMPARTMENT_COLOURS.get(compartments[sample], "black"))
    ax.tick_params(axis="x", rotation=45, length=0)
    ax.tick_params(axis="y", rotation=0, length=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.set_xlabel("")
    ax.set_ylabel("")
    parts = []
    for compartment in dict.fromkeys(sequence):
        days = samples.filter(pl.col("compartment") == compartment)["day"].unique().to_list()
        parts.append(f"{compartment_name(compartment)} day{'s' if len(days) > 1 else ''} {days_text(days)}")
    note = _replicate_note(overlap, samples, metric=metric)
    fig.suptitle(
        f"{patient} · clone overlap between samples ({names.get(metric, metric)})\n{' · '.join(parts)}{note}",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig


def _replicate_note(overlap: pl.DataFrame, samples: pl.DataFrame, *, metric: str) -> str:
    """A subtitle line with the overlap of technical replicates (same compartment and day), when there are any."""
    same = overlap.filter((pl.col("compartment_a") == pl.col("compartment_b")) & (pl.col("day_a") == pl.col("day_b")))
    if same.height == 0 or metric not in same.columns:
        return ""
    values = same[metric].drop_nulls()
    if values.len() == 0:
        return ""
    value = f"{values.mean():.2f}" if values.len() == 1 else f"{values.min():.2f}–{values.max():.2f}"
    return f"\ntechnical replicates: {value} (two draws of one unchanged repertoire)"


def diversity_frame(diversity: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
    """Diversity rows joined with the sheet's compartment, day and replicate."""
    meta = samples.select("sample", "compartment", "day", "replicate")
    return diversity.drop("compartment", "day", "replicate", strict=False).join(meta, on="sample", how="inner")


def rarefied_depths_text(rows: pl.DataFrame, *, unit: str = "") -> str:
    """``"12,000 (blood), 1,500 (tumour)"``: the rarefaction depth of each compartment of the rarefied rows
    (one number when every sample has the same); ``"the common depth"`` when there is none."""
    depths = (
        rows.filter(pl.col("depth").is_not_null())
        .group_by("compartment", maintain_order=True)
        .agg(pl.col("depth").unique().sort())
    )
    if depths.height == 0:
        return "the common depth"
    values = sorted({int(d) for ds in depths["depth"] for d in ds})
    if len(values) == 1:
        return f"{values[0]:,}{unit}"
    return (
        ", ".join(f"{'/'.join(f'{int(d):,}' for d in ds)} ({compartment_name(c)})" for c, ds in depths.iter_rows())
        + unit
    )


def diversity_over_time(diversity: pl.DataFrame, samples: pl.DataFrame, *, patient: str) -> Figure:
    """Clonality and Shannon entropy of one patient's samples by day, per compartment, at full depth
    (solid) and rarefied to the compartment's common depth (dashed, mean ± SD over the subsamplings).

    Parameters
    ----------
    diversity
        The patient's rows of the diversity tables (``depth_type`` ``full`` and ``rarefied``).
    samples
        The patient's sample-sheet rows.
    patient
        Patient id, for the title.
    """
    frame = diversity_frame(diversity, samples)
    fig, axes = new_figure(10.0, 4.2, ncols=len(DIVERSITY_METRICS), sharex=True)
    rarefied = frame.filter(pl.col("depth_type") == "rarefied")
    depth_text = rarefied_depths_text(rarefied)
    compartments = [c for c in COMPARTMENT_COLOURS if c in set(frame["compartment"])] + sorted(
        set(frame["compartment"]) - set(COMPARTMENT_COLOURS)
    )
    for ax, (metric, label) in zip(axes[0], DIVERSITY_METRICS.items(), strict=False):
        if frame.height == 0:
            message_axes(ax, "no diversity rows")
            continue
        for compartment in compartments:
            colour = COMPARTMENT_COLOURS.get(compartment, "black")
            for depth_type, style, marker in (("full", "-", "o"), ("rarefied", "--", "s")):
                rows = frame.filter(
                    (pl.col("compartment") == compartment)
                    & (pl.col("depth_type") == depth_type)
                    & pl.col(metric).is_not_null()
                ).sort("day", "replicate")
                if rows.height == 0:
                    continue
                spread = f"{metric}_subsampling_sd"
                sd = rows[spread].fill_null(0.0).to_numpy() if spread in rows.columns else None
                ax.errorbar(
                    rows["day"].to_numpy(),
                    rows[metric].to_numpy(),
                    yerr=sd,
                    fmt=marker,
                    color=colour,
                    mfc=colour if depth_type == "full" else "white",
                    ms=5,
                    capsize=2,
                    lw=0,
                    elinewidth=1,
                )
                means = rows.group_by("day").agg(pl.col(metric).mean()).sort("day")
                ax.plot(means["day"].to_numpy(), means[metric].to_numpy(), style, color=colour, lw=1.5)
        ax.axvline(0, color="#444444", lw=0.8, ls=":")
        ax.text(0, 1.0, " infusion", transform=ax.get_xaxis_transform(), fontsize=7, color="#444444", va="top")
        ax.set_xlabel("day relative to first infusion")
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0])
    handles = [
        Line2D([], [], color=COMPARTMENT_COLOURS.get(c, "black"), lw=2, label=compartment_name(c)) for c in compartments
    ]
    handles += [
        Line2D([], [], color="#555555", ls="-", marker="o", label="full depth (each sample's own)"),
        Line2D(
            [],
            [],
            color="#555555",
            ls="--",
            marker="s",
            mfc="white",
            label=f"rarefied to {depth_text} templates (mean ± SD)",
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False)
    fig.suptitle(
        f"{patient} · repertoire diversity over time\nhigher clonality = fewer clones dominate; "
        "compare samples on the rarefied (dashed) values",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
