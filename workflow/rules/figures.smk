# Figures (PNG for viewing; PDF for papers with config report.pdf): per patient and for the cohort. Each PNG
# is in the report (snakemake --report results/report.html) with its caption from workflow/report/. Input
# functions: common.smk. rule figures -> scripts/figures.py -> tcrtrack.pipeline.figures_step ->
# tcrtrack.plots.*; rule figures_cohort -> scripts/figures_cohort.py -> tcrtrack.pipeline.figures_cohort_step.
# A job of its own, apart from the calls: a change of figure settings never re-runs the calls.


rule figures:
    input:
        clones="results/patients/{patient}/clones.parquet",
        noise="results/patients/{patient}/noise_model.tsv",
        overlap="results/patients/{patient}/overlap.tsv",
        diversity="results/diversity/{patient}",
        sheet=config["samples"],
    output:
        **pdf_out(overlap_heatmap_pdf="results/patients/{patient}/figures/overlap_heatmap.pdf"),
        **pdf_out(expansion_scatter_pdf="results/patients/{patient}/figures/expansion_scatter.pdf"),
        **pdf_out(clone_tracking_pdf="results/patients/{patient}/figures/clone_tracking.pdf"),
        **pdf_out(diversity_pdf="results/patients/{patient}/figures/diversity.pdf"),
        **pdf_out(noise_model_pdf="results/patients/{patient}/figures/noise_model.pdf"),
        overlap_heatmap=out("results/patients/{patient}/figures/overlap_heatmap.png"),
        expansion_scatter=out("results/patients/{patient}/figures/expansion_scatter.png"),
        clone_tracking=out("results/patients/{patient}/figures/clone_tracking.png"),
        diversity=out("results/patients/{patient}/figures/diversity.png"),
        noise_model=out("results/patients/{patient}/figures/noise_model.png"),
    log:
        "logs/figures/{patient}.log",
    benchmark:
        "logs/benchmarks/figures/{patient}.tsv"
    group:
        "report"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=figures_mem_mb,
        runtime=20,
    params:
        diversity=patient_sample_files("results/diversity/{patient}/{sample}.parquet"),
        settings=call_settings(),
    script:
        "../../scripts/figures.py"


rule figures_cohort:
    input:
        diversity="results/cohort/diversity.tsv",
        summary="results/cohort/expansion_summary.tsv",
        overlap="results/cohort/overlap.tsv",
        public="results/cohort/public_clones.tsv",
        association="results/cohort/association.tsv",  # p-values on flagged_by_group
        sheet=config["samples"],
    output:
        **pdf_out(diversity_trajectories_pdf="results/cohort/figures/diversity_trajectories.pdf"),
        **pdf_out(flagged_by_group_pdf="results/cohort/figures/flagged_by_group.pdf"),
        **pdf_out(overlap_summary_pdf="results/cohort/figures/overlap_summary.pdf"),
        diversity_trajectories=out("results/cohort/figures/diversity_trajectories.png"),
        flagged_by_group=out("results/cohort/figures/flagged_by_group.png"),
        overlap_summary=out("results/cohort/figures/overlap_summary.png"),
    log:
        "logs/figures/cohort.log",
    benchmark:
        "logs/benchmarks/cohort/figures.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        group_by=group_by_column(),
        baseline_day=config["expansion"]["baseline_day"],
    script:
        "../../scripts/figures_cohort.py"
