# Ingest: one patient's repertoire files -> a clonotype table per sample + QC rows (every input row
# accounted for). One job per patient: a fresh Python per sample would cost more than the work itself.


rule ingest:
    input:
        repertoires=patient_repertoires,
    output:
        clonotypes=out("results/clonotypes/{patient}"),  # {sample}.parquet for each sample
        qc=out("results/qc/{patient}.tsv"),
    log:
        "logs/ingest/{patient}.log",
    benchmark:
        "logs/benchmarks/ingest/{patient}.tsv"
    group:
        "ingest"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=ingest_mem_mb,
        runtime=ingest_runtime,
    params:
        samples=patient_samples,
        formats=patient_formats,
        locus=config["ingest"]["locus"],
        productive_only=config["ingest"]["productive_only"],
        min_junction_aa_length=config["ingest"]["min_junction_aa_length"],
        species=config["ingest"]["species"],
        definition=config["clonotype"]["definition"],
    script:
        "../../scripts/ingest.py"


rule ingest_cohort:
    input:
        qc=per_patient("results/qc/{patient}.tsv"),
        sheet=config["samples"],
    output:
        qc=out("results/cohort/qc.tsv"),
    log:
        "logs/cohort/qc.log",
    benchmark:
        "logs/benchmarks/cohort/qc.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/ingest_cohort.py"
