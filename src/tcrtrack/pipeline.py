"""The workflow's steps as functions of files: each reads its inputs, calls the pure
functions of the package, and writes its outputs atomically. Snakemake scripts call these; the
statistics live in the modules they call, the tables' contracts and summaries in
:mod:`tcrtrack.cohort_tables`.

A step is named after its rule: rule ``expansion`` -> ``scripts/expansion.py`` -> :func:`expansion_step`
(the calls: :func:`tcrtrack.patient.analyse_patient`), rule ``figures`` -> :func:`figures_step`, rule
``figures_cohort`` -> :func:`figures_cohort_step`, and so on; :func:`gather_step` serves the cohort rules
that only stack per-patient tables (``ingest_cohort``, ``diversity_cohort``). A per-patient step does one
sample at a time with ``<stage>_sample`` (:func:`ingest_sample`, :func:`diversity_sample`). Stages added
later keep their steps in their own module (``tcrtrack.clone_origin.clone_origin_step``,
``tcrtrack.kinetics_steps.kinetics_step``, ...)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tcrtrack.cohort_tables import cohort_flagged, expansion_summary, flagged_table, patient_metadata
from tcrtrack.errors import TcrtrackError
from tcrtrack.formats import ingest_converted
from tcrtrack.io import read_tsv, write_parquet, write_tsv
from tcrtrack.samplesheet import patient_rows, read_patient_sheet, read_sample_sheet
from tcrtrack.seeds import sample_seed

log = logging.getLogger(__name__)


def ingest_sample(
    *,
    repertoire: str,
    file_format: str,
    patient: str,
    sample: str,
    clonotypes_out: str,
    locus: str,
    productive_only: bool,
    min_junction_aa_length: int,
    definition: str,
    species: str = "homosapiens",
) -> pl.DataFrame:
    """Repertoire file (any known format; ``auto`` detects it) -> ``clonotypes_out`` (Parquet); returns the
    sample's one-row QC table (patient, sample, file, then :func:`tcrtrack.ingest.qc_table`'s columns)."""
    result = ingest_converted(
        repertoire,
        fmt=file_format,
        locus=locus,
        productive_only=productive_only,
        min_junction_aa_length=min_junction_aa_length,
        definition=definition,
        species=species,
    )
    qc = result.qc.select(
        pl.lit(patient).alias("patient"),
        pl.lit(sample).alias("sample"),
        pl.lit(str(repertoire)).alias("file"),
        pl.all(),
    )
    write_parquet(result.clonotypes, clonotypes_out)
    log.info(
        "%s: %d rows in, %d kept, %d clonotypes",
        sample,
        qc["input_rows"][0],
        qc["kept_rows"][0],
        result.clonotypes.height,
    )
    return qc


def ingest_step(
    *,
    patient: str,
    samples: Sequence[str],
    repertoires: Sequence[str],
    formats: Sequence[str],
    clonotypes_dir: str,
    qc_out: str,
    **options,
) -> None:
    """Every repertoire file of one patient -> ``<clonotypes_dir>/<sample>.parquet`` and one QC table
    (``qc_out``, a row per sample), in one process (one interpreter start per patient, not per sample).

    ``options`` are the keyword options of :func:`ingest_sample` (locus, productive_only, ...). Every file
    is checked before the step fails: one bad file raises its own error; several are logged one per line
    and raised as one error that names them all (separated by `` | ``)."""
    if not len(samples) == len(repertoires) == len(formats):
        raise ValueError("samples, repertoires and formats must be parallel lists")
    Path(clonotypes_dir).mkdir(parents=True, exist_ok=True)
    rows, problems = [], []
    for sample, repertoire, file_format in zip(samples, repertoires, formats, strict=False):
        try:
            rows.append(
                ingest_sample(
                    repertoire=repertoire,
                    file_format=file_format,
                    patient=patient,
                    sample=sample,
                    clonotypes_out=str(sample_table(clonotypes_dir, sample)),
                    **options,
                )
            )
        except TcrtrackError as error:
            problems.append(error)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        for problem in problems:
            log.error("%s", problem)
        raise TcrtrackError(
            f"{len(problems)} input files of patient {patient} are unusable: "
            + " | ".join(str(problem) for problem in problems)
        )
    write_tsv(pl.concat(rows, how="diagonal_relaxed"), qc_out)


def sample_table(directory: str | Path, sample: str) -> Path:
    """The per-sample table ``<directory>/<sample>.parquet`` of a per-patient output directory."""
    return Path(directory) / f"{sample}.parquet"


def with_sheet_metadata(table: pl.DataFrame, sheet: str | Path) -> pl.DataFrame:
    """Join the sheet's columns (compartment, day, replicate and any metadata) onto ``table`` by sample,
    ordered by patient, compartment, day, replicate."""
    samples = read_sample_sheet(sheet, check_files=False).drop("path", "format")
    joined = samples.join(table.drop("patient", strict=False), on="sample", how="inner", maintain_order="left")
    return joined.sort("patient", "compartment", "day", "replicate", "sample", maintain_order=True)


def gather_step(*, tables: Sequence[str], sheet: str, out: str) -> None:
    """Concatenate per-sample tables (TSV or Parquet) into one cohort TSV with sample metadata."""
    frames = [pl.read_parquet(p) if str(p).endswith(".parquet") else read_tsv(p) for p in tables]
    write_tsv(with_sheet_metadata(pl.concat(frames, how="diagonal_relaxed"), sheet), out)


def common_depth_step(
    *, qc_tables: Sequence[str], sheet: str, configured: int | dict[str, int] | None, by_compartment: bool, out: str
) -> None:
    """Write the rarefaction depth of every sample (``sample, compartment, depth, basis``, tab-separated):
    the configured one, else the smallest kept count of the QC tables per compartment (or of the cohort)."""
    from tcrtrack.rarefaction import common_depths

    samples = (
        read_sample_sheet(sheet, check_files=False)
        .select("sample", "compartment")
        .unique("sample", maintain_order=True)
    )
    kept = pl.DataFrame(schema={"sample": pl.Utf8, "total": pl.Int64})
    if qc_tables:
        kept = pl.concat(
            [read_tsv(p).select(pl.col("sample").cast(pl.Utf8), pl.col("kept_count").alias("total")) for p in qc_tables]
        )
    depths = common_depths(
        samples.join(kept, on="sample", how="left"), configured=configured, by_compartment=by_compartment
    )
    write_tsv(depths, out)
    for compartment, depth, basis, n in (
        depths.group_by("compartment", "depth", "basis", maintain_order=True).len().rows()
    ):
        log.info("common depth %s: %d (%s; %d samples)", compartment, depth, basis, n)


def diversity_sample(
    *, clonotypes: str, depth: int, patient: str, sample: str, iterations: int, seed: int, out: str
) -> None:
    """Clonotype table -> diversity rows (full depth, rarefied to ``depth``) for one sample."""
    from tcrtrack.diversity import sample_diversity  # deferred: scikit-bio is slow to import

    counts = pl.read_parquet(clonotypes, columns=["count"])["count"].to_numpy()
    table = sample_diversity(counts, depth=depth, n_iterations=iterations, seed=sample_seed(seed, sample))
    write_parquet(table.select(pl.lit(patient).alias("patient"), pl.lit(sample).alias("sample"), pl.all()), out)


def diversity_step(
    *,
    patient: str,
    samples: Sequence[str],
    clonotypes_dir: str,
    depth_file: str,
    iterations: int,
    seed: int,
    out_dir: str,
) -> None:
    """Every clonotype table of one patient -> ``<out_dir>/<sample>.parquet`` (diversity at full and common
    depth), in one process: scikit-bio's import (~1.5 s) is paid once per patient."""
    depths = dict(read_tsv(depth_file).select(pl.col("sample").cast(pl.Utf8), "depth").iter_rows())
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for sample in samples:
        diversity_sample(
            clonotypes=str(sample_table(clonotypes_dir, sample)),
            depth=depths[sample],
            patient=patient,
            sample=sample,
            iterations=iterations,
            seed=seed,
            out=str(sample_table(out_dir, sample)),
        )


