"""Specificity groups: TCRdist-style CDR3 neighbours with the same V gene, and their connected components.

Distance (Dash et al. 2017, Nature 547:89; the CDR3 term of TCRdist as tcrdist3's
``nb_vector_tcrdist`` computes it, fixed gap position). For two junctions :math:`a, b`:

.. math::

    d(a, b) = w \\Bigl( \\sum_{i \\in \\mathcal{A}} M(a_i, b_i) + g\\,\\bigl||a| - |b|\\bigr| \\Bigr), \\qquad
    M(x, y) = \\begin{cases} 0 & x = y \\\\
              \\min\\bigl(4,\\, 4 - \\mathrm{BLOSUM62}(x, y)\\bigr) & x \\ne y \\end{cases}

with weight :math:`w = 3`, gap penalty :math:`g = 4`, and the aligned positions :math:`\\mathcal{A}` the
junction without its first 3 and last 2 residues (conserved C, A/S, S and F/W, G-like end); junctions
of different lengths are aligned from both ends around a gap at position
:math:`\\min(6, 3 + \\lfloor (|s| - 5)/2 \\rfloor)` of the shorter :math:`s`.

**CDR3-only.** Full TCRdist adds the V gene's CDR1, CDR2 and CDR2.5 loops; their per-allele
sequences are not shipped with the project's dependencies, so this distance is the CDR3 term only
and two clones are neighbours only when they also share the V gene (``same_v=True``), which bounds the
germline-loop term at 0. With the default ``max_distance=12`` neighbours differ by at most one
dissimilar substitution, a few similar ones, or one indel (:math:`w g = 12`).

Groups are the connected components of the neighbour graph (single linkage), as in tcrdist3's
clone networks and scirpy's ``define_clonotype_clusters``. Compute this on the clones that matter
(a few thousand expanded, flagged and tumour clones across patients), not whole repertoires.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_AA = "ARNDCQEGHILKMFPSTWYV"
_BLOSUM62_ROWS = (
    "4 -1 -2 -2 0 -1 -1 0 -2 -1 -1 -1 -1 -2 -1 1 0 -3 -2 0",  # A
    "-1 5 0 -2 -3 1 0 -2 0 -3 -2 2 -1 -3 -2 -1 -1 -3 -2 -3",  # R
    "-2 0 6 1 -3 0 0 0 1 -3 -3 0 -2 -3 -2 1 0 -4 -2 -3",  # N
    "-2 -2 1 6 -3 0 2 -1 -1 -3 -4 -1 -3 -3 -1 0 -1 -4 -3 -3",  # D
    "0 -3 -3 -3 9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1",  # C
    "-1 1 0 0 -3 5 2 -2 0 -3 -2 1 0 -3 -1 0 -1 -2 -1 -2",  # Q
    "-1 0 0 2 -4 2 5 -2 0 -3 -3 1 -2 -3 -1 0 -1 -3 -2 -2",  # E
    "0 -2 0 -1 -3 -2 -2 6 -2 -4 -4 -2 -3 -3 -2 0 -2 -2 -3 -3",  # G
    "-2 0 1 -1 -3 0 0 -2 8 -3 -3 -1 -2 -1 -2 -1 -2 -2 2 -3",  # H
    "-1 -3 -3 -3 -1 -3 -3 -4 -3 4 2 -3 1 0 -3 -2 -1 -3 -1 3",  # I
    "-1 -2 -3 -4 -1 -2 -3 -4 -3 2 4 -2 2 0 -3 -2 -1 -2 -1 1",  # L
    "-1 2 0 -1 -3 1 1 -2 -1 -3 -2 5 -1 -3 -1 0 -1 -3 -2 -2",  # K
    "-1 -1 -2 -3 -1 0 -2 -3 -2 1 2 -1 5 0 -2 -1 -1 -1 -1 1",  # M
    "-2 -3 -3 -3 -2 -3 -3 -3 -1 0 0 -3 0 6 -4 -2 -2 1 3 -1",  # F
    "-1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4 7 -1 -1 -4 -3 -2",  # P
    "1 -1 1 0 -1 0 0 0 -1 -2 -2 0 -1 -2 -1 4 1 -3 -2 -2",  # S
    "0 -1 0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1 1 5 -2 -2 0",  # T
    "-3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1 1 -4 -3 -2 11 2 -3",  # W
    "-2 -2 -2 -3 -2 -1 -2 -3 2 -1 -1 -2 -1 3 -3 -2 -2 2 7 -1",  # Y
    "0 -3 -3 -3 -1 -2 -2 -3 -3 3 1 -2 1 -1 -2 -2 0 -3 -1 4",  # V
)
#: BLOSUM62 (Henikoff & Henikoff 1992, PNAS 89:10915) over :data:`_AA`.
BLOSUM62 = np.array([[int(x) for x in row.split()] for row in _BLOSUM62_ROWS], dtype=np.int16)
#: TCRdist mismatch matrix M over :data:`_AA` plus a last row/column for any other symbol (always 4).
MISMATCH = np.full((21, 21), 4, dtype=np.int16)
MISMATCH[:20, :20] = np.minimum(4, 4 - BLOSUM62)
np.fill_diagonal(MISMATCH[:20, :20], 0)
_INDEX = np.full(128, 20, dtype=np.int8)
_INDEX[np.frombuffer(_AA.encode(), dtype=np.uint8)] = np.arange(20)

WEIGHT, GAP_PENALTY, NTRIM, CTRIM = 3, 4, 3, 2


def _encode(seqs: list[str], length: int) -> np.ndarray:
    raw = np.frombuffer("".join(seqs).encode("ascii", "replace"), dtype=np.uint8).reshape(len(seqs), length)
    return _INDEX[np.minimum(raw, 127)]


def _block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TCRdist CDR3 distances between every row of ``a`` (n, La) and of ``b`` (m, Lb): (n, m) int32."""
    la, lb = a.shape[1], b.shape[1]
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.int32)
    if la == lb:
        for i in range(NTRIM, la - CTRIM):
            out += MISMATCH[a[:, i][:, None], b[:, i][None, :]]
        return out * WEIGHT
    short = min(la, lb)
    gappos = min(6, 3 + (short - 5) // 2)
    for i in range(NTRIM, gappos):
        out += MISMATCH[a[:, i][:, None], b[:, i][None, :]]
    for c in range(CTRIM, short - gappos):
        out += MISMATCH[a[:, la - 1 - c][:, None], b[:, lb - 1 - c][None, :]]
    return (out + GAP_PENALTY * abs(la - lb)) * WEIGHT


def tcrdist_cdr3(a: list[str], b: list[str] | None = None) -> np.ndarray:
    """Full matrix of TCRdist CDR3 distances (module docstring) between junctions ``a`` and ``b`` (default ``a``)."""
    b = a if b is None else b
    out = np.zeros((len(a), len(b)), dtype=np.int32)
    groups_a = _by_length(a)
    groups_b = groups_a if b is a else _by_length(b)
    for ia, ea in groups_a.values():
        for ib, eb in groups_b.values():
            out[np.ix_(ia, ib)] = _block(ea, eb)
    return out


def _by_length(seqs: list[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Row indices and encoded sequences per length."""
    lengths = np.array([len(s) for s in seqs])
    out = {}
    for length in np.unique(lengths):
        index = np.flatnonzero(lengths == length)
        out[int(length)] = (index, _encode([seqs[i] for i in index], int(length)))
    return out


def neighbour_pairs(
    clones: pl.DataFrame, *, max_distance: int = 12, same_v: bool = True, chunk: int = 2048
) -> pl.DataFrame:
    """Pairs of clones (row indices ``i < j``) within ``max_distance`` (and the same V gene when ``same_v``).

    Vectorised per (V gene, length, length) block; lengths further apart than
    ``max_distance // (WEIGHT * GAP_PENALTY)`` are never compared. Clones without a V gene have no
    neighbours when ``same_v``.
    """
    frame = clones.select("junction_aa", v=pl.col("v_gene") if same_v else pl.lit("")).with_row_index("_i")
    frame = frame.filter(
        pl.col("v").is_not_null() & pl.col("junction_aa").is_not_null() & (pl.col("junction_aa").str.len_chars() > 0)
    )
    frame = frame.with_columns(_len=pl.col("junction_aa").str.len_chars())
    max_gap = max_distance // (WEIGHT * GAP_PENALTY)
    edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for (_,), bucket in frame.group_by(["v"], maintain_order=True):
        by_len = {
            length: (part["_i"].to_numpy(), _encode(part["junction_aa"].to_list(), length))
            for (length,), part in bucket.group_by(["_len"], maintain_order=True)
        }
        for la, (ia, ea) in by_len.items():
            for lb, (ib, eb) in by_len.items():
                if lb < la or lb - la > max_gap:
                    continue
                for start in range(0, len(ia), chunk):
                    dist = _block(ea[start : start + chunk], eb)
                    r, c = np.nonzero(dist <= max_distance)
                    gi, gj = ia[start : start + chunk][r], ib[c]
                    keep = gi < gj if la == lb else np.ones(len(gi), dtype=bool)
                    lo, hi = np.minimum(gi, gj)[keep], np.maximum(gi, gj)[keep]
                    edges.append((lo, hi, dist[r, c][keep]))
    if not edges:
        return pl.DataFrame(schema={"i": pl.UInt32, "j": pl.UInt32, "distance": pl.Int32})
    i, j, d = (np.concatenate(x) for x in zip(*edges, strict=True))
    frame = pl.DataFrame({"i": i.astype(np.uint32), "j": j.astype(np.uint32), "distance": d.astype(np.int32)})
    return frame.sort("i", "j")


def specificity_groups(
    clones: pl.DataFrame, *, max_distance: int = 12, same_v: bool = True, min_size: int = 2
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Connected components of the neighbour graph.

    Parameters
    ----------
    clones
        ``junction_aa`` and ``v_gene`` (and any id columns: patient, clone_id, ...), all patients together.
    max_distance, same_v
        Neighbour rule (:func:`neighbour_pairs`).
    min_size
        Components smaller than this get no group.

    Returns
    -------
    (polars.DataFrame, polars.DataFrame)
        ``clones`` with ``specificity_group`` (``"SG1"``, ``"SG2"``, ... by decreasing size, then first
        member; null when ungrouped) and ``group_size``; and the edges (``i``, ``j`` row indices, ``distance``).
    """
    edges = neighbour_pairs(clones, max_distance=max_distance, same_v=same_v)
    n = clones.height
    graph = coo_matrix((np.ones(edges.height), (edges["i"].to_numpy(), edges["j"].to_numpy())), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    comp = pl.DataFrame({"_c": labels.astype(np.int64)}).with_row_index("_i")
    sizes = comp.group_by("_c").agg(size=pl.len(), first=pl.col("_i").min())
    sizes = sizes.filter(pl.col("size") >= min_size).sort(["size", "first"], descending=[True, False])
    names = sizes.with_columns(specificity_group=pl.format("SG{}", pl.int_range(1, pl.len() + 1)))
    comp = comp.join(
        names.select("_c", "specificity_group", group_size=pl.col("size").cast(pl.Int64)), on="_c", how="left"
    ).sort("_i")
    return clones.with_columns(comp["specificity_group"], comp["group_size"]), edges


def _motif(junctions: list[str]) -> str:
    """Consensus of the group's most common junction length: a residue shared by all, else ``.``."""
    lengths = [len(s) for s in junctions]
    modal = max(set(lengths), key=lambda length: (lengths.count(length), -length))
    same = [s for s in junctions if len(s) == modal]
    return "".join(col[0] if len(set(col)) == 1 else "." for col in zip(*same, strict=True))


def group_summary(
    grouped: pl.DataFrame,
    *,
    patient: str = "patient",
    flagged: str | None = "flagged",
    tumour_frequency: str | None = None,
    annotation: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per specificity group: members, patients, flagged members, V genes, motif, annotation.

    ``report`` marks the groups worth reporting: at least 2 flagged members or members in at least 2
    patients. ``annotation`` (clone rows with ``specificity_group`` and ``known_specificity``, e.g.
    :func:`~tcrtrack.specificity.matching.summarise_hits` joined back) lists the database labels inside.
    """
    members = grouped.filter(pl.col("specificity_group").is_not_null())
    aggs = [
        pl.len().alias("size"),
        pl.col(patient).n_unique().alias("n_patients"),
        pl.col(patient).unique().sort().str.join(",").alias("patients"),
        pl.col("v_gene").value_counts(sort=True).alias("_v"),
        pl.col("junction_aa").alias("_junctions"),
    ]
    if flagged and flagged in members.columns:
        aggs.append(pl.col(flagged).fill_null(False).sum().cast(pl.Int64).alias("n_flagged"))
    if tumour_frequency and tumour_frequency in members.columns:
        aggs.append(pl.col(tumour_frequency).max().alias("max_tumour_frequency"))
    out = members.group_by("specificity_group", maintain_order=True).agg(aggs)
    out = out.with_columns(
        v_genes=pl.col("_v")
        .list.eval(pl.format("{}:{}", pl.element().struct.field("v_gene"), pl.element().struct.field("count")))
        .list.join(","),
        motif=pl.col("_junctions").map_elements(lambda s: _motif(list(s)), return_dtype=pl.Utf8),
    ).drop("_v", "_junctions")
    n_flagged = pl.col("n_flagged") if "n_flagged" in out.columns else pl.lit(0)
    out = out.with_columns(report=(n_flagged >= 2) | (pl.col("n_patients") >= 2))
    if annotation is not None and "known_specificity" in annotation.columns:
        annotated = annotation.filter(
            pl.col("specificity_group").is_not_null() & pl.col("known_specificity").is_not_null()
        )
        labels = annotated.group_by("specificity_group").agg(
            known_specificity=pl.col("known_specificity").str.split(";").explode().unique().sort().str.join(";")
        )
        out = out.join(labels, on="specificity_group", how="left", maintain_order="left")
    order = out.with_columns(_n=pl.col("specificity_group").str.slice(2).cast(pl.Int64)).sort("_n").drop("_n")
    return order
