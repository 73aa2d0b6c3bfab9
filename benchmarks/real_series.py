#!/usr/bin/env python
"""The real 7-day transplant series (LymphoSeq example data) through every model: calls and noise fits.

Data: ``../shared/data/lymphoseq/`` beside the repository root (see its SOURCE.md): blood of one patient
after allogeneic bone-marrow transplant, Adaptive immunoSEQ v2 exports of days 0, 32, 83, 369, 949, 1320
and 1496, each holding only the top 1,000 sequences of its sample. Day 0 is the baseline, later days are
post. Each file is ingested with ``tcrtrack.formats.ingest_converted(path, fmt="immunoseq_v2",
locus="TRB", productive_only=True, min_junction_aa_length=5, definition="aa_vj")`` and the patient is
analysed with ``analyse_patient`` for each model. Immune reconstitution changes most of the repertoire
between these days, and the top-1,000 cut makes absence uninformative: there is no truth here, the
section shows what each model does with real noise.

Writes a section into ACCURACY.md (between markers, replaced on rerun) and
``benchmarks/figures/real_series_noise.png``.

Run::

    python benchmarks/real_series.py [--data DIR] [--models fisher,betabinomial,overdispersed] [--report FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import scoring  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START, END = "<!-- real-series:start -->", "<!-- real-series:end -->"


def default_data() -> Path:
    """``../shared/data/lymphoseq`` beside the repository root (a worktree's root may be nested elsewhere)."""
    for base in (ROOT, *ROOT.parents):
        candidate = base.parent / "shared" / "data" / "lymphoseq"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "lymphoseq"


def load(data: Path) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The sample table (one patient, blood, day from the file name) and the ingested clonotypes."""
    from tcrtrack.formats import ingest_converted

    files = sorted(data.glob("TRB_Unsorted_*.tsv"), key=lambda p: int(re.findall(r"(\d+)", p.stem)[-1]))
    if not files:
        raise SystemExit(f"no TRB_Unsorted_*.tsv in {data}")
    rows, clonotypes = [], {}
    for path in files:
        day = int(re.findall(r"(\d+)", path.stem)[-1])
        sample = f"LS_d{day}"
        result = ingest_converted(
            path, fmt="immunoseq_v2", locus="TRB", productive_only=True, min_junction_aa_length=5, definition="aa_vj"
        )
        clonotypes[sample] = result.clonotypes
        rows.append({"patient": "LS", "sample": sample, "compartment": "blood", "day": day, "replicate": 1})
    return pl.DataFrame(rows), clonotypes


def analyse(samples: pl.DataFrame, clonotypes: dict[str, pl.DataFrame], models: Sequence[str]) -> dict:
    from tcrtrack.patient import CallSettings, analyse_patient

    return {m: analyse_patient(samples, clonotypes, settings=CallSettings(model=m)) for m in models}


def day_table(samples: pl.DataFrame, results: dict) -> str:
    days = sorted(d for d in samples["day"].to_list() if d > 0)
    models = list(results)
    header = ["day", "clones tested", *(f"{m}: expanded" for m in models)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    any_calls = next(iter(results.values())).clones
    for day in days:
        tested = int(any_calls[f"blood_d{day}_pvalue"].is_not_null().sum())
        cells = [str(int(results[m].clones[f"blood_d{day}_significant"].fill_null(False).sum())) for m in models]
        lines.append(f"| {day} | {tested} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def noise_notes(results: dict) -> str:
    out = []
    for model, calls in results.items():
        noise = calls.noise
        cols = [c for c in ("comparison", "source", "note") if c in noise.columns]
        if noise.is_empty() or "note" not in noise.columns:
            out.append(f"- `{model}`: no noise-fit notes (columns: {', '.join(noise.columns) or 'none'})")
            continue
        notes = noise.select(cols).unique(maintain_order=True)
        for row in notes.iter_rows(named=True):
            out.append(f"- `{model}`, {row.get('comparison', '')} ({row.get('source', '')}): {row['note'] or '(none)'}")
    return "\n".join(out)


def figure(samples: pl.DataFrame, clonotypes: dict[str, pl.DataFrame], results: dict, path: Path) -> None:
    """Per post day: observed logit(b/n) - logit(N_b/(N_a+N_b)) of clones seen on both days against
    log10((a+b)/(N_a+N_b)), with the fitted null band of each model whose noise table has ``log10_freq``
    and ``q975`` (around ``center`` if present, else 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tcrtrack.patient import wide_counts

    wide = wide_counts(clonotypes)
    base = samples.filter(pl.col("day") <= 0).sort("day")["sample"][-1]
    post = samples.filter(pl.col("day") > 0).sort("day")
    ncol = min(3, post.height)
    nrow = -(-post.height // ncol)
    fig, grid = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 3.0 * nrow), sharey=True, squeeze=False)
    axes = [list(grid.ravel()[: post.height])]
    for extra in grid.ravel()[post.height :]:
        extra.set_visible(False)
    a_all = wide[f"count_{base}"].to_numpy()
    for ax, (sample, day) in zip(axes[0], post.select("sample", "day").iter_rows(), strict=False):
        b_all = wide[f"count_{sample}"].to_numpy()
        n_a, n_b = a_all.sum(), b_all.sum()
        both = (a_all > 0) & (b_all > 0)
        a, b = a_all[both], b_all[both]
        n = a + b
        p0 = n_b / (n_a + n_b)
        y = np.log(b / a) - np.log(p0 / (1 - p0))  # logit(b/n) = log(b/a)
        x = np.log10(n / (n_a + n_b))
        ax.scatter(x, y, s=14, alpha=0.5, color="k", lw=0)
        for model, calls in results.items():
            noise = calls.noise
            if not {"log10_freq", "q975"} <= set(noise.columns):
                continue
            rows = noise.filter(pl.col("comparison").str.starts_with(f"blood_d{day} ")).sort("log10_freq")
            if rows.is_empty():
                continue
            fx = rows["log10_freq"].to_numpy()
            centre = rows["center"].to_numpy() if "center" in rows.columns else np.zeros(rows.height)
            q = rows["q975"].to_numpy()
            (line,) = ax.plot(fx, centre + q, lw=1, label=model)
            ax.plot(fx, centre - q, lw=1, color=line.get_color())
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"day {day} vs day 0 ({both.sum()} shared)", fontsize=9)
        ax.set_xlabel("log10((a+b)/(N_a+N_b))", fontsize=8)
    for row in grid:
        row[0].set_ylabel("logit(b/n) - logit(N_b/(N_a+N_b))", fontsize=8)
    if any(ax.get_legend_handles_labels()[0] for ax in axes[0]):
        axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(
    samples: pl.DataFrame, clonotypes: dict[str, pl.DataFrame], results: dict, skipped: Sequence[str], figure_path: Path
) -> str:
    depths = ", ".join(
        f"d{d}: {int(clonotypes[s]['count'].sum()):,}" for s, d in samples.select("sample", "day").iter_rows()
    )
    skipped_models = "; skipped models: " + ", ".join(skipped) if skipped else ""
    return f"""{START}
## Real series: LymphoSeq transplant blood, 7 days

`benchmarks/real_series.py`: one patient after allogeneic bone-marrow transplant (Kanakry et al. 2016; LymphoSeq
example data, immunoSEQ v2, top 1,000 sequences per sample; templates kept after ingest: {depths}). Day 0 is the
baseline. No truth: reconstitution changes most of the repertoire, and a clone absent from a file may only be
below its top-1,000 cut. Expanded calls per post day and model{skipped_models}:

{day_table(samples, results)}

Noise-fit notes (`calls.noise`, `note` column):

{noise_notes(results)}

![noise of the real series](figures/{figure_path.name}): per post day, clones seen on both days, observed
logit(b/n) - logit(N_b/(N_a+N_b)) against log10 of their pooled frequency, with each model's fitted null band
(+-q975) where its noise table has one.
{END}
"""


def write_section(report: Path, text: str) -> None:
    old = report.read_text() if report.exists() else ""
    if START in old and END in old:
        new = old[: old.index(START)] + text.strip() + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip() + "\n\n" + text
    report.write_text(new)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--models", type=lambda s: s.split(","), default=["fisher", "betabinomial", "overdispersed"])
    parser.add_argument("--report", type=Path, default=HERE / "ACCURACY.md")
    parser.add_argument("--figure", type=Path, default=HERE / "figures" / "real_series_noise.png")
    args = parser.parse_args(argv)
    models, skipped = scoring.methods_available(args.models)
    for name in skipped:
        print(f"warning: model {name!r} is unknown to this tcrtrack; skipped", file=sys.stderr)
    samples, clonotypes = load(args.data or default_data())
    results = analyse(samples, clonotypes, models)
    figure(samples, clonotypes, results, args.figure)
    text = section(samples, clonotypes, results, skipped, args.figure)
    write_section(args.report, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
