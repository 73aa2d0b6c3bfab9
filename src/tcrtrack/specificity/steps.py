"""The per-patient workflow step of the specificity stage (``workflow/rules/specificity.smk``), as a function
of files, and the tables it writes.

- :func:`specificity_step` (rule ``specificity``, per patient): database hits of the clones that matter
  (``annotation.tsv``), one row per such clone with its known specificity, Pgen and convergence
  (``specificity.tsv``, read back with :func:`read_specificity`), and per sample and match mode the hit rate
  beside the OLGA false-annotation rate (``annotation_calibration.tsv``).

The cohort step (rule ``specificity_cohort``: specificity groups across patients, the annotated flagged
clones, contamination, the annotation summary and the network figure) is
:func:`tcrtrack.specificity.cohort_step.specificity_cohort_step`.

The clones that matter (column ``clone_set``): ``flagged``, ``expanded_in_blood``, ``accumulates_in_tumor``,
``top_product`` (the infused product's ``top_n`` clones by count) and ``top_tumor`` (the ``top_n`` clones by
their largest count in a post-treatment biopsy; every biopsy when there is none after treatment).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tcrtrack.io import read_tsv, write_tsv
from tcrtrack.samplesheet import read_patient_sheet
from tcrtrack.specificity.matching import HIT_COLUMNS

log = logging.getLogger(__name__)

#: Clone sets, in the order ``clone_set`` lists them.
CLONE_SETS = ("flagged", "expanded_in_blood", "accumulates_in_tumor", "top_product", "top_tumor")
CLONE_KEY = ("patient", "clone_id", "junction_aa", "v_gene", "j_gene")

#: Columns (and types) of ``specificity.tsv``.
SPECIFICITY_SCHEMA: dict[str, pl.DataType] = {
    "patient": pl.Utf8,
    "clone_id": pl.Utf8,
    "junction_aa": pl.Utf8,
    "v_gene": pl.Utf8,
    "j_gene": pl.Utf8,
    "clone_set": pl.Utf8,
    **{name: pl.Boolean for name in CLONE_SETS},
    "new_in_blood": pl.Boolean,
    "blood_log2fc": pl.Float64,
    "blood_qvalue": pl.Float64,
    "tumor_max_post_frequency": pl.Float64,
    "tumor_post_templates": pl.Int64,
    "product_count": pl.Int64,
    "known_specificity": pl.Utf8,
    "viral_bystander": pl.Boolean,
    "best_match": pl.Utf8,
    "n_hits": pl.Int64,
    "pgen": pl.Float64,
    "log10_pgen": pl.Float64,
    "convergence": pl.Int64,
}
#: Columns of ``annotation.tsv`` after the clone key and ``clone_set``.
ANNOTATION_EXTRA = ("mode", "match", "mismatches", *HIT_COLUMNS, "database")
CALIBRATION_KEY: dict[str, pl.DataType] = {
    "patient": pl.Utf8,
    "sample": pl.Utf8,
    "compartment": pl.Utf8,
    "day": pl.Int64,
}


# --- databases -----------------------------------------------------------------------------------------------


def load_databases(databases: Sequence[Mapping[str, str]], settings: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, Database)`` per configured database (``{"name", "path", "format"}``; ``name`` is the path as
    configured), human TRB (``annotation.species`` / ``locus``) records only."""
    from tcrtrack.specificity.databases import read_database

    loaded = []
    for entry in databases:
        db = read_database(
            entry["path"],
            fmt=entry["format"],
            species=settings.get("species", "HomoSapiens"),
            locus=settings.get("locus", "TRB"),
        )
        dropped = ", ".join(f"{k} {v}" for k, v in db.dropped.items() if v)
        log.info(
            "database %s (%s, sha256 %s): %d records kept%s",
            entry["name"],
            entry["format"],
            db.sha256[:12],
            db.records.height,
            f"; dropped: {dropped}" if dropped else "",
        )
        loaded.append((entry["name"], db))
    return loaded


def _empty_hits(clones: pl.DataFrame) -> pl.DataFrame:
    from tcrtrack.specificity.databases import combine
    from tcrtrack.specificity.matching import annotate

    return annotate(clones.clear(), combine([]), mode="exact").with_columns(database=pl.lit(None, pl.Utf8))


def annotate_clones(
    clones: pl.DataFrame, databases: list[tuple[str, Any]], *, modes: Sequence[str], min_score: int | None
) -> pl.DataFrame:
    """Every hit of ``clones`` (key columns and ``clone_set``) in every database and mode: the ``annotation.tsv``
    rows (:data:`ANNOTATION_EXTRA` after the clone's columns), in clone order, then database, then mode."""
    from tcrtrack.specificity.matching import annotate

    query = clones.select(*CLONE_KEY, "clone_set")
    frames = [
        annotate(query, db, mode=mode, min_score=min_score).with_columns(database=pl.lit(name))
        for name, db in databases
        for mode in modes
    ]
    hits = pl.concat(frames, how="vertical_relaxed") if frames else _empty_hits(query)
    order = query.select("clone_id").with_row_index("_order")
    hits = hits.join(order, on="clone_id", how="left", maintain_order="left").sort("_order", maintain_order=True)
    return hits.select(*CLONE_KEY, "clone_set", *ANNOTATION_EXTRA)


