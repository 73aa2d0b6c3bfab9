# Where each post-treatment biopsy's clones come from (pre-treatment biopsy, baseline blood, post-infusion
# blood, nowhere), with the share expected without replacement given the depths; per patient and cohort.


rule clone_origin:
    input:
        clones="results/patients/{patient}/clones.parquet",
        sheet=config["samples"],
    output:
        origin=out("results/patients/{patient}/clone_origin.tsv"),
    log:
        "logs/clone_origin/{patient}.log",
    benchmark:
        "logs/benchmarks/clone_origin/{patient}.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=figures_mem_mb,
        runtime=10,
    params:
        expectation=config["clone_origin"]["expectation"],
        include_product=config["clone_origin"]["include_product"],
        blood_until_biopsy=config["clone_origin"]["blood_until_biopsy"],
    script:
        "../../scripts/clone_origin.py"


rule clone_origin_cohort:
    input:
        origins=per_patient("results/patients/{patient}/clone_origin.tsv"),
        sheet=config["samples"],
    output:
        **pdf_out(figure_pdf="results/cohort/figures/clone_origin.pdf"),
        origin=out("results/cohort/clone_origin.tsv"),
        summary=out("results/cohort/clone_origin_summary.tsv"),
        figure=out("results/cohort/figures/clone_origin.png"),
    log:
        "logs/cohort/clone_origin.log",
    benchmark:
        "logs/benchmarks/cohort/clone_origin.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        group_by=group_by_column(),
    script:
        "../../scripts/clone_origin_cohort.py"
