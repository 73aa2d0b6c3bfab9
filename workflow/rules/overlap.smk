# Clone overlap between each patient's samples, and public clones shared across patients.
# Input functions: common.smk; outputs and targets: tcrtrack.registry.


rule overlap:
    input:
        clonotypes="results/clonotypes/{patient}",
        sheet=config["samples"],
    output:
        overlap=out("results/patients/{patient}/overlap.tsv"),
    log:
        "logs/overlap/{patient}.log",
    benchmark:
        "logs/benchmarks/overlap/{patient}.tsv"
    group:
        "report"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=overlap_mem_mb,
        runtime=10,
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
    script:
        "../../scripts/overlap.py"


rule overlap_cohort:
    input:
        overlaps=patient_overlap_tables,
        clones=expand("results/patients/{patient}/clones.parquet", patient=PATIENTS),
    output:
        overlap=out("results/cohort/overlap.tsv"),
        public=out("results/cohort/public_clones.tsv"),
    log:
        "logs/cohort/overlap.log",
    benchmark:
        "logs/benchmarks/cohort/overlap.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=public_mem_mb,
        runtime=20,
    params:
        min_patients=2,
    script:
        "../../scripts/overlap_cohort.py"
