"""Where the post-treatment tumour clones come from: stacked bars per biopsy (clone_origin stage)."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tcrtrack.plots.cohort import NO_GROUP, group_colours, patient_groups
from tcrtrack.plots.style import message_axes, new_figure

#: Colours of the four origin classes (Okabe–Ito), in class order.
ORIGIN_COLOURS: dict[str, str] = {
    "pre_tumor": "#0072B2",
    "baseline_blood": "#E69F00",
    "post_blood": "#CC79A7",
    "novel": "#BBBBBB",
}
ORIGIN_NAMES: dict[str, str] = {
    "pre_tumor": "in the pre-treatment biopsy",
    "baseline_blood": "new to tumour, in baseline blood",
    "post_blood": "new to both, in post-infusion blood",
    "novel": "seen nowhere else",
}


def clone_origin_figure(origin: pl.DataFrame, samples: pl.DataFrame, *, group_by: str | None = "response") -> Figure:
    """Per post-treatment biopsy (patients grouped by ``group_by``), the shares of its clones (left) and
    templates (right) in each origin class; the black tick is the class-1 share expected without
    replacement given the depths, the hatched part of a segment its flagged clones.

    Parameters
    ----------
    origin
        ``results/cohort/clone_origin.tsv`` (:data:`tcrtrack.clone_origin.ORIGIN_SCHEMA` rows of every patient).
    samples
        The sample sheet.
    """
    from tcrtrack.clone_origin import CLASSES

    groups, note = patient_groups(samples, group_by)
    colours = group_colours(groups)
    bars = origin.select("patient", "biopsy_day").unique().sort("patient", "biopsy_day")
    bars = bars.with_columns(group=pl.col("patient").replace_strict(groups, default=NO_GROUP)).sort(
        "group", "patient", "biopsy_day"
    )
    keys = list(bars.select("patient", "biopsy_day").iter_rows())
    width = max(8.0, 2.5 + 0.5 * len(keys) * 2)
    fig, axes = new_figure(width, 4.8, ncols=2, sharey=True)
    if not keys:
        for ax in axes[0]:
            message_axes(ax, "no post-treatment biopsy in the cohort")
        fig.suptitle("Cohort · origin of the post-treatment tumour clones", ha="left", x=0.02)
        return fig
    xs, x, previous = [], 0.0, None
    for patient, _ in keys:
        if previous is not None and groups.get(patient) != previous:
            x += 0.6
        xs.append(x)
        x += 1.0
        previous = groups.get(patient)
    rows = {(r["patient"], r["biopsy_day"], r["origin"]): r for r in origin.iter_rows(named=True)}
    for ax, (share, expected, flagged, title) in zip(
        axes[0],
        (
            ("clone_share", "expected_clone_share", "flagged_share", "share of the biopsy's clones"),
            ("template_share", "expected_template_share", "flagged_template_share", "share of the biopsy's templates"),
        ),
        strict=False,
    ):
        bottom = np.zeros(len(keys))
        for origin_class in CLASSES:
            heights = np.array([(rows.get((p, d, origin_class), {}).get(share) or 0.0) for p, d in keys])
            flag = np.array([(rows.get((p, d, origin_class), {}).get(flagged) or 0.0) for p, d in keys])
            ax.bar(
                xs,
                heights,
                bottom=bottom,
                width=0.8,
                color=ORIGIN_COLOURS[origin_class],
                edgecolor="white",
                linewidth=0.5,
            )
            ax.bar(
                xs, heights * flag, bottom=bottom, width=0.8, color="none", edgecolor="black", hatch="///", linewidth=0
            )
            if origin_class == "pre_tumor":
                exp = np.array([(rows.get((p, d, origin_class), {}).get(expected)) for p, d in keys], dtype=float)
                ax.scatter(xs, exp, marker="_", s=260, color="black", zorder=4, linewidths=2)
            bottom += heights
        labels = [f"{p}\nd{d}" for p, d in keys]
        ax.set_xticks(xs, labels, fontsize=7, rotation=90 if len(keys) > 16 else 0)
        for tick, (p, _) in zip(ax.get_xticklabels(), keys, strict=False):
            tick.set_color(colours.get(groups.get(p, NO_GROUP), "black"))
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=9)
    axes[0, 0].set_ylabel("share")
    handles = [Patch(color=ORIGIN_COLOURS[c], label=ORIGIN_NAMES[c]) for c in CLASSES]
    handles += [
        Patch(facecolor="white", edgecolor="black", hatch="///", label="flagged clones"),
        Line2D(
            [],
            [],
            ls="",
            marker="_",
            ms=14,
            mew=2,
            color="black",
            label="expected in pre-treatment biopsy\nwithout replacement (given depths)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=3,
        frameon=False,
        title=f"patient labels coloured by group ({note})",
    )
    fig.suptitle(
        "Cohort · where the post-treatment tumour clones come from\nclasses checked in order: "
        "pre-treatment biopsy, baseline blood, post-infusion blood (or product), nowhere else",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
