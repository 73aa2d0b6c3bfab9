# Memory (mem_mb) and wall time (runtime, minutes) of the heavy rules, as functions of their input size
# and of the attempt (a job that is retried, e.g. `--retries 2` in the SLURM profile, asks for more).
#
# Calibrated on the peak RSS of the `benchmark:` files (benchmarks/README.md). At 1M clonotypes per
# sample: ingest ~1.2 GB (44 MB gz input per file), diversity ~0.4 GB (34 MB Parquet per sample), the
# calls of a 7-sample patient ~2.3 GB (240 MB of Parquet), the cohort gather ~1.6 GB (a 127 MB clones
# table). The formulas ask for ~1.4-2x the measured peak at 300k and 1M clonotypes, and multiply it by
# the attempt on each retry.
# Input files that do not exist yet (outputs of upstream jobs) make Snakemake defer the evaluation
# to when the job is ready. Local runs ignore runtime and only use mem_mb if `--resources mem_mb=N`.
import os

GZIP_RATIO = 4.5  # an AIRR TSV decompresses to ~4-5x its gzipped size


def _file_sizes(files, gz_ratio=1.0):
    """Sizes in MB (1e6 bytes) of ``files``; a directory (a per-patient output) counts as its files, a
    gzipped file ``gz_ratio`` times its size. A missing file raises FileNotFoundError, which Snakemake
    takes as "evaluate later"."""
    sizes = []
    for path in map(str, files):
        if os.path.isdir(path):
            sizes.extend(_file_sizes([entry.path for entry in os.scandir(path) if entry.is_file()], gz_ratio))
        else:
            sizes.append(os.path.getsize(path) / 1e6 * (gz_ratio if path.endswith(".gz") else 1.0))
    return sizes


def _megabytes(files, gz_ratio=1.0):
    """Total size of ``files`` in MB (see _file_sizes)."""
    return sum(_file_sizes(files, gz_ratio))


def _scaled(base_mb, per_mb, *, floor=500, cap=256_000):
    """A resource function for jobs that hold all their inputs at once: ``(base + per_mb * input MB) *
    attempt``, clipped to [floor, cap]."""

    def mem_mb(wildcards, input, attempt):
        need = (base_mb + per_mb * _megabytes(input, GZIP_RATIO)) * attempt
        return int(min(max(need, floor), cap))

    return mem_mb


def _gather_mb(base_mb, per_largest_mb, per_total_mb, *, floor=500, cap=256_000):
    """A resource function for jobs that read their inputs one at a time: the largest input dominates."""

    def mem_mb(wildcards, input, attempt):
        sizes = _file_sizes(input, GZIP_RATIO)
        need = (base_mb + per_largest_mb * max(sizes, default=0.0) + per_total_mb * sum(sizes)) * attempt
        return int(min(max(need, floor), cap))

    return mem_mb


def _minutes(base_min, per_gb_min, *, cap=7 * 24 * 60):
    """A runtime function (minutes): ``(base + per_gb * input GB) * attempt``."""

    def runtime(wildcards, input, attempt):
        return int(min((base_min + per_gb_min * _megabytes(input, GZIP_RATIO) / 1000) * attempt, cap))

    return runtime


# ingest (one patient, one file at a time): the largest raw TSV (uncompressed MB) -> string columns
# (Polars' line split, or Arrow's reader) and Polars frames, ~5x the text at peak; runtime grows with
# all the patient's files.
ingest_mem_mb = _gather_mb(400, 8.0, 0.0)
ingest_runtime = _minutes(5, 20)
# diversity (one patient, one sample at a time): a clonotype table (Parquet, ~35 MB per million
# clonotypes) and scikit-bio's ~250 MB.
diversity_mem_mb = _gather_mb(450, 6.0, 0.0)
diversity_runtime = _minutes(5, 200)
# expansion (the patient's calls): every Parquet table of the patient, aligned wide on clone_id (~9x the
# Parquet at peak).
expansion_mem_mb = _scaled(600, 12.0)
expansion_runtime = _minutes(10, 100)
# cohort gather of the patients' wide tables: read one at a time, the largest dominates.
cohort_mem_mb = _gather_mb(1000, 10.0, 0.5)
cohort_runtime = _minutes(10, 20)
# overlap, figures and public clones (overlap.smk, figures.smk). Measured peaks: figures (per patient) 2.6 GB
# from a 127 MB clones.parquet (7 x 1M clonotypes), 1.0 GB from 38 MB (7 x 300k); overlap 1.8 GB from
# 7 x 1M; public clones 2.1 GB from 20 patients' 759 MB of clones tables (one patient at a time).
overlap_mem_mb = _scaled(800, 8.0)
figures_mem_mb = _scaled(1000, 25.0)
public_mem_mb = _scaled(1000, 2.5)


# specificity (specificity.smk; block appended for the specificity stage): per patient the clones table, the
# patient's clonotype tables (calibration matches every sample against the databases) and the databases
# (tidytcells normalisation); the cohort rule holds every sample's nucleotide junctions at once (contamination).
specificity_mem_mb = _scaled(1000, 8.0)
specificity_cohort_mem_mb = _scaled(1000, 4.0)
specificity_runtime = _minutes(10, 60)


# Steps that take seconds and read only small tables run in the Snakemake process itself on a cluster
# (a profile cannot declare local rules; locally this changes nothing).
localrules:
    common_depth,
    ingest_cohort,
    diversity_cohort,