def expansion_step(
    *,
    patient: str,
    clonotypes: Sequence[str],
    sheet: str,
    settings: dict,
    clones_out: str,
    flagged_out: str,
    noise_out: str,
) -> None:
    """One patient's clonotype tables -> wide clone table with calls, flagged clones, noise fits (rule
    ``expansion``)."""
    from tcrtrack.patient import ANNOTATION, CallSettings, analyse_patient

    samples = read_patient_sheet(sheet, patient)
    # only the columns the calls use: the peak memory is these tables plus the wide clone table
    # frequency (relative to the whole sample) reveals truncated exports
    tables = {
        Path(p).name.removesuffix(".parquet"): pl.read_parquet(p, columns=[*ANNOTATION, "count", "frequency"])
        for p in clonotypes
    }
    calls = analyse_patient(samples, tables, settings=CallSettings(**settings))
    for note in calls.notes:
        log.warning("%s: %s", patient, note)
    write_parquet(calls.clones.with_columns(patient=pl.lit(patient)), clones_out)
    write_tsv(flagged_table(calls.flagged, patient=patient, samples=samples), flagged_out)
    write_tsv(calls.noise.select(pl.lit(patient).alias("patient"), pl.all()), noise_out)
    log.info(
        "%s: %d clones, %d expanded in blood, %d accumulating in tumour, %d flagged",
        patient,
        calls.clones.height,
        calls.clones["expanded_in_blood"].sum(),
        calls.clones["accumulates_in_tumor"].sum(),
        calls.flagged.height,
    )


