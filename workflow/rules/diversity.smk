# Diversity per sample at full depth and rarefied to a common depth (one per compartment by default;
# one job per patient), then the cohort table.


rule common_depth:
    input:
        qc=common_depth_inputs,
        sheet=config["samples"],
    output:
        depth=out("results/diversity/common_depth.txt"),
    log:
        "logs/diversity/common_depth.log",
    benchmark:
        "logs/benchmarks/diversity/common_depth.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        configured=config["diversity"]["depth"],
        by_compartment=config["diversity"]["depth_by"] == "compartment",
    script:
        "../../scripts/common_depth.py"


rule diversity:
    input:
        clonotypes="results/clonotypes/{patient}",
        depth="results/diversity/common_depth.txt",
    output:
        diversity=out("results/diversity/{patient}"),  # {sample}.parquet for each sample
    log:
        "logs/diversity/{patient}.log",
    benchmark:
        "logs/benchmarks/diversity/{patient}.tsv"
    group:
        "diversity"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=diversity_mem_mb,
        runtime=diversity_runtime,
    params:
        samples=patient_samples,
        iterations=config["diversity"]["iterations"],
        seed=config["diversity"]["seed"],
    script:
        "../../scripts/diversity.py"


rule diversity_cohort:
    input:
        diversity=per_patient("results/diversity/{patient}"),
        sheet=config["samples"],
    output:
        diversity=out("results/cohort/diversity.tsv"),
    log:
        "logs/cohort/diversity.log",
    benchmark:
        "logs/benchmarks/cohort/diversity.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        tables=per_sample("results/diversity/{patient}/{sample}.parquet"),
    script:
        "../../scripts/diversity_cohort.py"
