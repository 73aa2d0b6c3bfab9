"""Cohort design of a simulation: option checks, each patient's libraries, the sample sheet."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tcrtrack.simulation.truth import CATEGORIES

__all__ = [
    "SHEET_COLUMNS",
    "CohortPlan",
    "Library",
    "library_rng",
    "plan_cohort",
    "sample_design",
    "write_sample_sheet",
]

SHEET_COLUMNS: tuple[str, ...] = (
    "patient",
    "sample",
    "compartment",
    "day",
    "replicate",
    "path",
    "format",
    "response",
)
_COMPARTMENT_CODE = {"blood": 1, "tumor": 2, "product": 3}

Library = tuple[str, int, int]
"""(compartment, day, replicate) of one sequencing library."""


@dataclass(frozen=True)
class CohortPlan:
    """Checked options of :func:`tcrtrack.simulate.simulate_cohort` and each patient's libraries."""

    post_days: tuple[int, ...]
    tumor_days: tuple[int, ...]
    n_planted: tuple[int, ...]
    with_product: frozenset[int]
    designs: tuple[tuple[Library, ...], ...]  # per patient, in sheet order
    depth: dict[str, int]  # per compartment
    dispersion: dict[str, float]  # per compartment

    @property
    def n_steps(self) -> int:
        """Progress steps: one per patient (its truth) and one per library."""
        return sum(1 + len(d) for d in self.designs)


def _indices(chosen: Sequence[int] | float, n_patients: int) -> set[int]:
    """0-based patient indices, or the first ``ceil(fraction * n)`` for a float fraction."""
    if isinstance(chosen, float):
        return set(range(math.ceil(chosen * n_patients)))
    return set(chosen)


def plan_cohort(
    *,
    n_patients: int,
    n_clones: int,
    blood_depth: int,
    tumor_depth: int,
    post_days: Sequence[int],
    tumor_days: Sequence[int],
    dispersion: float,
    tumor_dispersion: float | None,
    n_planted: Sequence[int],
    replicate_patients: Sequence[int] | float,
    missing_pre_biopsy: Sequence[int],
    power_law_exponent: float,
    product_patients: Sequence[int] | float,
    n_product_clones: int,
    product_depth: int | None,
    product_blood_share: float,
    product_half_life_days: float,
    seed: int,
) -> CohortPlan:
    """Check the options (``ValueError`` listing every problem) and lay out each patient's libraries."""
    post, tumor = tuple(int(d) for d in post_days), tuple(int(d) for d in tumor_days)
    planted = tuple(int(n) for n in n_planted)
    _validate(
        n_patients,
        n_clones,
        blood_depth,
        tumor_depth,
        post,
        tumor,
        dispersion,
        tumor_dispersion,
        planted,
        power_law_exponent,
        seed,
    )
    replicated = _indices(replicate_patients, n_patients)
    with_product = _indices(product_patients, n_patients)
    no_pre = set(missing_pre_biopsy)
    if not replicated | no_pre | with_product <= set(range(n_patients)):
        raise ValueError("replicate_patients/missing_pre_biopsy/product_patients: indices must be 0..n_patients-1")
    product_depth = blood_depth if product_depth is None else int(product_depth)
    if with_product:
        _validate_product(n_product_clones, product_depth, product_blood_share, product_half_life_days)
    designs = tuple(
        tuple(sample_design(post, tumor, replicated=p in replicated, no_pre=p in no_pre, product=p in with_product))
        for p in range(n_patients)
    )
    return CohortPlan(
        post_days=post,
        tumor_days=tumor,
        n_planted=planted,
        with_product=frozenset(with_product),
        designs=designs,
        depth={"blood": blood_depth, "tumor": tumor_depth, "product": product_depth},
        dispersion={
            "blood": dispersion,
            "product": dispersion,
            "tumor": dispersion if tumor_dispersion is None else tumor_dispersion,
        },
    )


