# Ingest: repertoire file -> clonotype table + QC row (every input row accounted for).


rule ingest:
    input:
        repertoire=repertoire_file,
    output:
        clonotypes="results/clonotypes/{patient}/{sample}.parquet",
        qc="results/qc/{patient}/{sample}.tsv",
    log:
        "logs/ingest/{patient}/{sample}.log",
    params:
        format=repertoire_format,
        locus=config["ingest"]["locus"],
        productive_only=config["ingest"]["productive_only"],
        min_junction_aa_length=config["ingest"]["min_junction_aa_length"],
        definition=config["clonotype"]["definition"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
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
