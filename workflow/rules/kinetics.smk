# Clone kinetics and product persistence in blood after infusion, per patient and for the cohort.


rule kinetics:
    input:
        clones="results/patients/{patient}/clones.parquet",
        sheet=config["samples"],
    output:
        **pdf_out(kinetics_pdf="results/patients/{patient}/figures/kinetics.pdf"),
        **pdf_out(persistence_pdf="results/patients/{patient}/figures/persistence.pdf"),
        kinetics=out("results/patients/{patient}/kinetics.tsv"),
        persistence=out("results/patients/{patient}/product_persistence.tsv"),
        kinetics_figure=out("results/patients/{patient}/figures/kinetics.png"),
        persistence_figure=out("results/patients/{patient}/figures/persistence.png"),
    log:
        "logs/kinetics/{patient}.log",
    benchmark:
        "logs/benchmarks/kinetics/{patient}.tsv"
    group:
        "report"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        settings=config["kinetics"],
        baseline_day=config["expansion"]["baseline_day"],
    script:
        "../../scripts/kinetics.py"


rule kinetics_cohort:
    input:
        kinetics=expand("results/patients/{patient}/kinetics.tsv", patient=PATIENTS),
        persistence=expand("results/patients/{patient}/product_persistence.tsv", patient=PATIENTS),
        sheet=config["samples"],
    output:
        **pdf_out(kinetics_pdf="results/cohort/figures/kinetics.pdf"),
        **pdf_out(persistence_pdf="results/cohort/figures/persistence.pdf"),
        kinetics=out("results/cohort/kinetics.tsv"),
        summary=out("results/cohort/kinetics_summary.tsv"),
        persistence=out("results/cohort/product_persistence.tsv"),
        kinetics_figure=out("results/cohort/figures/kinetics.png"),
        persistence_figure=out("results/cohort/figures/persistence.png"),
    log:
        "logs/cohort/kinetics.log",
    benchmark:
        "logs/benchmarks/cohort/kinetics.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../../scripts/kinetics_cohort.py"
