"""Generation probability (Pgen) of junctions with OLGA's default human TRB model.

.. math::

    P_\\mathrm{gen}(\\sigma) = \\sum_{s \\,\\to\\, \\sigma} P(s),

the probability that V(D)J recombination produces the amino-acid junction :math:`\\sigma`, summed over
every recombination scenario :math:`s` (gene choice, deletions, insertions) and every nucleotide
sequence coding it, by OLGA's dynamic programme (Sethna et al. 2019, Bioinformatics 35:2974;
``GenerationProbabilityVDJ.compute_aa_CDR3_pgen``). Conditioning on V/J genes restricts the sum to
scenarios using them. High-Pgen junctions (say > 1e-7) are made often in every person: sharing such
a clone between people, or finding it in a database, is expected by chance (Elhanati et al. 2018,
Immunol. Rev. 284:167).

The model is loaded once per process from the ``olga`` package's ``default_models/human_T_beta``
(no network).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import olga
import olga.generation_probability as olga_pgen
import olga.load_model as olga_load
import polars as pl
from olga.utils import gene_to_num_str

_NON_PRODUCTIVE = frozenset("*_~")


@functools.cache
def pgen_model() -> Any:
    """OLGA's ``GenerationProbabilityVDJ`` for the default human TRB model (cached per process)."""
    folder = Path(olga.__file__).parent / "default_models" / "human_T_beta"
    genomic = olga_load.GenomicDataVDJ()
    genomic.load_igor_genomic_data(
        str(folder / "model_params.txt"),
        str(folder / "V_gene_CDR3_anchors.csv"),
        str(folder / "J_gene_CDR3_anchors.csv"),
    )
    model = olga_load.GenerativeModelVDJ()
    model.load_and_process_igor_model(str(folder / "model_marginals.txt"))
    return olga_pgen.GenerationProbabilityVDJ(model, genomic)


def _known_genes(names: set[str], mapping: dict[str, Any], kind: str) -> set[str]:
    """The names OLGA resolves (it maps ``TRBV30*01`` and ``TRBV30`` to its own keys)."""
    return {name for name in names if _resolves(name, mapping, kind)}


def _resolves(name: str, mapping: dict[str, Any], kind: str) -> bool:
    try:
        return gene_to_num_str(name, kind) in mapping
    except Exception:  # noqa: BLE001 - OLGA raises assorted errors on names it cannot parse
        return False


def compute_pgen(
    junction_aa: list[str] | pl.Series,
    *,
    v_genes: list[str | None] | pl.Series | None = None,
    j_genes: list[str | None] | pl.Series | None = None,
) -> np.ndarray:
    """Pgen of each junction (OLGA ``compute_aa_CDR3_pgen``), computed once per distinct input.

    Parameters
    ----------
    junction_aa
        Amino-acid junctions (C104 to F/W118, as OLGA's CDR3 convention).
    v_genes, j_genes
        Optional genes to condition on (IMGT gene or allele names OLGA knows); a ``None`` or a name
        OLGA does not know leaves that side unconditioned.

    Returns
    -------
    numpy.ndarray
        float64, one per junction; 0 for an empty or non-productive junction (``*`` stop, ``_`` frameshift)
        and for one with a symbol OLGA does not know.
    """
    seqs = list(junction_aa)
    n = len(seqs)
    vs = list(v_genes) if v_genes is not None else [None] * n
    js = list(j_genes) if j_genes is not None else [None] * n
    if len(vs) != n or len(js) != n:
        raise ValueError("v_genes and j_genes must have one entry per junction")
    model = pgen_model()
    v_known = _known_genes({v for v in vs if v}, model.V_mask_mapping, "V")
    j_known = _known_genes({j for j in js if j}, model.J_mask_mapping, "J")
    cache: dict[tuple[str | None, str | None, str | None], float] = {}
    out = np.zeros(n)
    for i, key in enumerate(zip(seqs, vs, js, strict=True)):
        seq, v, j = key
        if key not in cache:
            productive = bool(seq) and not set(seq) & _NON_PRODUCTIVE
            cache[key] = (
                0.0
                if not productive
                else float(
                    model.compute_aa_CDR3_pgen(
                        seq, v if v in v_known else None, j if j in j_known else None, print_warnings=False
                    )
                )
            )
        out[i] = cache[key]
    return out


def add_pgen(clones: pl.DataFrame, *, condition_on_genes: bool = False) -> pl.DataFrame:
    """``clones`` with ``pgen`` (and ``log10_pgen``; null where Pgen is 0) added.

    ``condition_on_genes=True`` conditions on each clone's ``v_gene`` and ``j_gene``.
    """
    pgen = compute_pgen(
        clones["junction_aa"],
        v_genes=clones["v_gene"] if condition_on_genes else None,
        j_genes=clones["j_gene"] if condition_on_genes else None,
    )
    series = pl.Series("pgen", pgen, dtype=pl.Float64)
    return clones.with_columns(series, log10_pgen=pl.when(series > 0).then(series.log10()).otherwise(None))
