# Sample sheet, config validation, input functions and targets.
import sys
import polars as pl
from pathlib import Path

from snakemake.utils import validate

from tcrtrack.errors import SampleSheetError
from tcrtrack.samplesheet import config_problem, load_schema, read_sample_sheet


problem = config_problem(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
if problem:
    sys.exit(f"Error in the configuration: {problem}")
validate(config, "../schemas/config.schema.yaml")  # also fills in the schema's defaults

try:
    samples = read_sample_sheet(
        config["samples"],
        schema=load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "samples.schema.yaml"),
    )
except SampleSheetError as error:
    sys.exit(f"Error in the sample sheet: {error}")

SAMPLE_PATIENT = dict(samples.select("sample", "patient").iter_rows())
PATIENTS = samples["patient"].unique(maintain_order=True).to_list()


wildcard_constraints:
    patient="[A-Za-z0-9_-]+",
    sample="[A-Za-z0-9_-]+",


def sample_row(wildcards):
    """The sheet row of the sample named by the wildcards."""
    row = samples.filter(pl.col("sample") == wildcards.sample)
    if row.height == 0 or row["patient"][0] != wildcards.patient:
        raise ValueError(f"no sample {wildcards.sample} of patient {wildcards.patient} in {config['samples']}")
    return row.row(0, named=True)


def repertoire_file(wildcards):
    return sample_row(wildcards)["path"]


def repertoire_format(wildcards):
    return sample_row(wildcards)["format"]


def per_sample(pattern):
    """Expand a {patient}/{sample} pattern over every sample of the sheet."""
    return [pattern.format(patient=p, sample=s) for s, p in SAMPLE_PATIENT.items()]


def common_depth_inputs(wildcards):
    """QC tables give the sample totals; a configured depth needs none."""
    if config["diversity"]["depth"] is not None:
        return []
    return per_sample("results/qc/{patient}/{sample}.tsv")


def patient_clonotypes(wildcards):
    """Every clonotype table of the patient named by the wildcards."""
    names = samples.filter(pl.col("patient") == wildcards.patient)["sample"].to_list()
    return [f"results/clonotypes/{wildcards.patient}/{name}.parquet" for name in names]


def call_settings():
    """The expansion and tumour settings of the config, as keyword arguments of CallSettings."""
    expansion, tumor = config["expansion"], config["tumor"]
    return {
        "model": expansion["model"],
        "fdr": expansion["fdr"],
        "min_log2fc": expansion["min_log2fc"],
        "min_count": expansion["min_count"],
        "pseudocount": expansion["pseudocount"],
        "new_max_frequency": expansion["new_max_frequency"],
        "baseline_day": expansion["baseline_day"],
        "require_new": expansion["flag_new_only"],
        "tumor_min_count": tumor["min_count"],
        "tumor_rule": tumor["rule"],
    }


def kinetics_targets():
    return [
        *expand("results/patients/{patient}/kinetics.tsv", patient=PATIENTS),
        "results/cohort/kinetics_summary.tsv",
    ]


def all_targets():
    return [
        *per_sample("results/clonotypes/{patient}/{sample}.parquet"),
        "results/cohort/qc.tsv",
        "results/cohort/diversity.tsv",
        "results/provenance.json",
        *expand("results/patients/{patient}/clones.parquet", patient=PATIENTS),
        "results/cohort/flagged_clones.tsv",
        "results/cohort/expansion_summary.tsv",
    ]
