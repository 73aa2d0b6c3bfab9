"""Draw T-cell receptor junctions from OLGA's default human recombination models.

OLGA (Sethna et al. 2019, *Bioinformatics* 35:2974) samples V(D)J recombination
scenarios from IGoR-inferred models. The human TRB (VDJ) and TRA (VJ) models ship
inside the ``olga`` package (``olga/default_models/human_T_beta`` and ``human_T_alpha``).

OLGA draws its random numbers from numpy's *global* legacy RNG (``np.random.random``).
:func:`generate_clonotypes` therefore seeds that RNG for the duration of one call and
restores the caller's global state afterwards (:func:`_global_numpy_seed`), so output is
reproducible per seed and no global state leaks. That makes it unsafe to run two
generations concurrently in threads of one process (processes are fine).

Only rearrangements whose V and J alleles are functional (IMGT ``F`` or ``(F)``) are kept:
pseudogenes and ORFs are in the models but are not seen in expressed repertoires.
OLGA's speed on one core is in benchmarks/README.md (why the benchmarks' large files use
``benchmarks/airrgen.py`` instead).
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import olga
import olga.load_model as olga_load
import olga.sequence_generation as olga_gen
import polars as pl

Chain = Literal["TRB", "TRA"]

_MODEL_DIRS: dict[str, str] = {"TRB": "human_T_beta", "TRA": "human_T_alpha"}
_FUNCTIONAL = frozenset({"F", "(F)"})
_CODONS = {
    a + b + c: aa
    for (a, b, c), aa in zip(
        ((a, b, c) for a in "TCAG" for b in "TCAG" for c in "TCAG"),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        strict=True,
    )
}
_STOPS = ("TAG", "TAA", "TGA")

#: Columns of the clonotype frames returned here (calls carry the IMGT allele).
CLONOTYPE_COLUMNS = ("junction", "junction_aa", "v_call", "j_call", "v_gene", "j_gene")


def strip_allele(call: str) -> str:
    """Return the gene of an IMGT call: ``"TRBV5-1*01"`` -> ``"TRBV5-1"``."""
    return call.split("*", 1)[0]


def translate(junction: str) -> str:
    """Translate a junction codon by codon; a trailing partial codon becomes ``_``.

    Out-of-frame junctions therefore end in ``_`` and junctions with a stop codon
    contain ``*``, the two marks of a non-productive rearrangement.
    """
    n_full = len(junction) // 3
    aa = "".join(_CODONS.get(junction[3 * i : 3 * i + 3], "X") for i in range(n_full))
    return aa + ("_" if len(junction) % 3 else "")


@dataclass(frozen=True)
class _Generator:
    """A loaded OLGA model with the names and functionality of its alleles."""

    sampler: Any  # olga SequenceGenerationVDJ / SequenceGenerationVJ
    v_names: tuple[str, ...]
    j_names: tuple[str, ...]
    v_ok: np.ndarray  # bool per V index: allele is functional
    j_ok: np.ndarray


def _functionality(anchor_csv: Path) -> dict[str, str]:
    with anchor_csv.open(newline="") as handle:
        return {row["gene"]: row["function"] for row in csv.DictReader(handle)}


@functools.cache
def load_generator(chain: Chain = "TRB") -> _Generator:
    """Load (once per process) OLGA's default human model for ``chain``."""
    folder = Path(olga.__file__).parent / "default_models" / _MODEL_DIRS[chain]
    params = str(folder / "model_params.txt")
    marginals = str(folder / "model_marginals.txt")
    v_csv, j_csv = folder / "V_gene_CDR3_anchors.csv", folder / "J_gene_CDR3_anchors.csv"
    if chain == "TRB":
        genomic = olga_load.GenomicDataVDJ()
        genomic.load_igor_genomic_data(params, str(v_csv), str(j_csv))
        model = olga_load.GenerativeModelVDJ()
        model.load_and_process_igor_model(marginals)
        sampler = olga_gen.SequenceGenerationVDJ(model, genomic)
    else:
        genomic = olga_load.GenomicDataVJ()
        genomic.load_igor_genomic_data(params, str(v_csv), str(j_csv))
        model = olga_load.GenerativeModelVJ()
        model.load_and_process_igor_model(marginals)
        sampler = olga_gen.SequenceGenerationVJ(model, genomic)
    v_func, j_func = _functionality(v_csv), _functionality(j_csv)
    v_names = tuple(g[0] for g in genomic.genV)
    j_names = tuple(g[0] for g in genomic.genJ)
    return _Generator(
        sampler=sampler,
        v_names=v_names,
        j_names=j_names,
        v_ok=np.array([v_func.get(n) in _FUNCTIONAL for n in v_names]),
        j_ok=np.array([j_func.get(n) in _FUNCTIONAL for n in j_names]),
    )


@contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global legacy RNG (which OLGA uses) and restore it on exit."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def olga_seed(*entropy: int) -> int:
    """A 32-bit seed for numpy's legacy RNG derived from integer ``entropy``."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def generate_clonotypes(n: int, *, seed: int, chain: Chain = "TRB") -> pl.DataFrame:
    """Draw ``n`` distinct productive clonotypes of ``chain`` from OLGA.

    Parameters
    ----------
    n
        Number of distinct clonotypes; distinct on (``junction_aa``, V gene, J gene),
        the default clonotype key of the workflow. Later duplicates are redrawn.
    seed
        Seed for numpy's global RNG during the draw (restored afterwards).
    chain
        ``"TRB"`` (VDJ model) or ``"TRA"`` (VJ model).

    Returns
    -------
    polars.DataFrame
        Columns :data:`CLONOTYPE_COLUMNS`, ``n`` rows in order of first draw. Calls
        carry the IMGT allele (``TRBV5-1*01``); ``v_gene``/``j_gene`` do not.
    """
    gen = load_generator(chain)
    seen: set[tuple[str, str, str]] = set()
    rows: list[tuple[str, str, str, str, str, str]] = []
    max_draws = 50 * n + 1000
    with _global_numpy_seed(seed):
        for _ in range(max_draws):
            if len(rows) == n:
                break
            nt, aa, v, j = gen.sampler.gen_rnd_prod_CDR3()
            if not (gen.v_ok[v] and gen.j_ok[j]):
                continue
            v_call, j_call = gen.v_names[v], gen.j_names[j]
            key = (aa, strip_allele(v_call), strip_allele(j_call))
            if key in seen:
                continue
            seen.add(key)
            rows.append((nt, aa, v_call, j_call, key[1], key[2]))
    if len(rows) < n:  # pragma: no cover - would need an absurd n
        raise RuntimeError(f"OLGA gave only {len(rows)} distinct clonotypes of {n} asked")
    return pl.DataFrame(rows, schema=list(CLONOTYPE_COLUMNS), orient="row")


def make_nonproductive(clones: pl.DataFrame, *, rng: np.random.Generator) -> pl.DataFrame:
    """Turn productive clonotypes into non-productive rearrangements.

    Half get a frameshift (1 or 2 nucleotides inserted or deleted inside the junction,
    so ``junction_aa`` ends in ``_``); the other half get an in-frame stop codon in the
    middle of the junction (``junction_aa`` contains ``*``). Gene calls are kept.

    Parameters
    ----------
    clones
        Frame with :data:`CLONOTYPE_COLUMNS`.
    rng
        Source of randomness.

    Returns
    -------
    polars.DataFrame
        Same columns and row count as ``clones``.
    """
    junctions = []
    for nt in clones["junction"].to_list():
        codons = len(nt) // 3
        if rng.random() < 0.5:
            pos = int(rng.integers(6, len(nt) - 6))
            shift = int(rng.choice([-2, -1, 1, 2]))
            ins = "".join(rng.choice(list("ACGT"), size=max(shift, 0)))
            nt = nt[:pos] + ins + nt[pos - min(shift, 0) :]
        else:
            c = int(rng.integers(2, max(codons - 2, 3)))
            nt = nt[: 3 * c] + str(rng.choice(_STOPS)) + nt[3 * c + 3 :]
        junctions.append(nt)
    return clones.with_columns(
        junction=pl.Series(junctions, dtype=pl.Utf8),
        junction_aa=pl.Series([translate(nt) for nt in junctions], dtype=pl.Utf8),
    )
