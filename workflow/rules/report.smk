# Input functions and targets of the overlap, figure and report stage (overlap.smk, figures.smk).
# The report itself: snakemake --report results/report.html (workflow/report/*.rst are its captions).
from tcrtrack.plots import COHORT_FIGURES, PATIENT_FIGURES


def patient_overlap_tables(wildcards):
    """Every patient's overlap table (input of the cohort overlap table)."""
    return expand("results/patients/{patient}/overlap.tsv", patient=PATIENTS)


def overlap_targets():
    """The overlap tables, as targets of `all`."""
    return [
        *expand("results/patients/{patient}/overlap.tsv", patient=PATIENTS),
        "results/cohort/overlap.tsv",
        "results/cohort/public_clones.tsv",
    ]


def group_by_column():
    """The sheet column that groups patients in the cohort figures (config report.group_by)."""
    return config["report"]["group_by"]


def figure_targets():
    """Every figure (PNG and PDF) as targets of `all`; names from tcrtrack.plots (PATIENT_FIGURES, COHORT_FIGURES)."""
    return [
        *expand(
            "results/patients/{patient}/figures/{stem}.{ext}",
            patient=PATIENTS,
            stem=list(PATIENT_FIGURES),
            ext=["png", "pdf"],
        ),
        *expand("results/cohort/figures/{stem}.{ext}", stem=list(COHORT_FIGURES), ext=["png", "pdf"]),
    ]


def report_mem_mb(base_mb, per_input_mb):
    """A mem_mb function: ``(base + per_input_mb * input MB) * attempt``, at most 256 GB.

    Measured peaks (benchmarks/README.md): patient figures 2.6 GB from a 127 MB clones.parquet (7 x 1M
    clonotypes), 1.0 GB from 38 MB (7 x 300k); overlap 1.8 GB from 7 x 1M; public clones 2.1 GB from 20
    patients' 759 MB of clones tables (one patient at a time). The factors leave ~1.5x headroom."""

    def mem_mb(wildcards, input, attempt):
        return int(min((base_mb + per_input_mb * _megabytes(input)) * attempt, 256_000))

    return mem_mb