def expansion_cohort_step(
    *, clones: Sequence[str], flagged: Sequence[str], sheet: str, flagged_out: str, summary_out: str
) -> None:
    """Per-patient outputs -> cohort flagged clones and per-patient summary (with patient metadata)."""
    samples = read_sample_sheet(sheet, check_files=False)
    write_tsv(cohort_flagged(read_tsv(p) for p in flagged), flagged_out)
    rows = []
    for path in clones:
        table = pl.read_parquet(path)
        patient = table["patient"][0]
        rows.append({"patient": patient, **expansion_summary(table, patient_rows(samples, patient))})
    summary = pl.DataFrame(rows).join(patient_metadata(samples), on="patient", how="left")
    write_tsv(summary, summary_out)


# --- Overlap, figures (figures.smk, overlap.smk) -------------------------------------------------------


def overlap_step(*, patient: str, clonotypes: Sequence[str], sheet: str, out: str) -> None:
    """One patient's clonotype tables -> pairwise overlap of its samples (``overlap.tsv``)."""
    from tcrtrack.overlap import patient_overlap

    samples = read_patient_sheet(sheet, patient)
    tables = {
        Path(p).name.removesuffix(".parquet"): pl.read_parquet(p, columns=["clone_id", "count"]) for p in clonotypes
    }
    table = patient_overlap(samples, tables)
    write_tsv(table.select(pl.lit(patient).alias("patient"), pl.all()), out)
    log.info("%s: overlap of %d sample pairs", patient, table.height)


def overlap_cohort_step(
    *, overlaps: Sequence[str], clones: Sequence[str], overlap_out: str, public_out: str, min_patients: int = 2
) -> None:
    """Every patient's overlap table -> ``cohort/overlap.tsv``; every patient's clones -> public clones."""
    from tcrtrack.overlap import public_clones

    tables = [read_tsv(p) for p in overlaps]
    write_tsv(pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame(), overlap_out)
    per_patient = {}  # lazy scans: public_clones reads one patient at a time
    for path in clones:
        table = pl.scan_parquet(path)
        names = table.collect_schema().names()
        patient = table.select("patient").head(1).collect().item() if "patient" in names else Path(path).parent.name
        per_patient[patient] = table
    public = public_clones(per_patient, min_patients=min_patients)
    write_tsv(public, public_out)
    log.info(
        "%d public clones (in >= %d of %d patients), %d flagged in some patient",
        public.height,
        min_patients,
        len(per_patient),
        int((public["n_flagged_patients"] > 0).sum()),
    )


