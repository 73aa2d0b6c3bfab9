# Provenance of a run: tcrtrack's version, the config and the checksums of every input file.
# rule provenance -> scripts/provenance.py -> tcrtrack.provenance.write_provenance


rule provenance:
    input:
        sheet=config["samples"],
        repertoires=samples["path"].to_list(),
        databases=annotation_database_files(),  # config annotation.databases (specificity.smk)
    output:
        provenance=out("results/provenance.json"),
    log:
        "logs/cohort/provenance.log",
    benchmark:
        "logs/benchmarks/cohort/provenance.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        databases=ANNOTATION_DATABASES,
    script:
        "../../scripts/provenance.py"
