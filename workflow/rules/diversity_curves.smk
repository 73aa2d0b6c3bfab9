# Coverage-aware diversity: rarefaction/extrapolation curves of Hill numbers q = 0, 1, 2 with sample
# coverage (the iNEXT estimators) per patient, and every sample at equal coverage per compartment.
# The rarefied values of diversity.smk are left as they are.


rule diversity_curves:
    input:
        clonotypes="results/clonotypes/{patient}",
        sheet=config["samples"],
    output:
        **pdf_out(figure_pdf="results/patients/{patient}/figures/diversity_curves.pdf"),
        curves=out("results/patients/{patient}/diversity_curves.tsv"),
        figure=out("results/patients/{patient}/figures/diversity_curves.png"),
    log:
        "logs/diversity_curves/{patient}.log",
    benchmark:
        "logs/benchmarks/diversity_curves/{patient}.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=diversity_mem_mb,
        runtime=diversity_runtime,
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
        knots=config["diversity"]["curve_knots"],
        n_boot=config["diversity"]["curve_bootstraps"],
        seed=config["diversity"]["seed"],
    script:
        "../../scripts/diversity_curves.py"


rule diversity_curves_cohort:
    input:
        clonotypes=per_patient("results/clonotypes/{patient}"),
        sheet=config["samples"],
    output:
        coverage=out("results/cohort/diversity_coverage.tsv"),
    log:
        "logs/cohort/diversity_coverage.log",
    benchmark:
        "logs/benchmarks/cohort/diversity_coverage.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=diversity_mem_mb,
        runtime=diversity_runtime,
    params:
        clonotypes=per_sample("results/clonotypes/{patient}/{sample}.parquet"),
        n_boot=config["diversity"]["curve_bootstraps"],
        seed=config["diversity"]["seed"],
    script:
        "../../scripts/diversity_curves_cohort.py"