def _check_figures(figures: dict[str, str], known: dict[str, str]) -> None:
    unknown = sorted(set(figures) - set(known))
    if unknown:
        raise ValueError(f"unknown figures {unknown}; known: {', '.join(known)}")


def figures_step(
    *,
    patient: str,
    clones: str,
    noise: str,
    overlap: str,
    diversity: Sequence[str],
    sheet: str,
    settings: dict,
    figures: dict[str, str],
) -> None:
    """Draw one patient's figures (rule ``figures``); ``figures`` maps a name of
    :data:`tcrtrack.plots.PATIENT_FIGURES` to its PNG path (the PDF is written next to it)."""
    from tcrtrack.patient import CallSettings
    from tcrtrack.plots import PATIENT_FIGURES
    from tcrtrack.plots.expansion import expansion_scatter
    from tcrtrack.plots.noise import noise_diagnostic
    from tcrtrack.plots.patient import diversity_over_time, overlap_heatmap
    from tcrtrack.plots.style import save_figure
    from tcrtrack.plots.tracking import clone_tracking

    _check_figures(figures, PATIENT_FIGURES)
    samples = read_patient_sheet(sheet, patient)
    calls = CallSettings(**settings)
    table = pl.read_parquet(clones)
    frames = [pl.read_parquet(p) for p in diversity]
    diversity_rows = (
        pl.concat(frames, how="diagonal_relaxed")
        if frames
        else pl.DataFrame(schema={"sample": pl.Utf8, "depth_type": pl.Utf8})
    )
    draw = {
        "overlap_heatmap": lambda: overlap_heatmap(read_tsv(overlap), samples, patient=patient),
        "expansion_scatter": lambda: expansion_scatter(table, samples, patient=patient, settings=calls),
        "clone_tracking": lambda: clone_tracking(table, samples, patient=patient),
        "diversity": lambda: diversity_over_time(diversity_rows, samples, patient=patient),
        "noise_model": lambda: noise_diagnostic(read_tsv(noise), table, samples, patient=patient),
    }
    for name, png in figures.items():
        _, pdf = save_figure(draw[name](), png)
        log.info("%s: wrote %s%s", patient, png, " (+ .pdf)" if pdf else "")


def figures_cohort_step(
    *,
    diversity: str,
    summary: str,
    overlap: str,
    public: str,
    sheet: str,
    group_by: str | None,
    baseline_day: int | None,
    figures: dict[str, str],
    association: str | None = None,
) -> None:
    """Draw the cohort figures (rule ``figures_cohort``); ``figures`` maps a name of
    :data:`tcrtrack.plots.COHORT_FIGURES` to its PNG path."""
    from tcrtrack.plots import COHORT_FIGURES
    from tcrtrack.plots.cohort import diversity_trajectories, flagged_by_group, overlap_summary, patient_groups
    from tcrtrack.plots.style import save_figure

    _check_figures(figures, COHORT_FIGURES)
    samples = read_sample_sheet(sheet, check_files=False)
    _, note = patient_groups(samples, group_by)
    if note.startswith("no grouping: "):
        log.warning("cohort figures: %s (config report.group_by)", note.removeprefix("no grouping: "))
    draw = {
        "diversity_trajectories": lambda: diversity_trajectories(read_tsv(diversity), samples, group_by=group_by),
        "flagged_by_group": lambda: flagged_by_group(
            read_tsv(summary), samples, group_by=group_by, association=read_tsv(association) if association else None
        ),
        "overlap_summary": lambda: overlap_summary(
            read_tsv(overlap), samples, public=read_tsv(public), group_by=group_by, baseline_day=baseline_day
        ),
    }
    for name, png in figures.items():
        _, pdf = save_figure(draw[name](), png)
        log.info("cohort: wrote %s%s", png, " (+ .pdf)" if pdf else "")
