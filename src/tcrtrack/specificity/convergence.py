"""Convergent recombination: distinct nucleotide junctions coding one amino-acid junction.

.. math::

    c(\\sigma, p) = \\bigl|\\{\\, n : \\mathrm{translate}(n) = \\sigma,\\
    n \\text{ seen in patient } p \\,\\}\\bigr|

A clone selected by antigen is often reached by several recombination events, each with its own
nucleotide junction (Venturi et al. 2006, PNAS 103:18691; Pogorelyy et al. 2018, PLoS Biol.
16:e2005086, where convergence marks antigen-driven expansion). High-Pgen junctions are also made
many times without selection, so read :math:`c` beside Pgen (:mod:`tcrtrack.specificity.pgen`).
A clone whose nucleotides are missing everywhere gets a null, not 1.
"""

from __future__ import annotations

import polars as pl


def convergence(clones: pl.DataFrame, *, by: tuple[str, ...] = ("patient",)) -> pl.DataFrame:
    """Distinct nucleotide junctions per ``junction_aa`` within each ``by`` group (the patient).

    Parameters
    ----------
    clones
        Rows with ``junction_aa``, ``junction`` (nucleotides, may be null) and the ``by`` columns; several
        samples of a patient may repeat a junction (counted once).
    by
        Grouping columns; default the patient.

    Returns
    -------
    polars.DataFrame
        One row per (``by``, ``junction_aa``) with ``n_nt_junctions`` (null when no nucleotides are
        known; case-insensitive, empty strings ignored).
    """
    missing = {"junction_aa", "junction", *by} - set(clones.columns)
    if missing:
        raise ValueError(f"clones lack column(s) {', '.join(sorted(missing))}")
    keys = [*by, "junction_aa"]
    counted = clones.group_by(keys, maintain_order=True).agg(
        n_nt_junctions=pl.col("junction")
        .drop_nulls()
        .filter(pl.col("junction").drop_nulls() != "")
        .str.to_uppercase()
        .n_unique()
    )
    return counted.with_columns(
        n_nt_junctions=pl.when(pl.col("n_nt_junctions") > 0)
        .then(pl.col("n_nt_junctions"))
        .otherwise(None)
        .cast(pl.Int64)
    )


def add_convergence(clones: pl.DataFrame, *, by: tuple[str, ...] = ("patient",)) -> pl.DataFrame:
    """``clones`` with ``n_nt_junctions`` (:func:`convergence`) joined on (``by``, ``junction_aa``)."""
    return clones.join(convergence(clones, by=by), on=[*by, "junction_aa"], how="left", maintain_order="left")
