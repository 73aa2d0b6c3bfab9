"""Figures of tcrtrack (seaborn/matplotlib): per patient and for the cohort.

Every figure is drawn by a pure function of tables (returns a :class:`matplotlib.figure.Figure`) and
written by :func:`tcrtrack.plots.style.save_figure` as PNG (for viewing) and PDF (for papers).
Colours are colour-blind safe (Okabe–Ito, Tol, viridis). Modules import matplotlib lazily through
:mod:`tcrtrack.plots.style`; import them, not this package, to draw.
"""

from __future__ import annotations

# File stems (results/patients/{patient}/figures/<stem>.png|.pdf) and what each shows.
PATIENT_FIGURES: dict[str, str] = {
    "overlap_heatmap": "clone overlap (Morisita–Horn) between every two samples",
    "expansion_scatter": "baseline vs post-infusion blood frequency, expanded/new/flagged clones highlighted",
    "clone_tracking": "flagged and top expanded clones across blood days and tumour biopsies",
    "diversity": "clonality and Shannon entropy over time, full depth and rarefied",
    "noise_model": "fitted overdispersion and observed vs expected variance per comparison",
}
# results/cohort/figures/<stem>.png|.pdf
COHORT_FIGURES: dict[str, str] = {
    "diversity_trajectories": "clonality and Shannon entropy over time, every patient, by group",
    "flagged_by_group": "expanded and flagged clones and the flagged clones' tumour share per patient, by group",
    "overlap_summary": "blood and tumour overlap over time and blood–tumour overlap, every patient",
}
