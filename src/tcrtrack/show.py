"""The lines ``tcrtrack show PATIENT`` prints: one patient's counts, flagged clones and top expansions,
its annotated clones, every table and figure with its path and meaning (:mod:`tcrtrack.registry`), then the
cohort's association table. The counts are :func:`tcrtrack.cohort_tables.expansion_counts`, the ones of
``results/cohort/expansion_summary.tsv``."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tcrtrack.cohort_tables import SUMMARY_COLUMNS, expansion_counts
from tcrtrack.errors import TcrtrackError
from tcrtrack.io import read_tsv
from tcrtrack.registry import select


def _fmt(value: object, spec: str = ".3g") -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _annotated_clone_lines(path: Path, *, n_top: int = 10) -> list[str]:
    """The patient's clones with a database hit (specificity.tsv of the specificity stage), a short section."""
    if not path.is_file():
        return []
    from tcrtrack.specificity.steps import read_specificity

    hits = read_specificity(path).filter(pl.col("known_specificity").is_not_null())
    if hits.height == 0:
        return ["  no annotated clone (no database hit, or no database configured: annotation.databases)"]
    lines = [f"  annotated clones ({hits.height} with a database hit; {int(hits['viral_bystander'].sum())} viral):"]
    for r in hits.head(n_top).iter_rows(named=True):
        lines.append(
            f"    {r['junction_aa']:<22} {r['v_gene'] or 'NA':<10} {r['known_specificity'][:40]:<40} "
            f"{r['best_match']:<12} {r['clone_set']}"
        )
    if hits.height > n_top:
        lines.append(f"    ... {hits.height - n_top} more in specificity.tsv")
    return lines


def _metadata_line(results: Path, patient: str) -> list[str]:
    """The patient's sheet metadata (response, arm, ...): the columns of the cohort's expansion summary that
    are not :data:`tcrtrack.cohort_tables.SUMMARY_COLUMNS`."""
    summary_file = results / "cohort" / "expansion_summary.tsv"
    if not summary_file.is_file():
        return []
    row = read_tsv(summary_file).filter(pl.col("patient") == patient)
    meta = (
        {k: v for k, v in row.row(0, named=True).items() if k not in ("patient", *SUMMARY_COLUMNS)}
        if row.height
        else {}
    )
    return ["  " + ", ".join(f"{k}: {v}" for k, v in meta.items())] if meta else []


def _clone(r: dict[str, object]) -> str:
    return f"{r['junction_aa']:<22} {str(r['v_gene']) + '/' + str(r['j_gene']):<19}"


def _clone_lines(clones: pl.DataFrame, *, n_top: int) -> list[str]:
    """The counts, the flagged clones (strongest blood evidence first) and the top expansions in blood."""
    counts = expansion_counts(clones)
    lines = [
        f"  {counts['clones']:,} clones; {counts['expanded_in_blood']} expanded in blood "
        f"({counts['new_expanded_in_blood']} new), {counts['accumulating_in_tumor']} accumulating in tumour "
        f"(whole-repertoire FDR), {counts['flagged']} flagged (expanded in blood and enriched in a "
        "post-treatment biopsy)"
    ]
    if counts["baseline_depth"] is not None:
        lines.append(
            f"  baseline depth {counts['baseline_depth']:,} templates: a clone absent from it counts as new "
            f"below frequency {_fmt(counts['new_detection_limit'], '.2g')}"
        )
    top = clones.filter(pl.col("flagged")).sort(
        ["blood_qvalue", "blood_log2fc"], descending=[False, True], nulls_last=True
    )
    lines.append(
        "  flagged clones (strongest blood evidence first):"
        if top.height
        else "  no flagged clones (none both expanded in blood and accumulating in the tumour)"
    )
    for r in top.head(10).iter_rows(named=True):
        lines.append(
            f"    {_clone(r)} peak day {_fmt(r['peak_day'])}  blood log2FC {_fmt(r['blood_log2fc'], '.2f')} "
            f"(q {_fmt(r['blood_qvalue'], '.2g')})  tumour max count {_fmt(r['tumor_max_post_count'])}"
            f"{'  new in blood' if r['new_in_blood'] else ''}"
        )
    if top.height > 10:
        lines.append(f"    ... {top.height - 10} more in flagged_clones.tsv")
    expanded = clones.filter(pl.col("expanded_in_blood")).sort(
        ["blood_log2fc", "clone_id"], descending=[True, False], nulls_last=True
    )
    lines.append(
        f"  top expansions in blood (log2 fold change vs baseline, top {min(n_top, expanded.height)}):"
        if expanded.height
        else "  no clone expanded in blood"
    )
    for r in expanded.head(n_top).iter_rows(named=True):
        lines.append(
            f"    {_clone(r)} log2FC {_fmt(r['blood_log2fc'], '.2f')}  q {_fmt(r['blood_qvalue'], '.2g')}"
            f"  peak day {_fmt(r['peak_day'])}{'  flagged' if r['flagged'] else ''}"
        )
    return lines


def patient_summary(results: Path, patient: str, *, n_top: int = 5) -> list[str]:
    """Lines describing one patient's results: counts, flagged clones, top expansions, tables and figures."""
    folder = results / "patients" / patient
    if not folder.is_dir():
        known = sorted(p.name for p in (results / "patients").glob("*") if p.is_dir())
        raise TcrtrackError(
            f"no results for patient '{patient}' in {results / 'patients'} (patients with results: "
            f"{', '.join(known) or 'none'}). Fix: check the id, or run `tcrtrack run --patient "
            f"{patient}`"
        )
    lines = [f"patient {patient}: {folder}", *_metadata_line(results, patient)]
    clones_file = folder / "clones.parquet"
    if clones_file.is_file():
        lines.extend(_clone_lines(pl.read_parquet(clones_file), n_top=n_top))
    lines.extend(_annotated_clone_lines(folder / "specificity.tsv"))
    for kind, heading in (("table", "tables"), ("figure", "figures (PNG; PDF next to each)")):
        entries = [(results.parent / o.format(patient)[0], o.meaning) for o in select(scope="patient", kind=kind)]
        width = max(len(str(path)) for path, _ in entries)
        lines.append(f"  {heading}:")
        for path, meaning in entries:
            lines.append(f"    {str(path):<{width}}  {meaning if path.is_file() else '(not built yet)'}")
    return lines


def association_summary(results: Path) -> list[str]:
    """Lines of the cohort's association table (``results/cohort/association.tsv``), none when absent."""
    path = results / "cohort" / "association.tsv"
    if not path.is_file():
        return []
    table = read_tsv(path)
    lines = [
        f"cohort association ({path}; effect = Hodges-Lehmann shift of the other group over the first, "
        "95% bootstrap CI; q = BH over each grouping's n_tests):"
    ]
    for row in table.sort(["grouping", "p"], nulls_last=True).iter_rows(named=True):
        if row["metric"] is None:
            lines.append(f"  by {row['grouping']}: not tested ({row['missing_patients']})")
            continue
        ci = f" [{_fmt(row['ci_low'], '.3g')}, {_fmt(row['ci_high'], '.3g')}]" if row["ci_low"] is not None else ""
        missing = f", {row['n_missing']} missing" if row["n_missing"] else ""
        lines.append(
            f"  by {row['grouping']}: {row['metric']:<38} {row['groups']} n {row['n_per_group']}{missing}  "
            f"medians {row['medians']}  effect {_fmt(row['effect'], '.3g')}{ci}  p {_fmt(row['p'], '.2g')}"
            f"  q {_fmt(row['q'], '.2g')}  {row['test']}"
        )
    return lines
