# Antigen specificity (issue 15): database hits, Pgen and convergence of the clones that matter, per patient;
# specificity groups across patients, cross-patient contamination and the annotated flagged clones, for the
# cohort. Databases: config annotation.databases (common.smk resolves them; their SHA-256 goes into
# results/provenance.json). Steps: tcrtrack.specificity.steps (per patient), tcrtrack.specificity.cohort_step.


rule specificity:
    input:
        clones="results/patients/{patient}/clones.parquet",
        clonotypes="results/clonotypes/{patient}",
        sheet=config["samples"],
        databases=annotation_database_files(),
    output:
        annotation=out("results/patients/{patient}/annotation.tsv"),
        specificity=out("results/patients/{patient}/specificity.tsv"),
        calibration=out("results/patients/{patient}/annotation_calibration.tsv"),
    log:
        "logs/specificity/{patient}.log",
    benchmark:
        "logs/benchmarks/specificity/{patient}.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=specificity_mem_mb,
        runtime=specificity_runtime,
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
        databases=ANNOTATION_DATABASES,
        settings=annotation_settings(),
    script:
        "../../scripts/specificity.py"


rule specificity_cohort:
    input:
        specificity=expand("results/patients/{patient}/specificity.tsv", patient=PATIENTS),
        flagged="results/cohort/flagged_clones.tsv",
        clonotypes=expand("results/clonotypes/{patient}", patient=PATIENTS),
        sheet=config["samples"],
    output:
        **pdf_out(figure_pdf="results/cohort/figures/specificity_groups.pdf"),
        groups=out("results/cohort/specificity_groups.tsv"),
        flagged=out("results/cohort/flagged_clones_annotated.tsv"),
        summary=out("results/cohort/annotation_summary.tsv"),
        contamination=out("results/cohort/contamination_qc.tsv"),
        figure=out("results/cohort/figures/specificity_groups.png"),
    log:
        "logs/cohort/specificity.log",
    benchmark:
        "logs/benchmarks/cohort/specificity.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=specificity_cohort_mem_mb,
        runtime=specificity_runtime,
    params:
        clonotypes=per_sample("results/clonotypes/{patient}/{sample}.parquet"),
        databases=ANNOTATION_DATABASES,
        settings=annotation_settings(),
    script:
        "../../scripts/specificity_cohort.py"
