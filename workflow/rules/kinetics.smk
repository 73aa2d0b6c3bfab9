# Clone kinetics and product persistence in blood after infusion, per patient and for the cohort.


rule kinetics:
    input:
        clones="results/patients/{patient}/clones.parquet",
        sheet=config["samples"],
    output:
        kinetics=out("results/patients/{patient}/kinetics.tsv"),
        persistence=out("results/patients/{patient}/product_persistence.tsv"),
        kinetics_figure=out("results/patients/{patient}/figures/kinetics.png"),
        **pdf_out(kinetics_pdf="results/patients/{patient}/figures/kinetics.pdf"),
        persistence_figure=out("results/patients/{patient}/figures/persistence.png"),
        **pdf_out(persistence_pdf="results/patients/{patient}/figures/persistence.pdf"),
    log:
        "logs/kinetics/{patient}.log",
    benchmark:
        "logs/benchmarks/kinetics/{patient}.tsv"
    params:
        settings=config["kinetics"],
        baseline_day=config["expansion"]["baseline_day"],
    group:
        "report"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/kinetics.py"


rule kinetics_cohort:
    input:
        kinetics=expand("results/patients/{patient}/kinetics.tsv", patient=PATIENTS),
        persistence=expand("results/patients/{patient}/product_persistence.tsv", patient=PATIENTS),
        sheet=config["samples"],
    output:
        kinetics=out("results/cohort/kinetics.tsv"),
        summary=out("results/cohort/kinetics_summary.tsv"),
        persistence=out("results/cohort/product_persistence.tsv"),
        kinetics_figure=out("results/cohort/figures/kinetics.png"),
        **pdf_out(kinetics_pdf="results/cohort/figures/kinetics.pdf"),
        persistence_figure=out("results/cohort/figures/persistence.png"),
        **pdf_out(persistence_pdf="results/cohort/figures/persistence.pdf"),
    log:
        "logs/cohort/kinetics.log",
    benchmark:
        "logs/benchmarks/cohort/kinetics.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/kinetics_cohort.py"
