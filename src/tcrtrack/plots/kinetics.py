"""Figures of clone kinetics and product persistence (matplotlib, the house style of
:mod:`tcrtrack.plots.style`: colour-blind-safe Okabe–Ito colours; write with
:func:`tcrtrack.plots.style.save_figure`, PNG + PDF).

* :func:`persistence_curves`: the product in blood over time, one patient or the cohort.
* :func:`kinetics_panel`: one patient's flagged, expanded and top product clones over time with their
  fitted decay, and the half-lives by clone group.
* :func:`cohort_kinetics_figure`: half-lives and detection at the last blood day, every patient.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, ScalarFormatter

from tcrtrack.plots.style import (
    GREY,
    OKABE_ITO,
    colour_cycle,
    log_limits,
    log_zero_axis,
    message_axes,
    new_figure,
    to_log_position,
)

#: Clone groups of :func:`tcrtrack.kinetics.clone_kinetics`: column, label, colour. A clone is drawn in
#: the first group it belongs to (product clones are new in blood, so most are also expanded).
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("flagged", "flagged", OKABE_ITO["vermillion"]),
    ("product_top_n", "top product", OKABE_ITO["green"]),
    ("expanded_in_blood", "other expanded", OKABE_ITO["blue"]),
)


def _group_of(kinetics: pl.DataFrame) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.Utf8)
    for column, label, _ in reversed(GROUPS):
        expr = pl.when(pl.col(column)).then(pl.lit(label)).otherwise(expr)
    return expr


def _log_days_axis(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("half-life after the peak (days)")


def _day_axis(ax, days) -> None:
    ax.set_xlabel("days after infusion")
    ax.set_xticks(sorted(set(days)))


def persistence_curves(persistence: pl.DataFrame, *, title: str | None = None) -> Figure:
    """The infused product in blood after infusion, one line per patient.

    Panels: the product clones' share of blood ``blood_share`` (log scale); the share of product clones
    detected (solid) and of its top-N (dashed), with the share expected from depth alone
    (``expected_detected / n_product_clones``, hollow markers, dotted); and ``observed_over_expected``
    (1 = every clone persists in proportion).

    Parameters
    ----------
    persistence
        :func:`tcrtrack.kinetics.product_persistence` rows of one or more patients.
    title
        Figure title (default: ``product persistence``).
    """
    fig, axes = new_figure(11, 3.6, ncols=3)
    fig.suptitle(title or "product persistence in blood")
    if persistence.height == 0:
        for ax in axes.flat:
            message_axes(ax, "no product sample or no post-infusion blood sample")
        return fig
    patients = persistence["patient"].fill_null("patient").unique(maintain_order=True).to_list()
    colours = dict(
        zip(patients, [OKABE_ITO["green"]] if len(patients) == 1 else colour_cycle(len(patients)), strict=True)
    )
    share, detect, ratio = axes[0]
    low, high = log_limits(persistence["blood_share"].to_numpy())
    zero = log_zero_axis(share, axis="y", low=low, high=high, label="share of blood (product clones)")
    for patient, rows in persistence.with_columns(pl.col("patient").fill_null("patient")).group_by(
        "patient", maintain_order=True
    ):
        rows = rows.sort("day")
        c, days = colours[patient[0]], rows["day"].to_numpy()
        share.plot(days, to_log_position(rows["blood_share"].to_numpy(), zero_at=zero), "o-", color=c, lw=1.2, ms=4)
        detect.plot(days, rows["share_detected"], "o-", color=c, lw=1.2, ms=4)
        detect.plot(days, rows["top_n_share_detected"], "s--", color=c, lw=1.0, ms=3.5)
        detect.plot(days, rows["expected_detected"] / rows["n_product_clones"], "o:", color=c, mfc="white", ms=4)
        ratio.plot(days, rows["observed_over_expected"], "o-", color=c, lw=1.2, ms=4)
    for ax in axes.flat:
        _day_axis(ax, persistence["day"].to_list())
    detect.set_ylim(0, 1.05)
    detect.set_ylabel("share of product clones detected")
    ratio.axhline(1.0, color=GREY, lw=0.8, ls="--", zorder=0)
    ratio.set_ylim(0, max(1.5, float(persistence["observed_over_expected"].max() or 0) * 1.1))
    ratio.set_ylabel("observed / expected detected")
    handles = [
        Line2D([], [], color="black", marker="o", label="all product clones"),
        Line2D([], [], color="black", marker="s", ls="--", label="top-N product clones"),
        Line2D([], [], color="black", marker="o", mfc="white", ls=":", label="expected from depth"),
    ]
    if len(patients) > 1:
        handles += [Line2D([], [], color=colours[p], marker="o", label=p) for p in patients]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), frameon=False)
    return fig


def kinetics_panel(kinetics: pl.DataFrame, *, patient: str, max_clones: int = 8) -> Figure:
    """One patient's clone kinetics: blood frequency over time of the largest ``max_clones`` (by peak
    frequency) flagged, expanded and top product clones, one panel per group, with the fitted decay
    (dashed, from the peak to ``fit_last_day``); last panel: half-lives by group (median bar).

    Parameters
    ----------
    kinetics
        :func:`tcrtrack.kinetics.clone_kinetics` of the patient.
    patient
        Patient id (title).
    max_clones
        Clones drawn per group.
    """
    fig, axes = new_figure(13, 3.6, ncols=len(GROUPS) + 1)
    fig.suptitle(f"{patient}: clone kinetics in blood")
    day_cols = [c for c in kinetics.columns if c.startswith("freq_blood_d")]
    days = np.array([int(c.removeprefix("freq_blood_d")) for c in day_cols])
    freqs = kinetics.select(day_cols).to_numpy().astype(float) if day_cols else np.zeros((kinetics.height, 0))
    low, high = log_limits(freqs[freqs > 0] if freqs.size else [])
    table = kinetics.with_row_index("_row").with_columns(group=_group_of(kinetics))
    for ax, (_, label, _) in zip(axes[0], GROUPS, strict=False):
        rows = table.filter(pl.col("group") == label).sort("peak_frequency", descending=True, nulls_last=True)
        if rows.height == 0 or not day_cols:
            message_axes(ax, f"no {label} clones")
            continue
        zero = log_zero_axis(ax, axis="y", low=low, high=high, label="blood frequency")
        shown = rows.head(max_clones)
        for colour, row in zip(colour_cycle(shown.height), shown.iter_rows(named=True), strict=True):
            ax.plot(days, to_log_position(freqs[row["_row"]], zero_at=zero), "o-", color=colour, lw=1, ms=3)
            if row["half_life_days"] is not None:
                t = np.linspace(row["peak_day"], row["fit_last_day"], 20)
                fit = row["fitted_peak_frequency"] * 2.0 ** (-(t - row["peak_day"]) / row["half_life_days"])
                ax.plot(t, np.log10(fit), "--", color=colour, lw=1.6, alpha=0.8)
        ax.set_title(f"{label} ({shown.height} of {rows.height})")
        _day_axis(ax, days.tolist())
    ax = axes[0, -1]
    half = table.filter(pl.col("half_life_days").is_not_null())
    if half.height == 0:
        message_axes(ax, "no half-life: fewer than 3 detected post-peak points for every clone")
        return fig
    rng = np.random.default_rng(0)  # fixed jitter: same data, same figure
    labels = []
    for i, (_, label, colour) in enumerate(GROUPS):
        values = half.filter(pl.col("group") == label)["half_life_days"].to_numpy()
        n_all = table.filter(pl.col("group") == label).height
        labels.append(f"{label.replace(' ', chr(10))}\n{values.size} of {n_all}")
        if values.size:
            ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=14, color=colour, alpha=0.8)
            ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black", lw=1.5)
    ax.set_xticks(range(len(GROUPS)), labels)
    _log_days_axis(ax)
    ax.set_title("half-lives (estimable of followed)")
    fig.legend(
        handles=[
            Line2D([], [], color="black", marker="o", label="observed (replicates pooled)"),
            Line2D([], [], color="black", ls="--", label="least-squares decay fit"),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    return fig


def cohort_kinetics_figure(kinetics: pl.DataFrame, summary: pl.DataFrame) -> Figure:
    """Every patient: half-lives of the flagged, top product and other expanded clones (points, median
    bar), and the share of each group still detected at the patient's last blood day (groups exclusive,
    in that order, so the bars can differ from the overlapping groups of the summary table).

    Parameters
    ----------
    kinetics
        :func:`tcrtrack.kinetics.cohort_kinetics`.
    summary
        :func:`tcrtrack.kinetics.kinetics_summary` (its patients and their order).
    """
    fig, axes = new_figure(11, 3.8, ncols=2)
    left, right = axes[0]
    fig.suptitle("clone persistence in blood, every patient")
    patients = summary["patient"].to_list()
    if not patients:
        for ax in axes.flat:
            message_axes(ax, "no patients")
        return fig
    grouped = kinetics.with_columns(group=_group_of(kinetics))
    table = grouped.filter(pl.col("half_life_days").is_not_null())
    rng = np.random.default_rng(0)
    width = 0.8 / len(GROUPS)
    for g, (_, label, colour) in enumerate(GROUPS):
        offset = (g - (len(GROUPS) - 1) / 2) * width
        for i, patient in enumerate(patients):
            values = table.filter((pl.col("patient") == patient) & (pl.col("group") == label))["half_life_days"]
            if values.len():
                left.scatter(
                    i + offset + rng.uniform(-width / 4, width / 4, values.len()), values, s=10, color=colour, alpha=0.7
                )
                left.hlines(values.median(), i + offset - width / 2, i + offset + width / 2, color="black", lw=1.2)
        shares = grouped.filter(pl.col("group") == label).group_by("patient").agg(pl.col("detected_at_last_day").mean())
        share = dict(shares.iter_rows())
        x = [i + offset for i, p in enumerate(patients) if p in share]
        right.bar(x, [share[p] for p in patients if p in share], width=width, color=colour, label=label)
    for ax in (left, right):
        ax.set_xticks(range(len(patients)), patients, rotation=45 if len(patients) > 8 else 0)
    _log_days_axis(left)
    if table.height == 0:
        left.text(0.5, 0.5, "no estimable half-life", transform=left.transAxes, ha="center", color="#555555")
    right.set_ylim(0, 1.05)
    right.set_ylabel("share detected at the last blood day")
    fig.legend(
        handles=[Line2D([], [], color=c, marker="o", ls="", label=lab) for _, lab, c in GROUPS],
        loc="outside lower center",
        ncols=len(GROUPS),
        frameon=False,
    )
    return fig
