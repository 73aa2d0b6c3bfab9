# Clone kinetics and product persistence in blood after infusion, per patient and for the cohort.


rule kinetics:
    input:
        clones="results/patients/{patient}/clones.parquet",
        sheet=config["samples"],
    output:
        kinetics="results/patients/{patient}/kinetics.tsv",
        persistence="results/patients/{patient}/product_persistence.tsv",
        kinetics_figure=report(
            "results/patients/{patient}/figures/kinetics.png",
            caption="../report/kinetics.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "kinetics", "figure": "clone kinetics"},
        ),
        kinetics_pdf="results/patients/{patient}/figures/kinetics.pdf",
        persistence_figure=report(
            "results/patients/{patient}/figures/persistence.png",
            caption="../report/persistence.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "kinetics", "figure": "product persistence"},
        ),
        persistence_pdf="results/patients/{patient}/figures/persistence.pdf",
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
        kinetics=report("results/cohort/kinetics.tsv", category="Cohort", labels={"table": "clone kinetics"}),
        summary=report(
            "results/cohort/kinetics_summary.tsv", category="Cohort", labels={"table": "kinetics summary"}
        ),
        persistence="results/cohort/product_persistence.tsv",
        kinetics_figure=report(
            "results/cohort/figures/kinetics.png",
            caption="../report/kinetics.rst",
            category="Cohort",
            labels={"stage": "kinetics", "figure": "clone half-lives"},
        ),
        kinetics_pdf="results/cohort/figures/kinetics.pdf",
        persistence_figure=report(
            "results/cohort/figures/persistence.png",
            caption="../report/persistence.rst",
            category="Cohort",
            labels={"stage": "kinetics", "figure": "product persistence"},
        ),
        persistence_pdf="results/cohort/figures/persistence.pdf",
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
