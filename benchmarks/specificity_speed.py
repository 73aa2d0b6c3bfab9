"""Speed of antigen annotation and specificity grouping: 5,000 expanded clones, a 100k-row database.

    python benchmarks/specificity_speed.py [--clones 5000] [--records 100000] [--seed 0]

The database is synthetic (VDJdb slim format, written to a temporary file): 25,000 OLGA junctions and
75,000 one- to three-substitution variants of them, with random epitope labels, so that it has
VDJdb's near-duplicate structure. The clones are 4,500 fresh OLGA clonotypes and 500 planted database
junctions (half exact, half one substitution away). Timed, on at most 2 threads (``POLARS_MAX_THREADS``):
reading and normalising the file (tidytcells), annotation in the three modes with the per-clone
summary, and specificity groups over the 5,000 clones. Target: < 10 s in total on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")

import numpy as np
import polars as pl

from tcrtrack.olga_source import generate_clonotypes
from tcrtrack.specificity import annotate, read_database, specificity_groups, summarise_hits

_AA = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
_EPITOPES = (
    ("NLVPMVATV", "pp65", "CMV"),
    ("GLCTLVAML", "BMLF1", "EBV"),
    ("GILGFVFTL", "M", "InfluenzaA"),
    ("YLQPRTFLL", "Spike", "SARS-CoV-2"),
    ("ELAGIGILTV", "MLANA", "HomoSapiens"),
)


def _mutate(seqs: list[str], rng: np.random.Generator, max_subs: int = 3) -> list[str]:
    out = []
    for s in seqs:
        chars = list(s)
        inner = np.arange(3, len(s) - 2) if len(s) > 6 else np.arange(1, max(len(s) - 1, 2))
        for pos in rng.choice(inner, size=int(rng.integers(1, max_subs + 1)), replace=True):
            chars[pos] = str(rng.choice(_AA))
        out.append("".join(chars))
    return out


def synthetic_database(path: Path, *, records: int, seed: int) -> pl.DataFrame:
    """Write a VDJdb-slim-format file of ``records`` rows; return its source clonotypes."""
    rng = np.random.default_rng(seed)
    base = generate_clonotypes(records // 4, seed=seed + 1)
    pick = rng.integers(0, base.height, size=records - base.height)
    variants = base[pick].with_columns(junction_aa=pl.Series(_mutate(base["junction_aa"][pick].to_list(), rng)))
    rows = pl.concat([base, variants])
    epitope = rng.integers(0, len(_EPITOPES), size=rows.height)
    frame = pl.DataFrame(
        {
            "gene": "TRB",
            "cdr3": rows["junction_aa"],
            "species": "HomoSapiens",
            "antigen.epitope": [_EPITOPES[e][0] for e in epitope],
            "antigen.gene": [_EPITOPES[e][1] for e in epitope],
            "antigen.species": [_EPITOPES[e][2] for e in epitope],
            "complex.id": "0",
            "v.segm": rows["v_call"],
            "j.segm": rows["j_call"],
            "v.end": "",
            "j.start": "",
            "mhc.a": "HLA-A*02:01",
            "mhc.b": "B2M",
            "mhc.class": "MHCI",
            "reference.id": "synthetic",
            "vdjdb.score": rng.integers(0, 4, size=rows.height).astype(str),
        }
    )
    frame.write_csv(path, separator="\t")
    return base


def expanded_clones(database_clones: pl.DataFrame, *, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    fresh = generate_clonotypes(n - n // 10, seed=seed + 2).select("junction_aa", "v_gene", "j_gene")
    planted = database_clones.sample(n // 10, seed=seed).select("junction_aa", "v_gene", "j_gene")
    half = planted.height // 2
    mutated = _mutate(planted["junction_aa"][half:].to_list(), rng, max_subs=1)
    planted = planted.with_columns(junction_aa=pl.Series(planted["junction_aa"][:half].to_list() + mutated))
    clones = pl.concat([fresh, planted]).with_row_index("clone_id")
    patients = rng.choice(["P01", "P02", "P03", "P04"], size=clones.height)
    return clones.with_columns(patient=pl.Series(patients), count=pl.lit(10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=int, default=5_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vdjdb.slim.txt"
        source = synthetic_database(path, records=args.records, seed=args.seed)
        clones = expanded_clones(source, n=args.clones, seed=args.seed)
        timings = {}
        start = time.perf_counter()
        db = read_database(path, fmt="vdjdb")
        timings["read + normalise database"] = time.perf_counter() - start
        start = time.perf_counter()
        hit_counts = {}
        for mode in ("exact", "exact_v", "one_mismatch"):
            hits = annotate(clones, db, mode=mode)
            summarise_hits(hits, by=["clone_id"])
            hit_counts[mode] = hits["clone_id"].n_unique()
        timings["annotate (3 modes) + summaries"] = time.perf_counter() - start
        start = time.perf_counter()
        grouped, edges = specificity_groups(clones)
        timings["specificity groups"] = time.perf_counter() - start
    total = sum(timings.values())
    print(
        f"{args.clones} clones, {db.records.height} database records, POLARS_MAX_THREADS="
        f"{os.environ['POLARS_MAX_THREADS']}"
    )
    for name, seconds in timings.items():
        print(f"  {name:34s} {seconds:6.2f} s")
    print(f"  {'total':34s} {total:6.2f} s  (target < 10 s)")
    print(f"  clones hit: {hit_counts}; groups: {grouped['specificity_group'].n_unique() - 1}, edges: {edges.height}")


if __name__ == "__main__":
    main()
