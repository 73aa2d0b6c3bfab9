"""Vendor gene names -> IMGT with tidytcells, once per distinct name.

Vendors spell genes their own way: Adaptive ``TCRBV05-01*01`` (ties ``TCRBV03-01,TCRBV03-02``, orphons
``TCRBV20-or09_02``, families ``TCRBV03``), MiXCR ``TRBV12-3*00`` (``*00``: MiXCR's built-in library
has no IMGT allele), 10x ``TRAV29DV5``. tidytcells 2.2 (``tr.standardize`` / ``ig.standardize``)
maps them to IMGT (``TRBV5-1*01``, ``TRAV29/DV5``). Ties stay comma-separated (AIRR style) so
that ingest marks the row ambiguous.
"""

from __future__ import annotations

import functools
import re

import polars as pl

_FAMILY = re.compile(r"^TCR([ABGD])([VDJC])0*(\d+)$", re.IGNORECASE)
_ORPHON = re.compile(r"-or0*(\d+)_0*(\d+)", re.IGNORECASE)
_MIXCR_PLACEHOLDER_ALLELE = re.compile(r"\*00$")

MAPPED, FAMILY, UNMAPPED = "mapped", "family", "unmapped"


@functools.cache
def standardise_name(name: str, species: str = "homosapiens") -> tuple[str, str]:
    """One gene name -> (IMGT name, status); status ``mapped``, ``family`` or ``unmapped`` (name kept as given).

    Adaptive family names (``TCRBV03``) become the IMGT subgroup (``TRBV3``) without tidytcells, which
    would otherwise complete them to a gene (``TRBV3-1``) the data never called.
    """
    family = _FAMILY.match(name)
    if family:
        locus, segment, number = family.groups()
        return f"TR{locus.upper()}{segment.upper()}{int(number)}", FAMILY
    import tidytcells  # deferred: only converters need it

    candidate = _ORPHON.sub(lambda m: f"/OR{m.group(1)}-{m.group(2)}", _MIXCR_PLACEHOLDER_ALLELE.sub("", name))
    module = tidytcells.ig if candidate[:2].upper() == "IG" else tidytcells.tr
    result = module.standardize(candidate, species=species, log_failures=False)
    return (result, MAPPED) if result else (name, UNMAPPED)


def _standardise_value(value: str, species: str) -> tuple[str | None, bool, bool]:
    names, unmapped, family = [], False, False
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        name, status = standardise_name(part, species)
        unmapped |= status == UNMAPPED
        family |= status == FAMILY
        if name not in names:
            names.append(name)
    return (",".join(names) or None), unmapped, family


def standardise_calls(frame: pl.DataFrame, *, species: str) -> tuple[pl.DataFrame, int, int]:
    """Standardise ``v_call``, ``d_call``, ``j_call`` in place.

    Returns the frame, the number of rows whose V or J holds a name that could not be standardised,
    and the number of rows whose V or J is only a family. tidytcells runs once per distinct value
    and the results are mapped back with ``replace_strict``.
    """
    for column in ("v_call", "d_call", "j_call"):
        values = frame[column].drop_nulls().unique().to_list()
        results = {value: _standardise_value(value, species) for value in values}
        mapping = {value: result[0] for value, result in results.items()}
        unmapped = {value: result[1] for value, result in results.items()}
        family = {value: result[2] for value, result in results.items()}
        frame = frame.with_columns(
            pl.col(column)
            .replace_strict(unmapped, default=False, return_dtype=pl.Boolean)
            .alias(f"_{column}_unmapped"),
            pl.col(column).replace_strict(family, default=False, return_dtype=pl.Boolean).alias(f"_{column}_family"),
            pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Utf8),
        )
    counts = frame.select(
        unmapped=(pl.col("_v_call_unmapped") | pl.col("_j_call_unmapped")).sum(),
        family=(pl.col("_v_call_family") | pl.col("_j_call_family")).sum(),
    )
    frame = frame.drop(pl.selectors.starts_with("_"))
    return frame, int(counts["unmapped"][0]), int(counts["family"][0])
