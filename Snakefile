# tcrtrack: find the T-cell clones a cell therapy sets in motion.
# Run: snakemake --cores 2   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/diversity.smk"
include: "workflow/rules/expansion.smk"
include: "workflow/rules/overlap.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/kinetics.smk"
include: "workflow/rules/specificity.smk"
# cohort analyses (issue 16)
include: "workflow/rules/clone_origin.smk"
include: "workflow/rules/gene_usage.smk"
include: "workflow/rules/diversity_curves.smk"
include: "workflow/rules/association.smk"


rule all:
    default_target: True
    input:
        all_targets(),  # every output of tcrtrack.registry
