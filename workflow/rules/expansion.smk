# Per patient: blood expansion vs baseline, tumour accumulation vs the pre-treatment biopsy, flags.
# rule expansion -> scripts/expansion.py -> tcrtrack.pipeline.expansion_step -> tcrtrack.patient.analyse_patient
# (tests: tcrtrack.expansion); figures: rule figures (figures.smk) -> tcrtrack.plots.expansion, tcrtrack.plots.tracking.


rule expansion:
    input:
        clonotypes="results/clonotypes/{patient}",
        sheet=config["samples"],
    output:
        clones=out("results/patients/{patient}/clones.parquet"),
        flagged=out("results/patients/{patient}/flagged_clones.tsv"),
        noise=out("results/patients/{patient}/noise_model.tsv"),
    log:
        "logs/expansion/{patient}.log",
    benchmark:
        "logs/benchmarks/expansion/{patient}.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=expansion_mem_mb,
        runtime=expansion_runtime,
    params:
        clonotypes=patient_sample_files("results/clonotypes/{patient}/{sample}.parquet"),
        settings=call_settings(),
    script:
        "../../scripts/expansion.py"


rule expansion_cohort:
    input:
        flagged=expand("results/patients/{patient}/flagged_clones.tsv", patient=PATIENTS),
        clones=expand("results/patients/{patient}/clones.parquet", patient=PATIENTS),
        sheet=config["samples"],
    output:
        flagged=out("results/cohort/flagged_clones.tsv"),
        summary=out("results/cohort/expansion_summary.tsv"),
    log:
        "logs/cohort/expansion.log",
    benchmark:
        "logs/benchmarks/cohort/expansion.tsv"
    conda:
        "../../envs/tcrtrack.yaml"
    threads: 1
    resources:
        mem_mb=cohort_mem_mb,
        runtime=cohort_runtime,
    script:
        "../../scripts/expansion_cohort.py"
