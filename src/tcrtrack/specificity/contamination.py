"""Cross-patient contamination: a nucleotide junction far more frequent in another patient's sample.

Two people rarely share an exact nucleotide junction by chance (shared amino-acid junctions are
usually coded differently), so a nucleotide junction found in patient *p*'s sample at frequency
:math:`f_p` and in patient *q*'s sample at a much higher :math:`f_q` is most likely carried over from
*q* (sample handling, index hopping, barcode bleed). The rule follows VDJtools ``Decontaminate``
(Shugay et al. 2015, PLoS Comput. Biol. 11:e1004503), whose default parent-to-child ratio is 20:

.. math::

    \\mathrm{possible\\_contamination}(c, s) \\iff \\exists\\, t \\text{ of another patient}:\\;
    f_t(c) \\ge f_\\mathrm{min} \\;\\wedge\\; f_t(c) \\ge r \\, f_s(c),

with :math:`f` the clone's frequency (count over the sample's depth) matched on the exact nucleotide
``junction`` (upper-case), :math:`r` = ``min_ratio`` (default 20) and :math:`f_\\mathrm{min}` =
``min_source_frequency`` (default 1e-4: a source clone must be big enough to spill). The clone is
flagged, not dropped; ``contamination_source`` names the other sample (the most frequent one).

Caveats: a very public high-Pgen junction can be shared at the nucleotide level by chance (check its
Pgen); a clone high in both patients is not flagged (no direction), which the ``shared_nt_samples``
column still shows; the rule needs nucleotide junctions (rows without one are never flagged).
"""

from __future__ import annotations

import polars as pl

#: Columns added by :func:`flag_contamination`.
CONTAMINATION_COLUMNS = (
    "possible_contamination",
    "contamination_source",
    "contamination_source_patient",
    "contamination_source_frequency",
    "contamination_ratio",
    "shared_nt_samples",
)


def flag_contamination(
    clones: pl.DataFrame, *, min_ratio: float = 20.0, min_source_frequency: float = 1e-4
) -> pl.DataFrame:
    """Flag every clone whose exact nucleotide junction is far more frequent in another patient's sample.

    Parameters
    ----------
    clones
        One row per (sample, clone) of the whole cohort: ``patient``, ``sample``, ``junction``
        (nucleotides) and ``frequency``.
    min_ratio
        :math:`r`: the other sample's frequency must be at least this many times the clone's own.
    min_source_frequency
        :math:`f_\\mathrm{min}`: the other sample's frequency must be at least this.

    Returns
    -------
    polars.DataFrame
        ``clones`` (same rows and order) with :data:`CONTAMINATION_COLUMNS`: the flag, the source sample,
        its patient and frequency, the ratio :math:`f_t / f_s`, and the number of other patients'
        samples holding the nucleotide junction at any frequency.
    """
    missing = {"patient", "sample", "junction", "frequency"} - set(clones.columns)
    if missing:
        raise ValueError(f"clones lack column(s) {', '.join(sorted(missing))}")
    if min_ratio < 1 or min_source_frequency < 0:
        raise ValueError("min_ratio must be >= 1 and min_source_frequency >= 0")
    base = clones.with_row_index("_row").with_columns(_nt=pl.col("junction").str.to_uppercase())
    per_sample = (
        base.filter(pl.col("_nt").is_not_null() & (pl.col("_nt") != ""))
        .group_by("_nt", "patient", "sample")
        .agg(_f=pl.col("frequency").sum())
    )
    pairs = (
        base.select("_row", "_nt", "patient", "frequency")
        .join(per_sample.rename({"patient": "_src_patient", "sample": "_src", "_f": "_src_f"}), on="_nt")
        .filter(pl.col("_src_patient") != pl.col("patient"))
    )
    shared = pairs.group_by("_row").agg(shared_nt_samples=pl.len())
    sources = (
        pairs.filter((pl.col("_src_f") >= min_source_frequency) & (pl.col("_src_f") >= min_ratio * pl.col("frequency")))
        .sort("_row", "_src_f", "_src", descending=[False, True, False])
        .group_by("_row", maintain_order=True)
        .first()
        .select(
            "_row",
            contamination_source=pl.col("_src"),
            contamination_source_patient=pl.col("_src_patient"),
            contamination_source_frequency=pl.col("_src_f"),
            contamination_ratio=pl.col("_src_f") / pl.col("frequency"),
        )
    )
    out = (
        base.join(sources, on="_row", how="left")
        .join(shared, on="_row", how="left")
        .with_columns(
            possible_contamination=pl.col("contamination_source").is_not_null(),
            shared_nt_samples=pl.col("shared_nt_samples").fill_null(0).cast(pl.Int64),
        )
        .sort("_row")
    )
    return out.select([*clones.columns, *CONTAMINATION_COLUMNS])


def contamination_qc(flagged: pl.DataFrame) -> pl.DataFrame:
    """Per sample: clones and summed frequency flagged ``possible_contamination`` (for the QC table)."""
    return flagged.group_by("patient", "sample", maintain_order=True).agg(
        contamination_clones=pl.col("possible_contamination").sum().cast(pl.Int64),
        contamination_frequency=pl.col("frequency").filter(pl.col("possible_contamination")).sum(),
    )