def summarise_clone_hits(hits: pl.DataFrame) -> pl.DataFrame:
    """Per clone with a hit: ``known_specificity``, ``viral_bystander``, ``best_match``, ``n_hits`` (each database
    record counted once per clone and match level, whichever modes found it)."""
    from tcrtrack.specificity.matching import summarise_hits

    distinct = hits.unique(subset=[c for c in hits.columns if c != "mode"], maintain_order=True)
    return summarise_hits(distinct, by=["patient", "clone_id"])


# --- per patient ---------------------------------------------------------------------------------------------


def _sum(columns: list[str]) -> pl.Expr:
    return pl.sum_horizontal(pl.col(c).fill_null(0) for c in columns) if columns else pl.lit(0, pl.Int64)


def _max(columns: list[str]) -> pl.Expr:
    return pl.max_horizontal(pl.col(c) for c in columns) if columns else pl.lit(None, pl.Float64)


def clone_sets(clones: pl.DataFrame, samples: pl.DataFrame, *, top_n: int) -> pl.DataFrame:
    """The patient's clones that matter (module docstring), one row each, with their clone sets, blood
    evidence, tumour frequency and templates after treatment, and product count."""
    tumour = samples.filter(pl.col("compartment") == "tumor")
    post = tumour.filter(pl.col("day") > 0)
    biopsies = (post if post.height else tumour)["sample"].to_list()
    post_names = post["sample"].to_list()
    product = samples.filter(pl.col("compartment") == "product")["sample"].to_list()
    present = set(clones.columns)
    count = lambda names: [f"count_{s}" for s in names if f"count_{s}" in present]  # noqa: E731
    freq = lambda names: [f"freq_{s}" for s in names if f"freq_{s}" in present]  # noqa: E731
    table = clones.with_columns(
        _tumour_top=_max(count(biopsies)).fill_null(0),
        product_count=_sum(count(product)).cast(pl.Int64),
        tumor_post_templates=_sum(count(post_names)).cast(pl.Int64),
        tumor_max_post_frequency=_max(freq(post_names)).cast(pl.Float64),
    )

    def top(column: str) -> pl.Expr:
        rank = pl.col(column).rank(method="ordinal", descending=True)
        return (pl.col(column) > 0) & (rank <= top_n)

    table = table.with_columns(
        flagged=pl.col("flagged").fill_null(False),
        expanded_in_blood=pl.col("expanded_in_blood").fill_null(False),
        accumulates_in_tumor=pl.col("accumulates_in_tumor").fill_null(False),
        top_product=top("product_count") if product else pl.lit(False),
        top_tumor=top("_tumour_top") if biopsies else pl.lit(False),
    )
    selected = table.filter(pl.any_horizontal(pl.col(s) for s in CLONE_SETS))
    names = pl.concat_list(pl.when(pl.col(s)).then(pl.lit(s)).otherwise(None) for s in CLONE_SETS)
    selected = selected.with_columns(clone_set=names.list.drop_nulls().list.join(";"))
    order = [
        pl.col("flagged"),
        pl.col("expanded_in_blood"),
        pl.col("accumulates_in_tumor"),
        pl.col("top_tumor"),
        pl.col("top_product"),
    ]
    selected = selected.sort(
        [*order, "blood_qvalue", "_tumour_top", "clone_id"],
        descending=[True] * 5 + [False, True, False],
        nulls_last=True,
    )
    for column in ("new_in_blood", "blood_log2fc", "blood_qvalue"):
        if column not in selected.columns:
            selected = selected.with_columns(pl.lit(None).alias(column))
    return selected.select(
        *CLONE_KEY,
        "clone_set",
        *CLONE_SETS,
        "new_in_blood",
        "blood_log2fc",
        "blood_qvalue",
        "tumor_max_post_frequency",
        "tumor_post_templates",
        "product_count",
    )


def _calibration(
    tables: Mapping[str, pl.DataFrame],
    samples: pl.DataFrame,
    databases: list[tuple[str, Any]],
    *,
    modes: Sequence[str],
    min_score: int | None,
) -> pl.DataFrame:
    from tcrtrack.specificity.calibration import CALIBRATION_COLUMNS, false_annotation_rates
    from tcrtrack.specificity.databases import combine

    schema = {
        **CALIBRATION_KEY,
        "mode": pl.Utf8,
        "n_clones": pl.Int64,
        "clones_hit": pl.Int64,
        "hit_rate": pl.Float64,
        "n_random": pl.Int64,
        "random_hit": pl.Int64,
        "false_annotation_rate": pl.Float64,
        "far_ci_low": pl.Float64,
        "far_ci_high": pl.Float64,
    }
    if not databases:
        return pl.DataFrame(schema=schema)
    records = combine([db for _, db in databases])
    rows = []
    for patient, sample, compartment, day in samples.select("patient", "sample", "compartment", "day").iter_rows():
        if sample not in tables:
            continue
        rates = false_annotation_rates(
            tables[sample].select("junction_aa", "v_gene"), records, modes=tuple(modes), min_score=min_score
        )
        rows.append(
            rates.select(
                pl.lit(patient).alias("patient"),
                pl.lit(sample).alias("sample"),
                pl.lit(compartment).alias("compartment"),
                pl.lit(day, pl.Int64).alias("day"),
                *CALIBRATION_COLUMNS,
            )
        )
    return pl.concat(rows, how="vertical_relaxed").cast(schema) if rows else pl.DataFrame(schema=schema)


