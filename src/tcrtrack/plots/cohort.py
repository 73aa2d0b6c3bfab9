"""Cohort figures: diversity trajectories, flagged clones by group, and an overlap summary."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tcrtrack.plots.patient import DIVERSITY_METRICS, rarefied_depths_text
from tcrtrack.plots.style import COMPARTMENT_COLOURS, compartment_name, message_axes, new_figure
from tcrtrack.schema import COMPARTMENTS

NO_GROUP = "all patients"
# Group colours: the colour-blind palette of seaborn (Waskom 2021, JOSS 6:3021), first blue and orange.
GROUP_COLOURS: tuple[str, ...] = (
    "#0173B2",
    "#DE8F05",
    "#029E73",
    "#CC78BC",
    "#CA9161",
    "#56B4E9",
    "#D55E00",
    "#949494",
    "#ECE133",
    "#FBAFE4",
)
MAX_PATIENT_LABELS = 12


def patient_groups(samples: pl.DataFrame, group_by: str | None) -> tuple[dict[str, str], str]:
    """Patient -> group (the first non-empty value of column ``group_by`` among the patient's rows), and a
    note for the title. Without the column (or ``group_by`` null) every patient is in one group."""
    patients = samples["patient"].unique(maintain_order=True).to_list()
    if not group_by:
        return {p: NO_GROUP for p in patients}, "no grouping (report.group_by is null)"
    if group_by not in samples.columns:
        return {p: NO_GROUP for p in patients}, f"no grouping: the sheet has no column '{group_by}'"
    first = samples.group_by("patient", maintain_order=True).agg(pl.col(group_by).cast(pl.Utf8).drop_nulls().first())
    groups = {p: (g if g not in (None, "") else "unknown") for p, g in first.iter_rows()}
    return groups, f"grouped by {group_by}"


def group_colours(groups: dict[str, str]) -> dict[str, str]:
    names = sorted(set(groups.values()))
    return {name: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, name in enumerate(names)}


def _group_legend(fig: Figure, colours: dict[str, str], *, title: str, extra: list | None = None) -> None:
    handles = [Patch(color=c, label=g) for g, c in colours.items()] + (extra or [])
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False, title=title)


def _ordered_compartments(values) -> list[str]:
    present = set(values)
    return [c for c in COMPARTMENTS if c in present] + sorted(present - set(COMPARTMENTS))


def diversity_trajectories(
    diversity: pl.DataFrame, samples: pl.DataFrame, *, group_by: str | None = "response"
) -> Figure:
    """Clonality and Shannon entropy over time of every patient (rarefied to the compartment's common depth, replicates
    averaged), one panel per metric and compartment, lines coloured by group.

    Parameters
    ----------
    diversity
        ``results/cohort/diversity.tsv``.
    samples
        The sample sheet.
    group_by
        Sheet column whose per-patient value colours the lines.
    """
    groups, note = patient_groups(samples, group_by)
    colours = group_colours(groups)
    meta = samples.select("sample", "compartment", "day")
    rows = (
        diversity.filter(pl.col("depth_type") == "rarefied")
        .drop("compartment", "day", strict=False)
        .join(meta, on="sample", how="inner")
    )
    compartments = _ordered_compartments(rows["compartment"]) or ["blood"]
    metrics = list(DIVERSITY_METRICS)
    fig, axes = new_figure(
        4.2 * len(compartments) + 0.6,
        3.3 * len(metrics) + 1.4,
        nrows=len(metrics),
        ncols=len(compartments),
        sharex=True,
        sharey="row",
    )
    label_ends = len(groups) <= MAX_PATIENT_LABELS
    for i, metric in enumerate(metrics):
        for j, compartment in enumerate(compartments):
            ax = axes[i, j]
            part = rows.filter((pl.col("compartment") == compartment) & pl.col(metric).is_not_null())
            means = part.group_by("patient", "day").agg(pl.col(metric).mean()).sort("patient", "day")
            for patient in groups:
                line = means.filter(pl.col("patient") == patient)
                if line.height == 0:
                    continue
                colour = colours[groups[patient]]
                ax.plot(line["day"].to_numpy(), line[metric].to_numpy(), "-o", color=colour, ms=4, lw=1.4, alpha=0.9)
                if label_ends:
                    ax.annotate(
                        patient,
                        (line["day"][-1], line[metric][-1]),
                        xytext=(3, 0),
                        textcoords="offset points",
                        fontsize=7,
                        color=colour,
                        va="center",
                    )
            if part.height == 0:
                ax.text(0.5, 0.5, "no rarefied values", transform=ax.transAxes, ha="center", color="#555555")
            ax.axvline(0, color="#444444", lw=0.8, ls=":")
            if i == 0:
                ax.set_title(
                    compartment_name(compartment),
                    color=COMPARTMENT_COLOURS.get(compartment, "black"),
                    fontweight="bold",
                )
            if j == 0:
                ax.set_ylabel(DIVERSITY_METRICS[metric])
            if i == len(metrics) - 1:
                ax.set_xlabel("day relative to first infusion")
    depth_text = rarefied_depths_text(rows, unit=" templates")
    _group_legend(fig, colours, title=note, extra=[Line2D([], [], color="#444444", ls=":", label="infusion (day 0)")])
    fig.suptitle(
        f"Cohort · repertoire diversity over time\nrarefied to {depth_text} so that samples compare; "
        "technical replicates averaged",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig


def _grouped_positions(patients: list[str], groups: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """Patients sorted by group, and x positions with a gap between groups."""
    ordered = sorted(patients, key=lambda p: (groups.get(p, NO_GROUP), p))
    xs, x, previous = [], 0.0, None
    for patient in ordered:
        if previous is not None and groups.get(patient) != previous:
            x += 0.6
        xs.append(x)
        x += 1.0
        previous = groups.get(patient)
    return ordered, np.asarray(xs)


def _biopsy_shares(text: str | None) -> list[tuple[str, float]]:
    """``d28=0.0071; d56=0.0090`` -> ``[("d28", 0.0071), ("d56", 0.0090)]``."""
    if not text:
        return []
    out = []
    for part in str(text).split(";"):
        if "=" in part:
            key, value = part.strip().split("=", 1)
            out.append((key, float(value)))
    return out


def _association_note(association: pl.DataFrame | None, group_by: str | None, metric: str) -> str:
    """``exact Mann–Whitney U p = 0.33`` for ``metric`` by ``group_by`` from ``association.tsv`` ('' if absent)."""
    if association is None or not group_by or "grouping" not in association.columns:
        return ""
    row = association.filter((pl.col("grouping") == group_by) & (pl.col("metric") == metric))
    if row.height == 0 or row["p"][0] is None:
        return ""
    from tcrtrack.plots.association import test_name

    return f"\n{test_name(row['test'][0])} p = {row['p'][0]:.2g}"


def flagged_by_group(
    summary: pl.DataFrame,
    samples: pl.DataFrame,
    *,
    group_by: str | None = "response",
    association: pl.DataFrame | None = None,
) -> Figure:
    """Per patient, grouped by a sheet column: clones expanded in blood, flagged clones, and the share of the
    post-treatment tumour repertoire that the flagged clones occupy (bar = highest biopsy, dots = each).

    Parameters
    ----------
    summary
        ``results/cohort/expansion_summary.tsv``.
    samples
        The sample sheet.
    group_by
        Sheet column that groups the patients.
    association
        ``results/cohort/association.tsv``: each panel's p-value between the groups, with its test.
    """
    groups, note = patient_groups(samples, group_by)
    colours = group_colours(groups)
    patients, xs = _grouped_positions(summary["patient"].to_list(), groups)
    width = max(9.0, 2.2 + 0.45 * len(patients) * 3)
    fig, axes = new_figure(width, 4.4, ncols=3)
    rows = {r["patient"]: r for r in summary.iter_rows(named=True)}
    bar_colours = [colours.get(groups.get(p, NO_GROUP), "#777777") for p in patients]
    panels = [
        ("expanded_in_blood", "clones expanded in blood\n(any post-infusion day)", 1.0),
        ("flagged", "flagged clones\n(expanded in blood and accumulating in tumour)", 1.0),
        ("flagged_share_max_biopsy", "flagged clones' share of the tumour\n(% of templates, post-treatment)", 100.0),
    ]
    for ax, (column, title, scale) in zip(axes[0], panels, strict=False):
        if column not in summary.columns or not patients:
            message_axes(ax, f"no '{column}' in the summary")
            continue
        values = np.array(
            [(rows[p][column] or 0.0) * scale if rows[p][column] is not None else np.nan for p in patients], dtype=float
        )
        ax.bar(xs, np.nan_to_num(values), color=bar_colours, width=0.8, edgecolor="white")
        for x, value in zip(xs, values, strict=False):
            text = "n/a" if np.isnan(value) else (f"{value:.2g}%" if scale == 100.0 else f"{int(value)}")
            ax.text(x, 0 if np.isnan(value) else value, text, ha="center", va="bottom", fontsize=7)
        if column == "flagged_share_max_biopsy" and "flagged_share_by_biopsy" in summary.columns:
            for x, patient in zip(xs, patients, strict=False):
                shares = _biopsy_shares(rows[patient]["flagged_share_by_biopsy"])
                ax.scatter(
                    [x] * len(shares),
                    [v * 100 for _, v in shares],
                    s=14,
                    color="black",
                    zorder=3,
                    edgecolor="white",
                    linewidths=0.5,
                )
        ax.set_xticks(xs, patients, rotation=90 if len(patients) > 12 else 0)
        metric = {"flagged_share_max_biopsy": "flagged_tumor_share"}.get(column, column)
        ax.set_title(title + _association_note(association, group_by, metric), fontsize=9)
        ax.margins(y=0.12)
    extra = [Line2D([], [], ls="", marker="o", color="black", ms=4, label="each post-treatment biopsy")]
    _group_legend(fig, colours, title=note, extra=extra)
    fig.suptitle(
        "Cohort · clones set in motion by the therapy, per patient\nflagged = newly expanded in blood after "
        "infusion and accumulating in the tumour",
        ha="left",
        x=0.02,
        fontsize=11,
    )
    return fig


def _pairs(overlap: pl.DataFrame, kind: str, *, baseline_day: int | None) -> pl.DataFrame:
    """``patient, day, value, reference`` rows of one panel of the overlap summary.

    ``blood``: baseline blood (the given day, else the latest <= 0) vs each post-infusion blood day;
    ``tumor``: the latest pre-treatment biopsy vs each post-treatment one; ``blood_tumor``: each biopsy vs
    the blood draw nearest in time (the earlier one on ties). Replicate pairs are averaged; ``reference``
    marks the technical-replicate overlap at the reference day (blood, tumour)."""
    both = pl.concat(
        [
            overlap,
            overlap.rename(
                {
                    "sample_a": "sample_b",
                    "sample_b": "sample_a",
                    "compartment_a": "compartment_b",
                    "compartment_b": "compartment_a",
                    "day_a": "day_b",
                    "day_b": "day_a",
                    "replicate_a": "replicate_b",
                    "replicate_b": "replicate_a",
                }
            ).select(overlap.columns),
        ]
    )
    schema = {"patient": pl.Utf8, "day": pl.Int64, "value": pl.Float64, "reference": pl.Boolean}
    if kind in ("blood", "tumor"):
        same = both.filter((pl.col("compartment_a") == kind) & (pl.col("compartment_b") == kind))
        refs = same.filter(pl.col("day_a") <= 0)
        if kind == "blood" and baseline_day is not None:
            refs = refs.filter(pl.col("day_a") == baseline_day)
        ref_day = refs.group_by("patient").agg(ref=pl.col("day_a").max())
        pairs = same.join(ref_day, on="patient").filter(pl.col("day_a") == pl.col("ref"))
        later = pairs.filter(pl.col("day_b") > 0).group_by("patient", "day_b").agg(value=pl.col("morisita_horn").mean())
        reps = (
            pairs.filter(pl.col("day_b") == pl.col("ref"))
            .group_by("patient", "day_b")
            .agg(value=pl.col("morisita_horn").mean())
        )
        out = pl.concat([later.with_columns(reference=pl.lit(False)), reps.with_columns(reference=pl.lit(True))])
        return out.rename({"day_b": "day"}).select(list(schema)).cast(schema).sort("patient", "day")
    cross = both.filter((pl.col("compartment_a") == "tumor") & (pl.col("compartment_b") == "blood")).with_columns(
        gap=(pl.col("day_a") - pl.col("day_b")).abs()
    )
    nearest = cross.group_by("patient", "day_a").agg(pl.col("gap").min().alias("min_gap"))
    cross = cross.join(nearest, on=["patient", "day_a"]).filter(pl.col("gap") == pl.col("min_gap"))
    first = cross.group_by("patient", "day_a").agg(pl.col("day_b").min().alias("blood_day"))
    cross = cross.join(first, on=["patient", "day_a"]).filter(pl.col("day_b") == pl.col("blood_day"))
    out = (
        cross.group_by("patient", "day_a")
        .agg(value=pl.col("morisita_horn").mean())
        .with_columns(reference=pl.lit(False))
    )
    return out.rename({"day_a": "day"}).select(list(schema)).cast(schema).sort("patient", "day")


def overlap_summary(
    overlap: pl.DataFrame,
    samples: pl.DataFrame,
    *,
    public: pl.DataFrame | None = None,
    group_by: str | None = "response",
    baseline_day: int | None = None,
) -> Figure:
    """Morisita–Horn overlap over time, every patient: blood baseline vs each post-infusion day, the
    pre-treatment biopsy vs each post-treatment one, and each biopsy vs the nearest blood draw.

    Parameters
    ----------
    overlap
        ``results/cohort/overlap.tsv`` (every patient's pairwise table with a ``patient`` column).
    samples
        The sample sheet.
    public
        ``results/cohort/public_clones.tsv``, summarised in the title.
    group_by
        Sheet column whose per-patient value colours the lines.
    baseline_day
        The configured baseline blood day (``expansion.baseline_day``).
    """
    groups, note = patient_groups(samples, group_by)
    colours = group_colours(groups)
    fig, axes = new_figure(13.0, 4.5, ncols=3, sharey=True)
    panels = [
        ("blood", "blood: baseline vs each later draw"),
        ("tumor", "tumour: pre-treatment vs each later biopsy"),
        ("blood_tumor", "blood vs tumour: each biopsy vs nearest blood draw"),
    ]
    for ax, (kind, title) in zip(axes[0], panels, strict=False):
        data = _pairs(overlap, kind, baseline_day=baseline_day) if overlap.height else pl.DataFrame()
        _overlap_panel(ax, data, groups, colours)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("day of the later sample" if kind != "blood_tumor" else "biopsy day")
    axes[0, 0].set_ylabel("Morisita–Horn overlap\n(1 = same clone frequencies)")
    axes[0, 0].set_ylim(0, 1.05)
    extra = [Line2D([], [], ls="", marker="D", mfc="white", mec="black", label="technical replicates (reference day)")]
    _group_legend(fig, colours, title=note, extra=extra)
    public_text = ""
    if public is not None:
        flagged = (
            int((public["n_flagged_patients"].cast(pl.Int64, strict=False).fill_null(0) > 0).sum())
            if "n_flagged_patients" in public.columns
            else 0
        )
        plural = "s" if public.height != 1 else ""
        public_text = (
            f"\n{public.height} public clone{plural} (same junction_aa + V + J) seen in ≥ 2 patients; "
            f"{flagged} flagged in a patient"
        )
    fig.suptitle(
        "Cohort · clone overlap over time and between blood and tumour" + public_text, ha="left", x=0.02, fontsize=11
    )
    return fig


def _overlap_panel(ax: Axes, data: pl.DataFrame, groups: dict[str, str], colours: dict[str, str]) -> None:
    if data.height == 0:
        message_axes(ax, "no such sample pairs")
        return
    for patient in groups:
        rows = data.filter(pl.col("patient") == patient)
        if rows.height == 0:
            continue
        colour = colours[groups[patient]]
        line = rows.filter(~pl.col("reference"))
        ax.plot(line["day"].to_numpy(), line["value"].to_numpy(), "-o", color=colour, ms=4, lw=1.4)
        ref = rows.filter(pl.col("reference"))
        ax.scatter(
            ref["day"].to_numpy(),
            ref["value"].to_numpy(),
            marker="D",
            facecolor="white",
            edgecolor=colour,
            s=26,
            zorder=3,
        )
        if len(groups) <= MAX_PATIENT_LABELS and line.height:
            ax.annotate(
                patient,
                (line["day"][-1], line["value"][-1]),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize=7,
                color=colour,
                va="center",
            )
    days = sorted(set(data["day"].to_list()))
    ax.set_xticks(days, [str(d).replace("-", "\u2212") for d in days])
    ax.margins(x=0.12)
