# Association of per-patient metrics (expansion counts, tumour share, diversity change, overlap, half-lives,
# clone origin) with report.group_by and the sheet columns of cohort.compare; survival when the sheet has it.
# Input function: common.smk.


rule association:
    input:
        unpack(association_coverage_input),
        expansion="results/cohort/expansion_summary.tsv",
        diversity="results/cohort/diversity.tsv",
        overlap="results/cohort/overlap.tsv",
        kinetics="results/cohort/kinetics_summary.tsv",
        origin="results/cohort/clone_origin_summary.tsv",
        sheet=config["samples"],
    output:
        **pdf_out(figure_pdf="results/cohort/figures/association.pdf"),
        metrics=out("results/cohort/association_metrics.tsv"),
        association=out("results/cohort/association.tsv"),
        survival=out("results/cohort/survival.tsv"),
        figure=out("results/cohort/figures/association.png"),
    log:
        "logs/cohort/association.log",
    benchmark:
        "logs/benchmarks/cohort/association.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        group_by=group_by_column(),
        compare=config["cohort"]["compare"],
        baseline_day=config["expansion"]["baseline_day"],
        n_boot=config["cohort"]["bootstraps"],
        seed=config["cohort"]["seed"],
    script:
        "../../scripts/association.py"
