# Memory (mem_mb) and wall time (runtime, minutes) of the heavy rules, as functions of their input size
# and of the attempt (a job that is retried, e.g. `--retries 2` in the SLURM profile, asks for more).
#
# Calibrated on peak RSS measured with `benchmark:` files (benchmarks/README.md): at 1M clonotypes an
# ingest job peaks at ~1 GB, diversity ~0.4 GB and a 7-sample patient ~2.3 GB; the formulas below ask
# for about 1.5x the measured peak plus the interpreter's ~300 MB, and double it on each retry.
# Input files that do not exist yet (outputs of upstream jobs) make Snakemake defer the evaluation
# to when the job is ready. Local runs ignore runtime and only use mem_mb if `--resources mem_mb=N`.
import os

GZIP_RATIO = 4.5  # an AIRR TSV decompresses to ~4-5x its gzipped size


def _megabytes(files, gz_ratio=1.0):
    """Total size of ``files`` in MB (1e6 bytes); gzipped files count ``gz_ratio`` times their size.

    A missing file raises FileNotFoundError, which Snakemake takes as "evaluate later"."""
    total = 0.0
    for path in files:
        size = os.path.getsize(path) / 1e6
        total += size * (gz_ratio if str(path).endswith(".gz") else 1.0)
    return total


def _scaled(base_mb, per_mb, *, floor=500, cap=256_000):
    """A resource function: ``(base + per_mb * input MB) * attempt``, clipped to [floor, cap]."""

    def mem_mb(wildcards, input, attempt):
        need = (base_mb + per_mb * _megabytes(input, GZIP_RATIO)) * attempt
        return int(min(max(need, floor), cap))

    return mem_mb


def _minutes(base_min, per_gb_min, *, cap=7 * 24 * 60):
    """A runtime function (minutes): ``(base + per_gb * input GB) * attempt``."""

    def runtime(wildcards, input, attempt):
        return int(min((base_min + per_gb_min * _megabytes(input, GZIP_RATIO) / 1000) * attempt, cap))

    return runtime


# ingest: the raw TSV (uncompressed MB) -> Arrow strings + Polars frames: ~6x the text at peak.
ingest_mem_mb = _scaled(400, 8.0)
ingest_runtime = _minutes(5, 20)
# diversity: one clonotype table (Parquet, ~20 MB per million clonotypes); rarefaction copies the counts.
diversity_mem_mb = _scaled(600, 15.0)
diversity_runtime = _minutes(5, 200)
# patient calls: every Parquet table of the patient, aligned wide on clone_id (~100 bytes/clone/sample).
patient_mem_mb = _scaled(800, 25.0)
patient_runtime = _minutes(10, 100)
# cohort gather of the patients' wide tables: read one at a time, the largest dominates.
cohort_mem_mb = _scaled(1000, 4.0)
cohort_runtime = _minutes(10, 20)


# Steps that take seconds and read only small tables run in the Snakemake process itself on a cluster
# (a profile cannot declare local rules; locally this changes nothing).
localrules:
    common_depth,
    qc_cohort,
    diversity_cohort,
