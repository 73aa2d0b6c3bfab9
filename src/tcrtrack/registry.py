"""The one list of the workflow's outputs: every file a rule writes, what it holds and where it shows.

Who reads it: the rules (``out()`` in ``workflow/rules/common.smk`` looks every output path up here and
adds its report entry: category, labels and caption), ``rule all`` (every entry, expanded over the
sheet's patients), ``tcrtrack run --patient`` (the patient's entries), ``tcrtrack show`` (paths and
meanings), :data:`tcrtrack.plots.PATIENT_FIGURES` / ``COHORT_FIGURES`` (the figures the figure rules
draw) and the report's overview text (its figure lists come from the report labels set here).
``tests/test_registry.py`` checks that the rules of the workflow produce exactly these files.

Paths are relative to the run folder; ``{patient}`` is the patient wildcard. A figure's ``path`` is its
PNG; with config ``report.pdf`` the rule also writes a PDF next to it (:attr:`Output.files`; the targets list it
only then: ``pdf=True`` of :meth:`Output.format`, :func:`patient_files`, :func:`all_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Scope = Literal["patient", "cohort"]
Kind = Literal["table", "figure", "folder", "file"]


@dataclass(frozen=True)
class Output:
    path: str
    """Path template (relative to the run folder; ``{patient}`` for per-patient outputs)."""
    scope: Scope
    kind: Kind
    """``table`` (TSV/Parquet), ``figure`` (PNG, + PDF with ``report.pdf``), ``folder`` (one file per sample) or
    ``file``."""
    stage: str
    """Analysis stage: ingest, diversity, expansion, flagged clones, overlap, kinetics, provenance, specificity,
    clone origin, gene usage, association."""
    rule: str
    """The Snakemake rule that writes it."""
    meaning: str
    """One line: what it holds."""
    label: str | None = None
    """Name in the HTML report; ``None``: not in the report."""
    caption: str | None = None
    """Caption file in ``workflow/report/`` (figures always have one)."""

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem if self.kind != "folder" else PurePosixPath(self.path).name

    @property
    def files(self) -> tuple[str, ...]:
        """Every path template the rule may write for this entry (a figure: PNG and PDF, the PDF only with
        config ``report.pdf``)."""
        if self.kind == "figure":
            return self.path, str(PurePosixPath(self.path).with_suffix(".pdf"))
        return (self.path,)

    def format(self, patient: str | None = None, *, pdf: bool = False) -> tuple[str, ...]:
        """The files of a run, with the patient filled in (cohort outputs ignore ``patient``): :attr:`files`,
        a figure's PDF only with ``pdf`` (config ``report.pdf``)."""
        files = self.files if pdf else self.files[:1]
        if self.scope == "patient":
            if patient is None:
                raise ValueError(f"{self.path} is per patient: give the patient")
            return tuple(f.format(patient=patient) for f in files)
        return files

    def report_options(self) -> dict[str, object] | None:
        """Keyword arguments of Snakemake's ``report()`` (caption relative to workflow/report/), or None."""
        if self.label is None:
            return None
        labels: dict[str, str] = {"patient": "{patient}"} if self.scope == "patient" else {}
        labels |= {"stage": self.stage, ("figure" if self.kind == "figure" else "table"): self.label}
        options: dict[str, object] = {"category": "Patients" if self.scope == "patient" else "Cohort", "labels": labels}
        if self.scope == "patient":
            options["subcategory"] = "{patient}"
        if self.caption is not None:
            options["caption"] = self.caption
        return options


P = "results/patients/{patient}"
C = "results/cohort"

