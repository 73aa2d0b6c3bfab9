# Figures (PNG for viewing, PDF for papers): per patient and for the cohort. Each PNG is in the report
# (snakemake --report results/report.html) with its caption from workflow/report/. Input functions and
# targets: report.smk.


rule patient_figures:
    input:
        clones="results/patients/{patient}/clones.parquet",
        noise="results/patients/{patient}/noise_model.tsv",
        overlap="results/patients/{patient}/overlap.tsv",
        diversity="results/diversity/{patient}",
        sheet=config["samples"],
    output:
        overlap_heatmap=report(
            "results/patients/{patient}/figures/overlap_heatmap.png",
            caption="../report/overlap_heatmap.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "overlap", "figure": "clone overlap heatmap"},
        ),
        overlap_heatmap_pdf="results/patients/{patient}/figures/overlap_heatmap.pdf",
        expansion_scatter=report(
            "results/patients/{patient}/figures/expansion_scatter.png",
            caption="../report/expansion_scatter.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "expansion", "figure": "expansion scatter"},
        ),
        expansion_scatter_pdf="results/patients/{patient}/figures/expansion_scatter.pdf",
        clone_tracking=report(
            "results/patients/{patient}/figures/clone_tracking.png",
            caption="../report/clone_tracking.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "flagged clones", "figure": "clone tracking"},
        ),
        clone_tracking_pdf="results/patients/{patient}/figures/clone_tracking.pdf",
        diversity=report(
            "results/patients/{patient}/figures/diversity.png",
            caption="../report/diversity.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "diversity", "figure": "diversity over time"},
        ),
        diversity_pdf="results/patients/{patient}/figures/diversity.pdf",
        noise_model=report(
            "results/patients/{patient}/figures/noise_model.png",
            caption="../report/noise_model.rst",
            category="Patients",
            subcategory="{patient}",
            labels={"patient": "{patient}", "stage": "expansion", "figure": "noise model"},
        ),
        noise_model_pdf="results/patients/{patient}/figures/noise_model.pdf",
    log:
        "logs/figures/{patient}.log",
    benchmark:
        "logs/benchmarks/figures/{patient}.tsv"
    params:
        diversity=patient_sample_files("results/diversity/{patient}/{sample}.parquet"),
        settings=call_settings(),
    group:
        "report"
    threads: 1
    resources:
        mem_mb=figures_mem_mb,
        runtime=20,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/patient_figures.py"


rule cohort_figures:
    input:
        diversity="results/cohort/diversity.tsv",
        summary="results/cohort/expansion_summary.tsv",
        overlap="results/cohort/overlap.tsv",
        public="results/cohort/public_clones.tsv",
        sheet=config["samples"],
    output:
        diversity_trajectories=report(
            "results/cohort/figures/diversity_trajectories.png",
            caption="../report/diversity_trajectories.rst",
            category="Cohort",
            labels={"stage": "diversity", "figure": "diversity trajectories"},
        ),
        diversity_trajectories_pdf="results/cohort/figures/diversity_trajectories.pdf",
        flagged_by_group=report(
            "results/cohort/figures/flagged_by_group.png",
            caption="../report/flagged_by_group.rst",
            category="Cohort",
            labels={"stage": "flagged clones", "figure": "flagged clones by group"},
        ),
        flagged_by_group_pdf="results/cohort/figures/flagged_by_group.pdf",
        overlap_summary=report(
            "results/cohort/figures/overlap_summary.png",
            caption="../report/overlap_summary.rst",
            category="Cohort",
            labels={"stage": "overlap", "figure": "overlap summary"},
        ),
        overlap_summary_pdf="results/cohort/figures/overlap_summary.pdf",
    log:
        "logs/figures/cohort.log",
    benchmark:
        "logs/benchmarks/cohort/figures.tsv"
    params:
        group_by=group_by_column(),
        baseline_day=config["expansion"]["baseline_day"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/tcrtrack.yaml"
    script:
        "../../scripts/cohort_figures.py"
