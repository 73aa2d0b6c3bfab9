# Sample sheet, config validation, input functions and targets.
import sys
import polars as pl
from pathlib import Path

from snakemake.utils import validate

from tcrtrack.errors import SampleSheetError
from tcrtrack.samplesheet import load_schema, read_sample_sheet


validate(config, "../schemas/config.schema.yaml")

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


def all_targets():
    return [
        *per_sample("results/clonotypes/{patient}/{sample}.parquet"),
        "results/cohort/qc.tsv",
        "results/cohort/diversity.tsv",
    ]
