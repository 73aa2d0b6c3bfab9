# Input functions of the overlap, figure and report stage (overlap.smk, figures.smk); outputs, targets,
# report labels and captions: tcrtrack.registry (out() and all_targets() in common.smk).
# The report itself: snakemake --report results/report.html (workflow/report/*.rst are its captions).

def patient_overlap_tables(wildcards):
    """Every patient's overlap table (input of the cohort overlap table)."""
    return expand("results/patients/{patient}/overlap.tsv", patient=PATIENTS)


def group_by_column():
    """The sheet column that groups patients in the cohort figures (config report.group_by)."""
    return config["report"]["group_by"]


# cohort analyses (issue 16)
def association_coverage_input(wildcards):
    """The equal-coverage diversity replaces the rarefied one with diversity.mode: coverage (association.smk)."""
    if config["diversity"]["mode"] == "coverage":
        return {"coverage": "results/cohort/diversity_coverage.tsv"}
    return {}
