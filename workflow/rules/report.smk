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