def _validate(
    n_patients: int,
    n_clones: int,
    blood_depth: int,
    tumor_depth: int,
    post_days: tuple[int, ...],
    tumor_days: tuple[int, ...],
    dispersion: float,
    tumor_dispersion: float | None,
    n_planted: tuple[int, ...],
    exponent: float,
    seed: int,
) -> None:
    problems = []
    if not 1 <= n_patients <= 99:
        problems.append("n_patients must be in 1..99")
    if blood_depth < 1 or tumor_depth < 1:
        problems.append("depths must be positive")
    if not post_days or min(post_days) <= 0 or len(set(post_days)) != len(post_days):
        problems.append("post_days must be distinct days > 0")
    if max(tumor_days, default=0) <= 0 or len(set(tumor_days)) != len(tumor_days):
        problems.append("tumor_days must be distinct with at least one day > 0")
    if dispersion < 0 or (tumor_dispersion is not None and tumor_dispersion < 0):
        problems.append("dispersion must be >= 0")
    if len(n_planted) != len(CATEGORIES) or min(n_planted) < 0:
        problems.append(f"n_planted needs {len(CATEGORIES)} non-negative counts")
    elif n_clones < 100 or 10 * sum(n_planted) > n_clones:
        problems.append("n_clones must be >= 100 and >= 10 x the planted clones")
    if exponent <= 1:
        problems.append("power_law_exponent must be > 1")
    if seed < 0:
        problems.append("seed must be >= 0")
    if problems:
        raise ValueError("; ".join(problems))


def _validate_product(n_product: int, depth: int, share: float, half_life: float) -> None:
    problems = []
    if n_product < 1:
        problems.append("n_product_clones must be >= 1")
    if depth < 1:
        problems.append("product_depth must be positive")
    if not 0 < share <= 0.3:
        problems.append("product_blood_share must be in (0, 0.3]")
    if not (math.isfinite(half_life) and half_life > 0):
        problems.append("product_half_life_days must be a positive number")
    if problems:
        raise ValueError("; ".join(problems))


def sample_design(
    post_days: tuple[int, ...], tumor_days: tuple[int, ...], *, replicated: bool, no_pre: bool, product: bool = False
) -> list[Library]:
    """(compartment, day, replicate) of one patient's libraries, in sheet order."""
    blood = [("blood", 0, 1)] + ([("blood", 0, 2)] if replicated else [])
    blood += [("blood", d, 1) for d in sorted(post_days)]
    tumor = [("tumor", d, 1) for d in sorted(tumor_days) if not (no_pre and d <= 0)]
    return blood + tumor + ([("product", 0, 1)] if product else [])


def sample_id(pid: str, library: Library) -> str:
    """``{patient}_{compartment}_d{day}_r{replicate}``."""
    compartment, day, rep = library
    return f"{pid}_{compartment}_d{day}_r{rep}"


def library_rng(seed: int, p: int, library: Library) -> np.random.Generator:
    """The library's own random stream, keyed on (seed, patient, compartment, day, replicate)."""
    compartment, day, rep = library
    return np.random.default_rng([seed, p, _COMPARTMENT_CODE[compartment], day + 100_000, rep])


def sheet_row(pid: str, p: int, library: Library, path: str) -> dict[str, Any]:
    """The sample-sheet row of one library (``response`` alternates, from ``responder`` for P01)."""
    compartment, day, rep = library
    return {
        "patient": pid,
        "sample": sample_id(pid, library),
        "compartment": compartment,
        "day": day,
        "replicate": rep,
        "path": path,
        "format": "airr",
        "response": "responder" if p % 2 == 0 else "non-responder",
    }


def write_sample_sheet(sheet: Path, rows: list[dict[str, Any]], *, out_dir: Path) -> None:
    """Write :data:`SHEET_COLUMNS`, with ``path`` (relative to ``out_dir``) made relative to the sheet."""
    prefix = os.path.relpath(out_dir, sheet.parent)
    sheet.write_text(
        pl.DataFrame(rows)
        .select(SHEET_COLUMNS)
        .with_columns(path=pl.lit(prefix + "/") + pl.col("path") if prefix != "." else pl.col("path"))
        .write_csv(separator="\t")
    )
