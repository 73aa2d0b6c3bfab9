#!/usr/bin/env python
"""Speed of the per-comparison calls on a 1M-clone pair (not part of the test run).

Generates a seeded pair of repertoires over `--clones` clones (power-law frequencies, log-normal draw noise sd 0.3,
3M templates each), then times, in-process, for each model: the noise fit and the p-values (with their
smallest reachable values, which the testable-only BH needs) of every clone. Prints one line per model.

    python benchmarks/calls_speed.py [--clones 2000000]   # ~1M clones seen in either sample
"""

from __future__ import annotations

import time

import numpy as np

from tcrtrack.empirical_null import EmpiricalNull
from tcrtrack.expansion import fisher_pvalues
from tcrtrack.noise import betabinom_sf
from tcrtrack.noise_fit import fit_noise_from_bulk
from tcrtrack.null_fit import fit_empirical_null


def pair(seed: int = 0, n_clones: int = 1_000_000, depth: int = 3_000_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.pareto(1.0, n_clones) + 1
    f /= f.sum()
    a = rng.poisson(f * np.exp(rng.normal(0, 0.3, n_clones)) * depth)
    b = rng.poisson(f * np.exp(rng.normal(0, 0.3, n_clones)) * depth)
    keep = (a + b) > 0
    return a[keep], b[keep]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="speed of the per-comparison calls")
    parser.add_argument("--clones", type=int, default=2_000_000, help="clones drawn (about half are seen)")
    a, b = pair(n_clones=parser.parse_args().clones)
    n_a, n_b = int(a.sum()), int(b.sum())
    n = a + b
    print(f"{a.size} clones seen in either sample")
    start = time.perf_counter()
    fisher_pvalues(a, b, n_a=n_a, n_b=n_b)
    print(f"fisher: p-values {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    noise = fit_noise_from_bulk(a, b, n_a=n_a, n_b=n_b)
    fitted = time.perf_counter()
    rho = noise.rho(n / (n_a + n_b))
    betabinom_sf(b - 1, n, p=n_b / (n_a + n_b), rho=rho)
    print(f"betabinomial: fit {fitted - start:.2f} s, p-values {time.perf_counter() - fitted:.2f} s")
    start = time.perf_counter()
    null: EmpiricalNull = fit_empirical_null(a, b, n_a=n_a, n_b=n_b)
    fitted = time.perf_counter()
    offset, total = float(np.log(n_b / n_a)), float(n_a + n_b)
    null.pvalues(b, n, offset=offset, total_depth=total)
    null.min_pvalues(n, offset=offset, total_depth=total)
    print(f"overdispersed: fit {fitted - start:.2f} s, p-values and minima {time.perf_counter() - fitted:.2f} s")


if __name__ == "__main__":
    main()
