"""Figures of tcrtrack (seaborn/matplotlib): per patient and for the cohort.

Every figure is drawn by a pure function of tables (returns a :class:`matplotlib.figure.Figure`) and
written by :func:`tcrtrack.plots.style.save_figure` as PNG (for viewing) and, on request, PDF (for papers:
:data:`WRITE_PDF`).
Colours are colour-blind safe (Okabe–Ito, Tol, viridis). Modules import matplotlib lazily through
:mod:`tcrtrack.plots.style`; import them, not this package, to draw.

One module per stage that draws (``tcrtrack.plots.<stage>``: expansion, with its noise model in
:mod:`~tcrtrack.plots.noise`; kinetics, clone_origin, gene_usage, diversity_curves, specificity,
association); :mod:`~tcrtrack.plots.patient` and :mod:`~tcrtrack.plots.cohort` hold the overview figures of
rules ``figures`` and ``figures_cohort``.
"""

from __future__ import annotations

from tcrtrack.registry import select as _select

WRITE_PDF = False
"""Whether :func:`~tcrtrack.plots.style.save_figure` also writes a figure's PDF by default. A workflow job sets
it when its rule declares a PDF output (config ``report.pdf``; :func:`tcrtrack.scripting.run_step`)."""

# File stems (results/patients/{patient}/figures/<stem>.png|.pdf) drawn by the figures rule, and what each
# shows: from tcrtrack.registry, the one list of outputs (the kinetics figures are the kinetics rule's).
PATIENT_FIGURES: dict[str, str] = {o.stem: o.meaning for o in _select(kind="figure", rule="figures")}
# results/cohort/figures/<stem>.png|.pdf, drawn by the figures_cohort rule
COHORT_FIGURES: dict[str, str] = {o.stem: o.meaning for o in _select(kind="figure", rule="figures_cohort")}
