"""Rarefaction/extrapolation curves of one patient's samples (Hill numbers q = 0, 1, 2 and coverage)."""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tcrtrack.plots.patient import sample_labels
from tcrtrack.plots.style import colour_cycle, message_axes, new_figure

PANELS = ((0, "richness (q = 0)"), (1, "Shannon diversity exp(H) (q = 1)"), (2, "Simpson diversity 1/Σp² (q = 2)"))


def diversity_curves(curves: pl.DataFrame, samples: pl.DataFrame, *, patient: str) -> Figure:
    """Per sample: D0, D1, D2 and the sample coverage against the number of templates ``m`` (solid:
    interpolated, dashed: extrapolated to twice the sample's size, dot: the sample itself; ribbons: 95%
    bootstrap intervals).

    Parameters
    ----------
    curves
        The patient's ``diversity_curves.tsv``.
    samples
        The patient's sample-sheet rows.
    """
    from tcrtrack.overlap import sample_order

    order = [s for s in sample_order(samples) if s in set(curves["sample"])]
    fig, axes = new_figure(15.0, 4.4, ncols=4)
    if not order:
        for ax in axes[0]:
            message_axes(ax, "no sample with clonotypes")
        fig.suptitle(f"{patient} · rarefaction and extrapolation curves", ha="left", x=0.02)
        return fig
    colours = dict(zip(order, colour_cycle(len(order)), strict=False))
    labels = dict(zip(order, sample_labels(samples, order), strict=False))
    panels = [*((f"q{q}", title) for q, title in PANELS), ("coverage", "sample coverage")]
    for ax, (key, title) in zip(axes[0], panels, strict=False):
        q = 0 if key == "coverage" else int(key[1])
        for sample in order:
            part = curves.filter((pl.col("sample") == sample) & (pl.col("q") == q)).sort("m")
            est, low, high = (
                ("coverage", "coverage_ci_low", "coverage_ci_high")
                if key == "coverage"
                else ("estimate", "ci_low", "ci_high")
            )
            m = part["m"].to_numpy()
            ax.fill_between(
                m,
                part[low].fill_null(float("nan")).to_numpy(),
                part[high].fill_null(float("nan")).to_numpy(),
                color=colours[sample],
                alpha=0.15,
                lw=0,
            )
            for method, style in (("interpolated", "-"), ("extrapolated", "--")):
                seg = part.filter(pl.col("method").is_in([method, "observed"]))
                ax.plot(seg["m"].to_numpy(), seg[est].to_numpy(), style, color=colours[sample], lw=1.3)
            obs = part.filter(pl.col("method") == "observed")
            ax.plot(obs["m"].to_numpy(), obs[est].to_numpy(), "o", color=colours[sample], ms=4)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("templates sampled (m)")
    handles = [Line2D([], [], color=colours[s], lw=2, label=labels[s]) for s in order]
    handles += [
        Line2D([], [], color="#444444", ls="-", label="interpolated"),
        Line2D([], [], color="#444444", ls="--", label="extrapolated (to 2×)"),
        Line2D([], [], color="#444444", ls="", marker="o", label="observed sample"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), frameon=False)
    fig.suptitle(
        f"{patient} · diversity against sampling depth (Chao et al. 2014; ribbons: 95% bootstrap "
        "intervals)\ncompare samples at equal depth where their curves overlap, or at equal coverage (right panel)",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
