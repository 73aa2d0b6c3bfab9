# V, J and V-J gene usage and CDR3 spectratype per sample, Jensen-Shannon divergence between a patient's
# samples, and the comparisons flagged vs background, product vs baseline blood, post vs pre biopsy.


rule gene_usage:
    input:
        clonotypes="results/clonotypes/{patient}",
        clones="results/patients/{patient}/clones.parquet",
        sheet=config["samples"],
    output:
        **pdf_out(heatmap_pdf="results/patients/{patient}/figures/gene_usage.pdf"),
        **pdf_out(spectratype_pdf="results/patients/{patient}/figures/spectratype.pdf"),
        usage=out("results/patients/{patient}/gene_usage.tsv"),
        spectratype=out("results/patients/{patient}/spectratype.tsv"),
        divergence=out("results/patients/{patient}/usage_divergence.tsv"),
        comparisons=out("results/patients/{patient}/usage_comparisons.tsv"),
        qc=out("results/patients/{patient}/gene_usage_qc.tsv"),
        heatmap=out("results/patients/{patient}/figures/gene_usage.png"),
        spectratype_figure=out("results/patients/{patient}/figures/spectratype.png"),
    log:
        "logs/gene_usage/{patient}.log",
    benchmark:
        "logs/benchmarks/gene_usage/{patient}.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=figures_mem_mb,
        runtime=20,
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
        ambiguous=config["gene_usage"]["ambiguous"],
        baseline_day=config["expansion"]["baseline_day"],
    script:
        "../../scripts/gene_usage.py"


rule gene_usage_cohort:
    input:
        usage=per_patient("results/patients/{patient}/gene_usage.tsv"),
        qc=per_patient("results/patients/{patient}/gene_usage_qc.tsv"),
        sheet=config["samples"],
    output:
        **pdf_out(heatmap_pdf="results/cohort/figures/v_usage.pdf"),
        usage=out("results/cohort/v_usage.tsv"),
        qc=out("results/cohort/gene_usage_qc.tsv"),
        heatmap=out("results/cohort/figures/v_usage.png"),
    log:
        "logs/cohort/gene_usage.log",
    benchmark:
        "logs/benchmarks/cohort/gene_usage.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=cohort_mem_mb,
        runtime=10,
    params:
        top_n=config["gene_usage"]["top_n"],
    script:
        "../../scripts/gene_usage_cohort.py"