# One row per output, wrapped at 120 columns after the rule; laid out by hand, so ruff format leaves it alone.
# fmt: off
OUTPUTS: tuple[Output, ...] = (
    # ingest
    Output("results/clonotypes/{patient}", "patient", "folder", "ingest", "ingest",
           "one Parquet per sample: clonotypes with count, frequency and gene calls"),
    Output("results/qc/{patient}.tsv", "patient", "table", "ingest", "ingest",
           "QC per sample: input rows/counts, kept and every drop reason"),
    Output(f"{C}/qc.tsv", "cohort", "table", "ingest", "ingest_cohort",
           "every sample's QC row with the sheet's metadata", label="QC"),
    Output("results/provenance.json", "cohort", "file", "provenance", "provenance",
           "versions, configuration and SHA-256 of the sheet and every input"),
    # diversity
    Output("results/diversity/common_depth.txt", "cohort", "file", "diversity", "common_depth",
           "the rarefaction depth of every sample (common per compartment by default)"),
    Output("results/diversity/{patient}", "patient", "folder", "diversity", "diversity",
           "one Parquet per sample: diversity at full depth and rarefied"),
    Output(f"{C}/diversity.tsv", "cohort", "table", "diversity", "diversity_cohort",
           "diversity of every sample, full depth and rarefied", label="diversity"),
    # expansion and tumour accumulation
    Output(f"{P}/clones.parquet", "patient", "table", "expansion", "expansion",
           "every clone: counts, frequencies and statistics in every sample"),
    Output(f"{P}/flagged_clones.tsv", "patient", "table", "flagged clones", "expansion",
           "flagged clones with their evidence, strongest first", label="flagged clones"),
    Output(f"{P}/noise_model.tsv", "patient", "table", "expansion", "expansion",
           "fitted noise model of every comparison"),
    Output(f"{C}/flagged_clones.tsv", "cohort", "table", "flagged clones", "expansion_cohort",
           "all patients' flagged clones", label="flagged clones"),
    Output(f"{C}/expansion_summary.tsv", "cohort", "table", "expansion", "expansion_cohort",
           "per patient: expanded, new, accumulating and flagged clones", label="expansion summary"),
    # overlap
    Output(f"{P}/overlap.tsv", "patient", "table", "overlap", "overlap",
           "clone overlap between every two samples", label="sample overlap", caption="overlap_table.rst"),
    Output(f"{C}/overlap.tsv", "cohort", "table", "overlap", "overlap_cohort",
           "every patient's sample overlaps", label="sample overlap", caption="overlap_table.rst"),
    Output(f"{C}/public_clones.tsv", "cohort", "table", "overlap", "overlap_cohort",
           "clones shared by two or more patients", label="public clones", caption="public_clones.rst"),
    # figures
    Output(f"{P}/figures/overlap_heatmap.png", "patient", "figure", "overlap", "figures",
           "clone overlap (Morisita–Horn) between every two samples", label="clone overlap heatmap",
           caption="overlap_heatmap.rst"),
    Output(f"{P}/figures/expansion_scatter.png", "patient", "figure", "expansion", "figures",
           "baseline vs post-infusion blood frequency, expanded/new/flagged clones highlighted",
           label="expansion scatter", caption="expansion_scatter.rst"),
    Output(f"{P}/figures/clone_tracking.png", "patient", "figure", "flagged clones", "figures",
           "flagged and top expanded clones across blood days and tumour biopsies", label="clone tracking",
           caption="clone_tracking.rst"),
    Output(f"{P}/figures/diversity.png", "patient", "figure", "diversity", "figures",
           "clonality and Shannon entropy over time, full depth and rarefied", label="diversity over time",
           caption="diversity.rst"),
    Output(f"{P}/figures/noise_model.png", "patient", "figure", "expansion", "figures",
           "fitted null noise by abundance and observed vs expected spread per comparison", label="noise model",
           caption="noise_model.rst"),
    Output(f"{C}/figures/diversity_trajectories.png", "cohort", "figure", "diversity", "figures_cohort",
           "clonality and Shannon entropy over time, every patient, by group", label="diversity trajectories",
           caption="diversity_trajectories.rst"),
    Output(f"{C}/figures/flagged_by_group.png", "cohort", "figure", "flagged clones", "figures_cohort",
           "expanded and flagged clones and the flagged clones' tumour share per patient, by group",
           label="flagged clones by group", caption="flagged_by_group.rst"),
    Output(f"{C}/figures/overlap_summary.png", "cohort", "figure", "overlap", "figures_cohort",
           "blood and tumour overlap over time and blood–tumour overlap, every patient", label="overlap summary",
           caption="overlap_summary.rst"),
    # kinetics
    Output(f"{P}/kinetics.tsv", "patient", "table", "kinetics", "kinetics",
           "peak, last detection and half-life of flagged, expanded and top product clones"),
    Output(f"{P}/product_persistence.tsv", "patient", "table", "kinetics", "kinetics",
           "product clones detected in blood per day, observed vs expected from depth"),
    Output(f"{P}/figures/kinetics.png", "patient", "figure", "kinetics", "kinetics",
           "frequency over time of the followed clones, with half-lives", label="clone kinetics",
           caption="kinetics.rst"),
    Output(f"{P}/figures/persistence.png", "patient", "figure", "kinetics", "kinetics",
           "the product's share of blood and its clones detected vs expected", label="product persistence",
           caption="persistence.rst"),
    Output(f"{C}/kinetics.tsv", "cohort", "table", "kinetics", "kinetics_cohort",
           "every patient's clone kinetics", label="clone kinetics"),
    Output(f"{C}/kinetics_summary.tsv", "cohort", "table", "kinetics", "kinetics_cohort",
           "per patient: median half-life and share still detected", label="kinetics summary"),
    Output(f"{C}/product_persistence.tsv", "cohort", "table", "kinetics", "kinetics_cohort",
           "every patient's product persistence"),
    Output(f"{C}/figures/kinetics.png", "cohort", "figure", "kinetics", "kinetics_cohort",
           "half-lives of flagged, expanded and product clones, every patient", label="clone half-lives",
           caption="kinetics.rst"),
    Output(f"{C}/figures/persistence.png", "cohort", "figure", "kinetics", "kinetics_cohort",
           "the product's share of blood over time, every patient", label="product persistence",
           caption="persistence.rst"),
    # specificity (antigen annotation, specificity groups, Pgen, convergence, contamination: specificity.smk)
    Output(f"{P}/annotation.tsv", "patient", "table", "specificity", "specificity",
           "every database hit of the flagged, blood-expanded, tumour-accumulating and top product/tumour clones",
           label="antigen annotation", caption="specificity_annotation.rst"),
    Output(f"{P}/specificity.tsv", "patient", "table", "specificity", "specificity",
           "per clone that matters: known specificity, viral bystander, Pgen (flagged clones) and convergence",
           label="clone specificity", caption="specificity_clones.rst"),
    Output(f"{P}/annotation_calibration.tsv", "patient", "table", "specificity", "specificity",
           "per sample and match mode: database hit rate beside the OLGA false-annotation rate",
           label="annotation calibration", caption="specificity_calibration.rst"),
    Output(f"{C}/specificity_groups.tsv", "cohort", "table", "specificity", "specificity_cohort",
           "specificity groups across patients: members, V genes, motif, tumour frequency, annotation",
           label="specificity groups", caption="specificity_groups.rst"),
    Output(f"{C}/flagged_clones_annotated.tsv", "cohort", "table", "specificity", "specificity_cohort",
           "all patients' flagged clones with specificity, group, Pgen, convergence and contamination",
           label="flagged clones annotated", caption="specificity_flagged.rst"),
    Output(f"{C}/annotation_summary.tsv", "cohort", "table", "specificity", "specificity_cohort",
           "per patient: share of flagged clones and of their tumour templates with a viral match",
           label="annotation summary", caption="specificity_summary.rst"),
    Output(f"{C}/contamination_qc.tsv", "cohort", "table", "specificity", "specificity_cohort",
           "per sample: clones whose nucleotide junction is far more frequent in another patient's sample",
           label="contamination QC", caption="specificity_contamination.rst"),
    Output(f"{C}/figures/specificity_groups.png", "cohort", "figure", "specificity", "specificity_cohort",
           "network of specificity groups: clones coloured by patient, sized by tumour frequency",
           label="specificity groups network", caption="specificity_network.rst"),
    # --- cohort analyses (issue 16): clone origin, gene usage, diversity curves, association ---
    # clone origin
    Output(f"{P}/clone_origin.tsv", "patient", "table", "clone origin", "clone_origin",
           "per post-treatment biopsy: clones and templates by origin class, expected shares without replacement"),
    Output(f"{C}/clone_origin.tsv", "cohort", "table", "clone origin", "clone_origin_cohort",
           "every patient's clone-origin classes with the sheet's metadata", label="clone origin",
           caption="clone_origin_table.rst"),
    Output(f"{C}/clone_origin_summary.tsv", "cohort", "table", "clone origin", "clone_origin_cohort",
           "per biopsy: class shares, expected shares and the depth-adjusted share new to the tumour"),
    Output(f"{C}/figures/clone_origin.png", "cohort", "figure", "clone origin", "clone_origin_cohort",
           "origin of each post-treatment biopsy's clones and templates, expected share without replacement",
           label="clone origin", caption="clone_origin.rst"),
    # gene usage and spectratype
    Output(f"{P}/gene_usage.tsv", "patient", "table", "gene usage", "gene_usage",
           "V, J and V-J usage of every sample, by clonotypes and by templates"),
    Output(f"{P}/spectratype.tsv", "patient", "table", "gene usage", "gene_usage",
           "junction-length distribution of every sample and of the flagged clones"),
    Output(f"{P}/usage_divergence.tsv", "patient", "table", "gene usage", "gene_usage",
           "Jensen-Shannon divergence of V usage between every two samples, both weightings"),
    Output(f"{P}/usage_comparisons.tsv", "patient", "table", "gene usage", "gene_usage",
           "V usage of flagged vs background, product vs baseline blood, post vs pre biopsy (Fisher, BH, JSD)",
           label="usage comparisons", caption="usage_comparisons.rst"),
    Output(f"{P}/gene_usage_qc.tsv", "patient", "table", "gene usage", "gene_usage",
           "ambiguous and missing V and J calls per sample (clonotypes and templates)"),
    Output(f"{P}/figures/gene_usage.png", "patient", "figure", "gene usage", "gene_usage",
           "V-gene usage of every sample, by clonotypes and by templates", label="V-gene usage",
           caption="gene_usage.rst"),
    Output(f"{P}/figures/spectratype.png", "patient", "figure", "gene usage", "gene_usage",
           "CDR3 length distribution of every sample, flagged clones overlaid", label="spectratype",
           caption="spectratype.rst"),
    Output(f"{C}/v_usage.tsv", "cohort", "table", "gene usage", "gene_usage_cohort",
           "V usage of every sample of every patient, both weightings, with the sample's class"),
    Output(f"{C}/gene_usage_qc.tsv", "cohort", "table", "gene usage", "gene_usage_cohort",
           "ambiguous and missing gene calls of every sample", label="gene call QC"),
    Output(f"{C}/figures/v_usage.png", "cohort", "figure", "gene usage", "gene_usage_cohort",
           "V-gene usage per patient: baseline blood, product, post-infusion blood, pre and post biopsy",
           label="cohort V-gene usage", caption="v_usage.rst"),
    # coverage-aware diversity curves
    Output(f"{P}/diversity_curves.tsv", "patient", "table", "diversity", "diversity_curves",
           "per sample: interpolated/extrapolated Hill numbers q = 0, 1, 2 and coverage with 95% intervals"),
    Output(f"{P}/figures/diversity_curves.png", "patient", "figure", "diversity", "diversity_curves",
           "rarefaction/extrapolation curves of richness, Shannon and Simpson diversity and coverage",
           label="diversity curves", caption="diversity_curves.rst"),
    Output(f"{C}/diversity_coverage.tsv", "cohort", "table", "diversity", "diversity_curves_cohort",
           "every sample's Hill numbers at one sample coverage per compartment", label="diversity at equal coverage",
           caption="diversity_coverage.rst"),
    # association with response and other sheet columns
    Output(f"{C}/association_metrics.tsv", "cohort", "table", "association", "association",
           "per patient: every metric the association tests, with the sheet's metadata", label="association metrics",
           caption="association_metrics.rst"),
    Output(f"{C}/association.tsv", "cohort", "table", "association", "association",
           "per grouping column and metric: groups, n, medians, effect with 95% CI, p, q, test", label="association",
           caption="association_table.rst"),
    Output(f"{C}/survival.tsv", "cohort", "table", "association", "association",
           "log-rank tests of pfs_days/os_days by group and by flagged count (no rows without survival columns)"),
    Output(f"{C}/figures/association.png", "cohort", "figure", "association", "association",
           "effect of the group on every per-patient metric, with 95% intervals, p and q",
           label="association with groups", caption="association.rst"),
    # --- end of the cohort analyses (issue 16) ---
)
# fmt: on