def specificity_step(
    *,
    patient: str,
    clones: str,
    clonotypes: Sequence[str],
    sheet: str,
    databases: Sequence[Mapping[str, str]],
    settings: Mapping[str, Any],
    annotation_out: str,
    specificity_out: str,
    calibration_out: str,
) -> None:
    """One patient: ``annotation.tsv``, ``specificity.tsv`` and ``annotation_calibration.tsv`` (module docstring).

    ``databases``: ``{"name", "path", "format"}`` per configured database (none: the annotation tables are
    written with their header and no rows; Pgen and convergence are still computed). ``settings``: the
    config's ``annotation`` block (modes, min_score, species, locus, top_n).
    """
    from tcrtrack.specificity.convergence import convergence
    from tcrtrack.specificity.pgen import add_pgen

    samples = read_patient_sheet(sheet, patient)
    table = pl.read_parquet(clones)
    if "patient" not in table.columns:
        table = table.with_columns(patient=pl.lit(patient))
    selected = clone_sets(table, samples, top_n=int(settings.get("top_n", 100)))
    modes, min_score = list(settings.get("modes", ["exact", "exact_v", "one_mismatch"])), settings.get("min_score")
    loaded = load_databases(databases, settings)
    if not loaded:
        log.info(
            "%s: no annotation database configured (config annotation.databases is empty): annotation.tsv "
            "and annotation_calibration.tsv have headers and no rows",
            patient,
        )
    hits = annotate_clones(selected, loaded, modes=modes, min_score=min_score)
    summary = summarise_clone_hits(hits)
    sample_tables = {
        Path(p).name.removesuffix(".parquet"): pl.read_parquet(
            p, columns=["clone_id", "junction_aa", "v_gene", "junction"]
        )
        for p in clonotypes
    }
    rows = [t.with_columns(patient=pl.lit(patient)) for t in sample_tables.values()]
    nt = (
        pl.concat(rows, how="vertical_relaxed")
        if rows
        else pl.DataFrame(
            schema={
                "clone_id": pl.Utf8,
                "junction_aa": pl.Utf8,
                "v_gene": pl.Utf8,
                "junction": pl.Utf8,
                "patient": pl.Utf8,
            }
        )
    )
    converged = convergence(nt, by=("patient",)).rename({"n_nt_junctions": "convergence"})
    flagged = selected.filter(pl.col("flagged"))
    pgen = add_pgen(flagged.select("clone_id", "junction_aa", "v_gene", "j_gene")).select(
        "clone_id", "pgen", "log10_pgen"
    )
    out = (
        selected.join(summary, on=["patient", "clone_id"], how="left", maintain_order="left")
        .join(pgen, on="clone_id", how="left", maintain_order="left")
        .join(converged, on=["patient", "junction_aa"], how="left", maintain_order="left")
    )
    if loaded:
        out = out.with_columns(
            viral_bystander=pl.col("viral_bystander").fill_null(False), n_hits=pl.col("n_hits").fill_null(0)
        )
    out = out.with_columns(
        pl.lit(None, pl.Utf8).alias(c) for c in ("known_specificity", "best_match") if c not in out.columns
    )
    out = out.select(
        [pl.col(c).cast(t) if c in out.columns else pl.lit(None, t).alias(c) for c, t in SPECIFICITY_SCHEMA.items()]
    )
    calibration = _calibration(sample_tables, samples, loaded, modes=modes, min_score=min_score)
    write_tsv(hits, annotation_out)
    write_tsv(out, specificity_out)
    write_tsv(calibration, calibration_out)
    annotated = out.filter(pl.col("known_specificity").is_not_null())
    log.info(
        "%s: %d clones annotated in %d database(s): %d with a hit (%d viral); %d flagged clones, %d with a "
        "hit, Pgen computed for %d",
        patient,
        out.height,
        len(loaded),
        annotated.height,
        int(out["viral_bystander"].fill_null(False).sum()),
        flagged.height,
        int(annotated["flagged"].sum()),
        pgen.height,
    )


def read_specificity(path: str | Path) -> pl.DataFrame:
    """A ``specificity.tsv`` with its column types (TSVs read back lose them where a column is all NA)."""
    table = read_tsv(path)
    return table.select(
        [
            pl.col(c).cast(t, strict=False) if c in table.columns else pl.lit(None, t).alias(c)
            for c, t in SPECIFICITY_SCHEMA.items()
        ]
    )
