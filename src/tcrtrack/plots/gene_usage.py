"""Gene-usage figures: per-patient V-usage heatmap, spectratype panels, cohort V-usage heatmap."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from tcrtrack.plots.patient import sample_labels
from tcrtrack.plots.style import COMPARTMENT_COLOURS, SEQUENTIAL_CMAP, message_axes, new_figure


def _heatmap(ax, matrix: np.ndarray, rows: list[str], columns: list[str], *, label: str) -> None:
    image = ax.imshow(matrix, aspect="auto", cmap=SEQUENTIAL_CMAP, vmin=0, interpolation="nearest")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=6.5)
    ax.figure.colorbar(image, ax=ax, label=label, shrink=0.8)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


def usage_heatmap(usage: pl.DataFrame, samples: pl.DataFrame, *, patient: str, top_n: int = 30) -> Figure:
    """V-gene usage of every sample of a patient (rows, ordered by compartment and day), clonotype- and
    template-weighted, for the ``top_n`` genes of highest mean clonotype share.

    Parameters
    ----------
    usage
        The patient's ``gene_usage.tsv`` (long: sample, segment, weight, gene, count, share).
    samples
        The patient's sample-sheet rows.
    """
    from tcrtrack.overlap import sample_order

    v = usage.filter(pl.col("segment") == "v")
    order = [s for s in sample_order(samples) if s in set(v["sample"])]
    fig, axes = new_figure(14.0, 0.32 * max(len(order), 3) + 3.2, ncols=2)
    if not order:
        message_axes(axes[0, 0], "no V-gene calls")
        fig.suptitle(f"{patient} · V-gene usage", ha="left", x=0.02)
        return fig
    top = (
        v.filter(pl.col("weight") == "clonotypes")
        .group_by("gene")
        .agg(pl.col("share").sum())
        .sort(["share", "gene"], descending=[True, False])
        .head(top_n)["gene"]
        .sort()
        .to_list()
    )
    labels = sample_labels(samples, order)
    for ax, weight in zip(axes[0], ("clonotypes", "templates"), strict=False):
        part = v.filter((pl.col("weight") == weight) & pl.col("gene").is_in(top))
        values = {(s, g): x for s, g, x in part.select("sample", "gene", "share").iter_rows()}
        matrix = np.array([[values.get((s, g), 0.0) for g in top] for s in order])
        _heatmap(ax, matrix, labels, top, label=f"share of {weight}")
        ax.set_title(
            f"weighted by {weight}"
            + (" (recruitment)" if weight == "clonotypes" else " (cells; dominated by large clones)"),
            fontsize=9,
        )
        compartment = dict(samples.select("sample", "compartment").iter_rows())
        for tick, name in zip(ax.get_yticklabels(), order, strict=False):
            tick.set_color(COMPARTMENT_COLOURS.get(compartment.get(name), "black"))
    fig.suptitle(
        f"{patient} · V-gene usage per sample (top {len(top)} genes by clonotype share)", ha="left", x=0.02, fontsize=11
    )
    return fig


def spectratype_panels(spectra: pl.DataFrame, samples: pl.DataFrame, *, patient: str) -> Figure:
    """CDR3 (junction) length distribution of every sample, clonotype-weighted bars; the flagged clones'
    distribution (all samples pooled) drawn over each panel as black dots."""
    from tcrtrack.overlap import sample_order

    order = [s for s in sample_order(samples) if s in set(spectra["sample"])]
    ncols = 4
    nrows = max(1, -(-len(order) // ncols))
    fig, axes = new_figure(3.2 * ncols, 2.3 * nrows + 1.2, nrows=nrows, ncols=ncols, sharex=True, sharey=True)
    flagged = spectra.filter(pl.col("sample") == "flagged_clones")
    labels = sample_labels(samples, order) if order else []
    compartment = dict(samples.select("sample", "compartment").iter_rows())
    for k, ax in enumerate(axes.flat):
        if k >= len(order):
            ax.set_visible(False)
            continue
        part = spectra.filter(pl.col("sample") == order[k])
        ax.bar(
            part["length"].to_numpy(),
            part["clonotype_share"].to_numpy(),
            width=0.85,
            color=COMPARTMENT_COLOURS.get(compartment.get(order[k]), "#777777"),
        )
        if flagged.height:
            ax.plot(flagged["length"].to_numpy(), flagged["clonotype_share"].to_numpy(), "o", color="black", ms=3)
        ax.set_title(labels[k], fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("junction length (aa)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of clonotypes")
    note = "black dots: the flagged clones" if flagged.height else "no flagged clones"
    fig.suptitle(
        f"{patient} · CDR3 spectratype (IMGT junction length, CDR3 + 2)\n{note}", ha="left", x=0.02, fontsize=11
    )
    return fig


def cohort_usage_heatmap(v_usage: pl.DataFrame, *, top_n: int = 30) -> Figure:
    """V-gene usage (clonotype-weighted), one row per patient and sample class (baseline blood, product,
    post-infusion blood, pre- and post-treatment tumour; replicates and days of a class averaged), for the
    ``top_n`` genes of highest mean share."""
    from tcrtrack.gene_usage_stage import SAMPLE_CLASSES

    part = v_usage.filter((pl.col("weight") == "clonotypes") & pl.col("sample_class").is_not_null())
    if part.height == 0:
        fig, axes = new_figure(14.0, 3.0)
        message_axes(axes[0, 0], "no V-gene calls")
        return fig
    n_samples = part.group_by("patient", "sample_class").agg(n=pl.col("sample").n_unique())
    means = (
        part.group_by("patient", "sample_class", "gene")
        .agg(pl.col("share").sum())
        .join(n_samples, on=["patient", "sample_class"])
        .with_columns(share=pl.col("share") / pl.col("n"))
    )
    top = (
        means.group_by("gene")
        .agg(pl.col("share").sum())
        .sort(["share", "gene"], descending=[True, False])
        .head(top_n)["gene"]
        .sort()
        .to_list()
    )
    rank = {c: i for i, c in enumerate(SAMPLE_CLASSES)}
    rows = sorted(set(means.select("patient", "sample_class").iter_rows()), key=lambda r: (r[0], rank.get(r[1], 99)))
    values = {(p, c, g): x for p, c, g, x in means.select("patient", "sample_class", "gene", "share").iter_rows()}
    matrix = np.array([[values.get((p, c, g), 0.0) for g in top] for p, c in rows])
    fig, axes = new_figure(14.0, 0.3 * len(rows) + 3.0)
    _heatmap(axes[0, 0], matrix, [f"{p} · {c}" for p, c in rows], top, label="share of clonotypes")
    fig.suptitle(
        f"Cohort · V-gene usage (top {len(top)} genes; clonotype-weighted, replicates averaged)",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