_BY_FILE: dict[str, Output] = {f: o for o in OUTPUTS for f in o.files}
if len(_BY_FILE) != sum(len(o.files) for o in OUTPUTS):
    raise AssertionError("two registry entries share a path")


def lookup(path: str) -> Output:
    """The entry of a path template (a figure's PDF gives the figure)."""
    try:
        return _BY_FILE[path]
    except KeyError:
        raise KeyError(f"{path} is not in tcrtrack.registry.OUTPUTS: add it there (one entry per output)") from None


def select(*, scope: Scope | None = None, kind: Kind | None = None, rule: str | None = None) -> list[Output]:
    return [
        o
        for o in OUTPUTS
        if (scope is None or o.scope == scope) and (kind is None or o.kind == kind) and (rule is None or o.rule == rule)
    ]


def patient_files(patient: str, *, pdf: bool = False) -> list[str]:
    """Every file of one patient (``tcrtrack run --patient``'s targets); figures' PDFs only with ``pdf``."""
    return [f for o in select(scope="patient") for f in o.format(patient, pdf=pdf)]


def all_files(patients: list[str], *, pdf: bool = False) -> list[str]:
    """Every output of a run over ``patients`` (``rule all``); figures' PDFs only with ``pdf`` (``report.pdf``)."""
    return [
        *(f for p in patients for f in patient_files(p, pdf=pdf)),
        *(f for o in select(scope="cohort") for f in o.format(pdf=pdf)),
    ]
