# Ingest: repertoire file -> clonotype table + QC row (every input row accounted for).


rule ingest:
    input:
        repertoire=repertoire_file,
    output:
        clonotypes="results/clonotypes/{patient}/{sample}.parquet",
        qc="results/qc/{patient}/{sample}.tsv",
    log:
        "logs/ingest/{patient}/{sample}.log",
    benchmark:
        "logs/benchmarks/ingest/{patient}/{sample}.tsv"
    params:
        format=repertoire_format,
        locus=config["ingest"]["locus"],
        productive_only=config["ingest"]["productive_only"],
        min_junction_aa_length=config["ingest"]["min_junction_aa_length"],
        species=config["ingest"]["species"],
        definition=config["clonotype"]["definition"],
    group:
        "ingest"
    threads: 1
    resources:
        mem_mb=ingest_mem_mb,
        runtime=ingest_runtime,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/ingest.py"


rule qc_cohort:
    input:
        qc=per_sample("results/qc/{patient}/{sample}.tsv"),
        sheet=config["samples"],
    output:
        qc=report("results/cohort/qc.tsv", category="Cohort", labels={"table": "QC"}),
    log:
        "logs/cohort/qc.log",
    benchmark:
        "logs/benchmarks/cohort/qc.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/qc_cohort.py"


rule provenance:
    input:
        sheet=config["samples"],
        repertoires=samples["path"].to_list(),
    output:
        provenance="results/provenance.json",
    log:
        "logs/cohort/provenance.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/provenance.py"
