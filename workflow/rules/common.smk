# Sample sheet, config validation, input functions and targets of every stage. Outputs, report labels and
# captions: tcrtrack.registry (out() and all_targets() below). The report itself: snakemake --report
# results/report.html (workflow/report/*.rst are its captions).
import sys
from pathlib import Path

from snakemake.utils import validate

from tcrtrack import registry
from tcrtrack.errors import SampleSheetError
from tcrtrack.samplesheet import config_problem, load_schema, read_sample_sheet
from tcrtrack.samplesheet import patient_rows as sheet_patient_rows

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


def patient_rows(wildcards):
    """The sheet rows of the patient named by the wildcards, in sheet order."""
    rows = sheet_patient_rows(samples, wildcards.patient)
    if rows.height == 0:
        raise ValueError(f"no patient {wildcards.patient} in {config['samples']}")
    return rows


def patient_repertoires(wildcards):
    """The repertoire files of the patient, one per sample (input of the per-patient ingest job)."""
    return patient_rows(wildcards)["path"].to_list()


def patient_formats(wildcards):
    return patient_rows(wildcards)["format"].to_list()


def patient_samples(wildcards):
    return patient_rows(wildcards)["sample"].to_list()


def per_sample(pattern):
    """Expand a {patient}/{sample} pattern over every sample of the sheet."""
    return [pattern.format(patient=p, sample=s) for s, p in SAMPLE_PATIENT.items()]


def per_patient(pattern):
    """Expand a {patient} pattern over every patient of the sheet."""
    return [pattern.format(patient=p) for p in PATIENTS]


def patient_sample_files(pattern):
    """A params function: ``pattern`` ({patient}/{sample}) for every sample of the wildcards' patient.

    Per-sample tables live in per-patient output directories (``directory()`` outputs of the ingest and
    diversity jobs); the steps get the file names of the samples as a parameter."""

    def files(wildcards):
        return [pattern.format(patient=wildcards.patient, sample=name) for name in patient_samples(wildcards)]

    return files


def common_depth_inputs(wildcards):
    """QC tables give the sample totals; a configured depth needs none."""
    if config["diversity"]["depth"] is not None:
        return []
    return per_patient("results/qc/{patient}.tsv")


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
        "flag_fdr": tumor["flag_fdr"],
    }


def out(path):
    """An output of a rule, looked up in tcrtrack.registry (the one list of outputs; an unknown path stops the
    parse): a folder is a directory(), an entry with a report label is a report() with its caption, category
    and labels."""
    entry = registry.lookup(path)
    if entry.kind == "folder":
        return directory(path)
    options = entry.report_options()
    if options is None or path != entry.path:  # a figure's PDF is not in the report
        return path
    if "caption" in options:
        options["caption"] = f"../report/{options['caption']}"
    return report(path, **options)


def pdf_out(**named):
    """A figure's PDF output, written ``**pdf_out(name="....pdf")`` among the outputs. With config report.pdf
    it is ``{name: out(path)}``; without, nothing, so the job neither declares nor writes the PDF (see
    tcrtrack.scripting.run_step)."""
    return {name: out(path) for name, path in named.items()} if config["report"]["pdf"] else {}


def all_targets():
    """Every output of tcrtrack.registry for every patient of the sheet (the input of rule all); a figure's
    PDF only with config report.pdf."""
    return registry.all_files(PATIENTS, pdf=config["report"]["pdf"])


# --- annotation databases (antigen specificity stage: specificity.smk, provenance) ---------------------------


def _annotation_databases():
    """config annotation.databases with each path resolved against the sample sheet's folder (as the sheet's
    repertoire paths are); a missing file stops the parse with one line."""
    resolved = []
    for index, entry in enumerate(config["annotation"]["databases"]):
        path = (Path(config["samples"]).parent / entry["path"]).resolve()
        if not path.is_file():
            sys.exit(
                f"Error in the configuration: config key 'annotation.databases.{index}.path' is "
                f"{entry['path']!r}: {path} is not a file. Fix: give an existing {entry['format']} file, "
                "absolute or relative to the sample sheet's folder"
            )
        resolved.append({"name": entry["path"], "path": str(path), "format": entry["format"]})
    return resolved


ANNOTATION_DATABASES = _annotation_databases()


def annotation_database_files():
    """The database files (inputs of the specificity and provenance rules: a changed file reruns them)."""
    return [entry["path"] for entry in ANNOTATION_DATABASES]


def annotation_settings():
    """The annotation block of the config (everything but the databases), for the specificity steps."""
    return {key: value for key, value in config["annotation"].items() if key != "databases"}


# --- overlap, figures and association (overlap.smk, figures.smk, association.smk) -----------------------------


def patient_overlap_tables(wildcards):
    """Every patient's overlap table (input of the cohort overlap table)."""
    return expand("results/patients/{patient}/overlap.tsv", patient=PATIENTS)


def group_by_column():
    """The sheet column that groups patients in the cohort figures (config report.group_by)."""
    return config["report"]["group_by"]


# cohort analyses (issue 16)
def association_coverage_input(wildcards):
    """The equal-coverage diversity replaces the rarefied one with diversity.mode: coverage (association.smk)."""
    if config["diversity"]["mode"] == "coverage":
        return {"coverage": "results/cohort/diversity_coverage.tsv"}
    return {}
