"""Simulate a synthetic cell-therapy cohort with known truth (AIRR TSV + sample sheet).

Design
------
*Repertoire.* Each patient gets ``n_clones`` distinct productive TRB clonotypes drawn
from OLGA's human TRB model (:mod:`tcrtrack.olga_source`), distinct on
(junction_aa, V gene, J gene). True blood frequencies follow a power law: clone weights
are Pareto draws with density ``p(w) ∝ w**-power_law_exponent`` on ``1 <= w <= n**(1/(a-1))``
(truncated at the typical largest of ``n`` draws, so no single draw swamps a repertoire by
chance), so with the default exponent 2.2 a few clones take percents of the repertoire and most clones are seen
once or not at all in a sample. The tumour holds a random quarter of the blood clonotypes
(chosen with probability ∝ sqrt(blood frequency)) plus tumour-resident clonotypes (15% of
``n_clones``, never in blood) with their own, more clonal Pareto weights (exponent
``1 + (power_law_exponent - 1) * 5/6``). About 1.5% non-productive rearrangements
(frameshift ``_`` or stop ``*`` in junction_aa) and 0.3% TRA clonotypes are mixed into
both compartments so that QC has something to filter.

*Planted clones* (``n_planted`` per patient, counts for :data:`CATEGORIES`):

``new_expanded_tumor``
    Blood: at baseline absent (p=0.5) or at a low level ``b ~ logU(1e-5, 1e-4)``; after
    infusion ``b * fold`` (``fold ~ logU(10, 200)``) at a random peak post day, decaying by
    ``r ~ U(0.3, 0.7)`` per post day away from the peak (never below ``b``). Tumour:
    post-treatment biopsies at ``L ~ logU(2e-4, 5e-3)`` (times lognormal(0, 0.25) per
    biopsy); the pre-treatment biopsy at 0 (p=0.5) or ``L / logU(5, 50)``.
``blood_only``
    The same blood trajectory; tumour frequency either 0 or a constant ``logU(1e-4, 1e-3)``
    in every biopsy (present but not enriched).
``tumor_only``
    Blood frequency unchanged (its null value); tumour profile as ``new_expanded_tumor``.

Every other clonotype is null: its true frequency is the same at every timepoint of a
compartment. Planted frequencies are absolute; null clones share the remaining
``1 - sum(planted)`` in fixed proportions (the compositional effect is a few percent).

*Noise model.* Every library (each replicate, timepoint and biopsy) is an independent
draw from the true frequencies ``f``::

    g_i ~ Gamma(shape=1/dispersion, scale=dispersion)   (mean 1, variance dispersion)
    p_i = f_i g_i / sum_k f_k g_k
    N   = round(depth * U(0.8, 1.2))
    counts ~ Multinomial(N, p)

so a clone with expected count ``mu`` has ``Var ≈ mu + dispersion * mu**2`` (negative
binomial, as in edgeR/DESeq2); ``dispersion = 0`` is pure multinomial (Poisson) sampling.
Technical replicates are two such libraries from the same ``f``, so replicate noise equals
the null noise between timepoints. Each library has its own random stream keyed on
(seed, patient, compartment, day, replicate), so adding samples does not change others.

*Infused product* (patients in ``product_patients`` only). ``n_product_clones`` further
OLGA clonotypes (distinct from the patient's others) with Pareto weights (the blood exponent)
give the product's true frequencies ``pi_i`` (sum 1); the product is sequenced once
(compartment ``product``, day 0, depth ``product_depth``, the blood noise model). Product
clones are absent from baseline blood and from the tumour. After infusion (day ``t > 0``)
their true blood frequency is::

    f_i(t) = product_blood_share * pi_i * 2 ** (-t / product_half_life_days)

exact exponential decay with one half-life for every product clone, so the product's clones
take ``product_blood_share`` of the blood at infusion and their share halves every
``product_half_life_days``. Planted clones keep their absolute frequencies; null clones share
the rest. ``product_truth.tsv`` (category ``product``) lists every product clone with
``pi_i`` (``product_freq``), its rank in the product, ``product_blood_share * pi_i``
(``blood_freq_at_infusion``) and the true ``half_life_days``. Patients without a product,
their baseline blood and every biopsy are byte-identical to a run without products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tcrtrack.simulation.airr import AIRR_COLUMNS, airr_rows, write_gzipped_tsv
from tcrtrack.simulation.design import (
    SHEET_COLUMNS,
    CohortPlan,
    library_rng,
    plan_cohort,
    sample_id,
    sheet_row,
    write_sample_sheet,
)
from tcrtrack.simulation.library import library_counts
from tcrtrack.simulation.progress import Progress, ProgressFactory, progress_context
from tcrtrack.simulation.truth import (
    CATEGORIES,
    PRODUCT_TRUTH_COLUMNS,
    TRUTH_COLUMNS,
    SimulatedPatient,
    truth_frequency_table,
)
from tcrtrack.simulation.truth import add_product as _add_product
from tcrtrack.simulation.truth import simulate_patient as _simulate_patient

__all__ = [
    "AIRR_COLUMNS",
    "CATEGORIES",
    "DEMO_OPTIONS",
    "PRODUCT_TRUTH_COLUMNS",
    "SHEET_COLUMNS",
    "TRUTH_COLUMNS",
    "SimulatedCohort",
    "airr_rows",
    "library_counts",
    "simulate_cohort",
    "simulate_demo",
]

#: Options of :func:`simulate_demo` (4 patients x 8-10 samples, one with a product sample; ~3.3 MB of gzipped TSV).
DEMO_OPTIONS: dict[str, Any] = {
    "n_patients": 4,
    "n_clones": 6_000,
    "blood_depth": 20_000,
    "tumor_depth": 8_000,
    "dispersion": 0.1,
    "n_planted": (12, 6, 6),
    "post_days": (7, 14, 28, 56),
    "product_patients": (0,),
}


@dataclass(frozen=True)
class SimulatedCohort:
    """Paths written by :func:`simulate_cohort` (and, when asked, the true frequencies)."""

    out_dir: Path
    sheet: Path
    truth: Path
    files: tuple[Path, ...]
    product_truth: Path | None = None  # product_truth.tsv, only when some patient has a product
    #: :func:`tcrtrack.simulation.truth.truth_frequency_table` of every patient, stacked
    #: (``return_truth_frequencies=True`` only; columns absent for a patient are null).
    truth_frequencies: pl.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def total_bytes(self) -> int:
        """Size on disk of the sheet, the truth tables and every repertoire file."""
        extra = (self.product_truth,) if self.product_truth is not None else ()
        return sum(p.stat().st_size for p in (self.sheet, self.truth, *extra, *self.files))


def simulate_cohort(
    out_dir: Path,
    *,
    n_patients: int = 4,
    n_clones: int = 20_000,
    blood_depth: int = 40_000,
    tumor_depth: int = 15_000,
    post_days: Sequence[int] = (14, 28, 56),
    tumor_days: Sequence[int] = (-7, 28, 56),
    dispersion: float = 0.1,
    tumor_dispersion: float | None = None,
    n_planted: Sequence[int] = (30, 15, 15),
    replicate_patients: Sequence[int] | float = (0, 1),
    missing_pre_biopsy: Sequence[int] = (),
    power_law_exponent: float = 2.2,
    product_patients: Sequence[int] | float = (),
    n_product_clones: int = 500,
    product_depth: int | None = None,
    product_blood_share: float = 0.1,
    product_half_life_days: float = 20.0,
    seed: int = 0,
    sheet: Path | None = None,
    progress: bool | ProgressFactory = False,
    return_truth_frequencies: bool = False,
    responder_planted_fold: float = 1.0,
) -> SimulatedCohort:
    """Write a synthetic cohort: AIRR files, ``samples.tsv`` and ``truth.tsv``.

    Parameters
    ----------
    out_dir
        Output folder (created); files go to ``out_dir/Pxx/<sample>.tsv.gz``.
    n_patients
        Number of patients ``P01, P02, ...``.
    n_clones
        Distinct productive TRB clonotypes in each patient's blood.
    blood_depth, tumor_depth
        Mean templates per library (each library jitters it by ±20%).
    post_days
        Blood sampling days after the first infusion (> 0); baseline blood is day 0.
    tumor_days
        Biopsy days; days <= 0 are pre-treatment, at least one must be > 0.
    dispersion
        Gamma overdispersion of library frequencies (0 = Poisson sampling only).
    tumor_dispersion
        Overdispersion of biopsies; ``None`` uses ``dispersion``.
    n_planted
        Planted clones per patient for ``new_expanded_tumor``, ``blood_only``,
        ``tumor_only``.
    replicate_patients
        0-based indices of the patients whose baseline blood has two technical
        replicates, or a fraction of patients (the first ``ceil(fraction * n)``).
    missing_pre_biopsy
        0-based indices of patients without a pre-treatment biopsy.
    power_law_exponent
        Exponent ``a > 1`` of the clone-weight density ``p(w) ∝ w**-a``.
    product_patients
        0-based indices of the patients with a sequenced infused product (sample
        ``{patient}_product_d0_r1``), or a fraction of patients; ``()`` (default) for none.
    n_product_clones
        Distinct clonotypes in each product.
    product_depth
        Mean templates of the product library; ``None`` uses ``blood_depth``.
    product_blood_share
        Share of the blood the product's clones take at infusion (day 0, extrapolated).
    product_half_life_days
        Half-life of every product clone's blood frequency after infusion (days).
    seed
        Everything is a function of this seed (same seed, byte-identical files).
    sheet
        Where to write the sample sheet (default ``out_dir/samples.tsv``); its ``path``
        column is relative to the sheet's folder.
    progress
        ``True`` counts patients and libraries on stderr; a callable ``factory(length)`` returning a
        context manager with ``update(n)`` (e.g. a CLI progress bar) is used instead
        (:mod:`tcrtrack.simulation.progress`).
    return_truth_frequencies
        Keep every clone's true frequency per (compartment, day) in
        :attr:`SimulatedCohort.truth_frequencies` (memory: clones x libraries floats per patient).
    responder_planted_fold
        A planted response difference: responders (P01, P03, ...; the sheet's ``response``) get
        ``round(n_planted[0] * fold)`` ``new_expanded_tumor`` clones (the clones the workflow should
        flag) instead of ``n_planted[0]``; the other categories and the non-responders are unchanged.
        ``1.0`` (default) plants no difference and leaves every file as without the option.

    Returns
    -------
    SimulatedCohort
        Paths of the sample sheet, the truth table and the repertoire files.

    Notes
    -----
    Sample ids are ``{patient}_{compartment}_d{day}_r{replicate}``. With products,
    ``product_truth.tsv`` is written next to ``truth.tsv``. The sheet's
    ``response`` alternates ``responder`` (P01, P03, ...) / ``non-responder``; it is
    metadata only and does not change the simulation unless ``responder_planted_fold != 1``.
    """
    if not responder_planted_fold > 0:
        raise ValueError(f"responder_planted_fold must be > 0, got {responder_planted_fold}")
    plan = plan_cohort(
        n_patients=n_patients,
        n_clones=n_clones,
        blood_depth=blood_depth,
        tumor_depth=tumor_depth,
        post_days=post_days,
        tumor_days=tumor_days,
        dispersion=dispersion,
        tumor_dispersion=tumor_dispersion,
        n_planted=n_planted,
        replicate_patients=replicate_patients,
        missing_pre_biopsy=missing_pre_biopsy,
        power_law_exponent=power_law_exponent,
        product_patients=product_patients,
        n_product_clones=n_product_clones,
        product_depth=product_depth,
        product_blood_share=product_blood_share,
        product_half_life_days=product_half_life_days,
        seed=seed,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet_rows: list[dict[str, Any]] = []
    truths: list[pl.DataFrame] = []
    product_truths: list[pl.DataFrame] = []
    frequency_tables: list[pl.DataFrame] = []
    files: list[Path] = []
    with progress_context(progress, plan.n_steps) as bar:
        for p in range(n_patients):
            pid = f"P{p + 1:02d}"
            planted = plan.n_planted
            if responder_planted_fold != 1.0 and p % 2 == 0:  # responders: sheet_row's alternation
                planted = (round(planted[0] * responder_planted_fold), *planted[1:])
            patient = _simulate_patient(
                pid,
                p,
                seed=seed,
                n_clones=n_clones,
                post_days=plan.post_days,
                tumor_days=plan.tumor_days,
                n_planted=planted,
                exponent=power_law_exponent,
            )
            truths.append(patient.truth)
            if p in plan.with_product:
                patient, product_truth = _add_product(
                    patient,
                    pid,
                    p,
                    seed=seed,
                    n_product=n_product_clones,
                    post_days=plan.post_days,
                    blood_share=product_blood_share,
                    half_life=product_half_life_days,
                    exponent=power_law_exponent,
                )
                product_truths.append(product_truth)
            if return_truth_frequencies:
                frequency_tables.append(truth_frequency_table(patient, pid))
            bar.update(1)
            for path, row in _sequence_patient(patient, pid, p, plan=plan, seed=seed, out_dir=out_dir, bar=bar):
                files.append(path)
                sheet_rows.append(row)
    sheet = out_dir / "samples.tsv" if sheet is None else Path(sheet)
    write_sample_sheet(sheet, sheet_rows, out_dir=out_dir)
    truth = out_dir / "truth.tsv"
    truth.write_text(pl.concat(truths).write_csv(separator="\t"))
    product_truth_path = None
    if product_truths:
        product_truth_path = out_dir / "product_truth.tsv"
        product_truth_path.write_text(pl.concat(product_truths).write_csv(separator="\t"))
    return SimulatedCohort(
        out_dir=out_dir,
        sheet=sheet,
        truth=truth,
        files=tuple(files),
        product_truth=product_truth_path,
        truth_frequencies=pl.concat(frequency_tables, how="diagonal") if return_truth_frequencies else None,
    )


def _sequence_patient(
    patient: SimulatedPatient, pid: str, p: int, *, plan: CohortPlan, seed: int, out_dir: Path, bar: Progress
) -> list[tuple[Path, dict[str, Any]]]:
    """Draw and write every library of one patient; (file, sample-sheet row) of each, in sheet order."""
    written = []
    for library in plan.designs[p]:
        compartment, day, _ = library
        counts = library_counts(
            patient.freqs[compartment, day],
            depth=plan.depth[compartment],
            dispersion=plan.dispersion[compartment],
            rng=library_rng(seed, p, library),
        )
        sample = sample_id(pid, library)
        rel = f"{pid}/{sample}.tsv.gz"
        write_gzipped_tsv(out_dir / rel, airr_rows(patient.clones, counts, sample))
        written.append((out_dir / rel, sheet_row(pid, p, library, rel)))
        bar.update(1)
    return written


def simulate_demo(
    out_dir: Path, *, seed: int = 1, sheet: Path | None = None, progress: bool | ProgressFactory = False
) -> SimulatedCohort:
    """Write the small demo cohort (:data:`DEMO_OPTIONS`, ~3.3 MB) to ``out_dir``."""
    return simulate_cohort(out_dir, seed=seed, sheet=sheet, progress=progress, **DEMO_OPTIONS)
