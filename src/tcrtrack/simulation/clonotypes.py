"""A simulated patient's clonotypes from OLGA (:mod:`tcrtrack.olga_source`), with QC decoys.

Rows come in a fixed order that the true frequencies index into: ``n_clones`` blood TRB clonotypes,
the tumour-resident TRB clonotypes, non-productive rearrangements, then TRA clonotypes. Product
clonotypes are drawn apart and appended later (:func:`product_clonotypes`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tcrtrack.olga_source import generate_clonotypes, make_nonproductive, olga_seed

__all__ = ["NONPRODUCTIVE", "TRA_SHARE", "TUMOR_RESIDENT", "patient_clonotypes", "product_clonotypes"]

TUMOR_RESIDENT = 0.15  # tumour-only clonotypes, as a share of n_clones
NONPRODUCTIVE = 0.015  # non-productive rearrangements, share of n_clones
TRA_SHARE = 0.003  # TRA clonotypes (wrong locus), share of n_clones

# TRBV6-2 and TRBV6-3 are identical germlines: aligners report both (first kept).
_AMBIGUOUS_V_CALLS = {"TRBV6-2*01": "TRBV6-2*01,TRBV6-3*01", "TRBV6-3*01": "TRBV6-3*01,TRBV6-2*01"}
_CLONE_KEY = ("junction_aa", "v_gene", "j_gene")


def _reported_v_call() -> pl.Expr:
    """``v_call_out``: the V call an aligner writes (both genes where the germlines are identical)."""
    return pl.col("v_call").replace(_AMBIGUOUS_V_CALLS).alias("v_call_out")


def patient_clonotypes(n_clones: int, *, seed: int, patient: int, rng: np.random.Generator) -> pl.DataFrame:
    """Every clonotype of one patient but its product, with ``productive``, ``locus`` and ``v_call_out``.

    Parameters
    ----------
    n_clones
        Distinct productive TRB clonotypes of the blood; :data:`TUMOR_RESIDENT`,
        :data:`NONPRODUCTIVE` and :data:`TRA_SHARE` of it are added (at least one of the last two).
    seed, patient
        OLGA streams ``(seed, patient, 1)`` (TRB) and ``(seed, patient, 2)`` (TRA).
    rng
        The patient's numpy stream (draws the non-productive mutations).

    Returns
    -------
    polars.DataFrame
        :data:`tcrtrack.olga_source.CLONOTYPE_COLUMNS` plus ``productive`` (``T``/``F``), ``locus``
        and ``v_call_out``, in the row order of the module docstring.
    """
    n_res, n_np = round(TUMOR_RESIDENT * n_clones), max(1, round(NONPRODUCTIVE * n_clones))
    trb = generate_clonotypes(n_clones + n_res + n_np, seed=olga_seed(seed, patient, 1))
    tra = generate_clonotypes(max(1, round(TRA_SHARE * n_clones)), seed=olga_seed(seed, patient, 2), chain="TRA")
    nonprod = make_nonproductive(trb.slice(n_clones + n_res), rng=rng)
    clones = pl.concat(
        [
            trb.slice(0, n_clones + n_res).with_columns(productive=pl.lit("T"), locus=pl.lit("TRB")),
            nonprod.with_columns(productive=pl.lit("F"), locus=pl.lit("TRB")),
            tra.with_columns(productive=pl.lit("T"), locus=pl.lit("TRA")),
        ]
    )
    return clones.with_columns(_reported_v_call())


def product_clonotypes(n_product: int, *, taken: pl.DataFrame, seed: int, patient: int) -> pl.DataFrame:
    """``n_product`` productive TRB clonotypes (OLGA stream ``(seed, patient, 3)``) not in ``taken``.

    Returns the columns of ``taken`` (a :func:`patient_clonotypes` frame), in order of draw.
    """
    taken_keys = set(taken.select(_CLONE_KEY).iter_rows())
    margin = max(20, n_product // 10)
    drawn = generate_clonotypes(n_product + margin, seed=olga_seed(seed, patient, 3))
    fresh = [k not in taken_keys for k in drawn.select(_CLONE_KEY).iter_rows()]
    drawn = drawn.filter(pl.Series(fresh))
    if drawn.height < n_product:  # pragma: no cover - needs thousands of collisions
        raise RuntimeError("too few product clonotypes distinct from the patient's others")
    return (
        drawn.head(n_product)
        .with_columns(
            productive=pl.lit("T"),
            locus=pl.lit("TRB"),
            v_call_out=_reported_v_call(),
        )
        .select(taken.columns)
    )
