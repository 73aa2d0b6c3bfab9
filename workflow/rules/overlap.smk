# Clone overlap between each patient's samples, and public clones shared across patients.
# Input functions and targets: report.smk.


rule overlap:
    input:
        clonotypes="results/clonotypes/{patient}",
        sheet=config["samples"],
    output:
        overlap=report(
            "results/patients/{patient}/overlap.tsv",
            caption="../report/overlap_table.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "overlap", "table": "sample overlap"},
        ),
    log:
        "logs/overlap/{patient}.log",
    benchmark:
        "logs/benchmarks/overlap/{patient}.tsv"
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
    group:
        "report"
    threads: 1
    resources:
        mem_mb=overlap_mem_mb,
        runtime=10,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/overlap.py"


rule overlap_cohort:
    input:
        overlaps=patient_overlap_tables,
        clones=expand("results/patients/{patient}/clones.parquet", patient=PATIENTS),
    output:
        overlap=report(
            "results/cohort/overlap.tsv",
            caption="../report/overlap_table.rst",
            category="Cohort",
            labels={"stage": "overlap", "table": "sample overlap"},
        ),
        public=report(
            "results/cohort/public_clones.tsv",
            caption="../report/public_clones.rst",
            category="Cohort",
            labels={"stage": "overlap", "table": "public clones"},
        ),
    log:
        "logs/cohort/overlap.log",
    benchmark:
        "logs/benchmarks/cohort/overlap.tsv"
    params:
        min_patients=2,
    threads: 1
    resources:
        mem_mb=public_mem_mb,
        runtime=20,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/overlap_cohort.py"
