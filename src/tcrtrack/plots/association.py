"""Forest figure of the association stage: each metric's effect between groups with its 95% interval."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from tcrtrack.plots.style import message_axes, new_figure

TEST_NAMES: dict[str, str] = {
    "mann_whitney_exact": "exact Mann–Whitney U",
    "mann_whitney_permutation": "exact permutation Mann–Whitney U",
    "kruskal_wallis": "Kruskal–Wallis",
    "fisher_exact": "Fisher's exact",
    "not_tested": "not tested",
}


def test_name(test: str | None) -> str:
    return TEST_NAMES.get(test or "not_tested", str(test))


def _scale(row: dict) -> float:
    """Effects are in each metric's units: a panel shows them divided by the largest |value| of the row."""
    values = [abs(v) for v in (row["effect"], row["ci_low"], row["ci_high"]) if v is not None and np.isfinite(v)]
    return max(values) if values and max(values) > 0 else 1.0


def association_forest(association: pl.DataFrame, *, meanings: Mapping[str, str] | None = None) -> Figure:
    """One panel per grouping column: per metric, the Hodges–Lehmann shift (other group − reference) with
    its bootstrap 95% interval, each row scaled to its largest absolute value (the label gives the
    unscaled numbers, the p- and q-values and the test); Kruskal–Wallis rows show epsilon² and Fisher rows
    the log odds ratio.

    Parameters
    ----------
    association
        ``results/cohort/association.tsv``.
    meanings
        Metric -> label.
    """
    meanings = meanings or {}
    groupings = association["grouping"].unique(maintain_order=True).to_list() if association.height else []
    tested = {g: association.filter((pl.col("grouping") == g) & pl.col("metric").is_not_null()) for g in groupings}
    n_rows = max([t.height for t in tested.values()] + [1])
    fig, axes = new_figure(10.5 * max(len(groupings), 1), 0.38 * n_rows + 2.2, ncols=max(len(groupings), 1))
    if not groupings:
        message_axes(axes[0, 0], "no grouping column (report.group_by, cohort.compare)")
    for ax, grouping in zip(axes[0], groupings, strict=False):
        rows = tested[grouping]
        if rows.height == 0:
            why = association.filter(pl.col("grouping") == grouping)["missing_patients"][0]
            message_axes(ax, f"{grouping}: not tested ({why})")
            continue
        ys = np.arange(rows.height)[::-1]
        labels = []
        for y, row in zip(ys, rows.iter_rows(named=True), strict=False):
            effect, low, high = row["effect"], row["ci_low"], row["ci_high"]
            if row["effect_type"] == "odds_ratio":
                effect, low, high = (np.log(v) if v is not None and v > 0 else None for v in (effect, low, high))
                row = {**row, "effect": effect, "ci_low": low, "ci_high": high}
            scale = _scale(row)
            colour = (
                "#D55E00"
                if row["q"] is not None and row["q"] < 0.1
                else ("#0072B2" if row["p"] is not None and row["p"] < 0.05 else "#555555")
            )
            if effect is not None and np.isfinite(effect):
                if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
                    ax.plot([low / scale, high / scale], [y, y], color=colour, lw=2)
                ax.plot(effect / scale, y, "o", color=colour, ms=6)
            p = "NA" if row["p"] is None else f"{row['p']:.2g}"
            q = "NA" if row["q"] is None else f"{row['q']:.2g}"
            eff = "NA" if row["effect"] is None else f"{row['effect']:.3g}"
            ci = (
                ""
                if row["ci_low"] is None or row["ci_high"] is None
                else f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
            )
            missing = f", {row['n_missing']} missing" if row["n_missing"] else ""
            labels.append(
                f"{meanings.get(row['metric'], row['metric'])}\n{eff}{ci}  p {p}, q {q}  "
                f"n {row['n_per_group']}{missing}  ({test_name(row['test'])})"
            )
        ax.set_yticks(ys, labels, fontsize=6.5)
        ax.axvline(0, color="#444444", lw=0.8, ls=":")
        ax.set_xlim(-1.15, 1.15)
        first = rows.row(0, named=True)
        groups = str(first["groups"]).split("|")
        ax.set_xlabel(
            f"effect / largest |value| of its row: {' − '.join(groups[::-1][:2]) if len(groups) == 2 else 'epsilon²'}"
            f"\nHodges–Lehmann shift (bootstrap 95% CI); Fisher: log odds ratio",
            fontsize=8,
        )
        ax.set_title(f"by {grouping} (reference {groups[0]}; BH over {first['n_tests']} tests)", fontsize=9)
    fig.suptitle(
        "Cohort · per-patient metrics between groups\norange: q < 0.1; blue: p < 0.05; "
        "few patients per group: read the intervals, not only the p-values",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig
