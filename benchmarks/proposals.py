"""Proposed changes to the package's hot spots, measured side by side (``python benchmarks/proposals.py``).

The benchmarks do not edit the package: each proposal is a drop-in replacement written here, timed
against the package's function on the same input, and checked against it.

1. ``tcrtrack.diversity``: importing scikit-bio (pandas, scipy.stats, skbio.io ...) costs ~1.5 s per diversity
   job, more than the metrics of a 300k-clone sample; the six alpha functions used are one-line numpy
   formulas (:func:`skbio_free_metrics`, identical values). Not adopted: the workflow now runs one
   diversity job per patient, so the import is paid once per patient, and the mission names scikit-bio.

Adopted: numpy's ``method="count"`` in ``tcrtrack.rarefaction.rarefy`` when the depth is near the total or
far below it (measured below against ``method="marginals"``, the earlier behaviour); one ingest and one
diversity job per patient in the workflow.

(Two earlier proposals, computing the V/J gene normalisation on distinct calls and sorting within groups
instead of the whole frame before the clonotype group-by, are in ``tcrtrack.ingest`` since d866cfb.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np


def skbio_free_metrics(x: np.ndarray) -> dict[str, float]:
    """The scikit-bio calls of ``tcrtrack.diversity._metrics_of_nonzero`` written with numpy (x: int64 > 0)."""
    total = x.sum()
    p = x / total
    f1, f2 = int(np.count_nonzero(x == 1)), int(np.count_nonzero(x == 2))
    rare = x[x <= 10]
    s_rare, n_rare = rare.size, int(rare.sum())
    out = {
        "shannon": float(-np.sum(p * np.log(p))),  # alpha.shannon(x)
        "dominance": float(np.sum(p * p)),  # alpha.dominance(x)
        "berger_parker_d": float(x.max() / total),  # alpha.berger_parker_d(x)
        "chao1": float(x.size + f1 * (f1 - 1) / (2.0 * (f2 + 1))),  # alpha.chao1(x, bias_corrected=True)
        "hill_0.5": float(np.sum(np.sqrt(p)) ** 2),  # alpha.hill(x, order=0.5)
        "hill_4": float(np.sum(p**4) ** (-1.0 / 3.0)),  # alpha.hill(x, order=4)
    }
    # ACE (alpha.ace(x, rare_threshold=10)) where defined (tcrtrack.diversity._ace returns NaN otherwise)
    c_ace = 1.0 - f1 / n_rare if n_rare else float("nan")
    fk = np.bincount(rare, minlength=11)
    k = np.arange(fk.size)
    if n_rare > 1 and c_ace > 0:
        gamma = max(s_rare / c_ace * float(np.sum(k * (k - 1) * fk)) / (n_rare * (n_rare - 1)) - 1.0, 0.0)
        out["ace"] = float((x.size - s_rare) + s_rare / c_ace + f1 / c_ace * gamma)
    else:
        out["ace"] = float("nan")
    return out


def _skbio_metrics(x: np.ndarray) -> dict[str, float]:
    from skbio.diversity import alpha

    return {
        "shannon": alpha.shannon(x),
        "dominance": alpha.dominance(x),
        "berger_parker_d": alpha.berger_parker_d(x),
        "chao1": alpha.chao1(x, bias_corrected=True),
        "hill_0.5": alpha.hill(x, order=0.5),
        "hill_4": alpha.hill(x, order=4),
        "ace": alpha.ace(np.minimum(x, 11), rare_threshold=10),
    }


def _cpu(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _import_seconds(statement: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(clones: int = 1_000_000) -> dict[str, object]:
    from tcrtrack.rarefaction import rarefy

    rng = np.random.default_rng(7)
    x = np.floor((1.0 - rng.random(clones) * (1.0 - 1.0 / clones)) ** (-1.0 / 1.2)).astype(np.int64)
    total = int(x.sum())
    out: dict[str, object] = {"clones": clones, "total": total}
    for share in (0.95, 0.5, 0.1):
        depth = int(share * total)
        out[f"rarefy_ms_at_{share}"] = {
            "marginals (before)": 1000
            * _cpu(lambda d=depth: np.random.default_rng(1).multivariate_hypergeometric(x, d, method="marginals")),
            "package": 1000 * _cpu(lambda d=depth: rarefy(x, depth=d, rng=np.random.default_rng(1))),
        }
    ours, theirs = skbio_free_metrics(x), _skbio_metrics(x)
    out["metrics_max_relative_difference"] = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in ours)
    out["import_s"] = {
        "tcrtrack.diversity (scikit-bio)": _import_seconds("import tcrtrack.diversity"),
        "numpy + polars only": _import_seconds("import numpy, polars"),
    }
    return out


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
