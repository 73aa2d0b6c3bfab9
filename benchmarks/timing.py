"""How the benchmarks of ``run.py`` measure: the machine's description, wall and CPU clocks, interleaved
repeats (so that a neighbour's load hits every contender alike), the median of per-repeat ratios, and
inputs generated once into ``benchmarks/out/``. What they measure is in ``run.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, object]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
    except (OSError, StopIteration):
        mem_kb = 0
    import scipy
    import snakemake

    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "snakemake": snakemake.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def clock(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


CPU_TIMES: dict[str, list[float]] = {}


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Wall time of each function, ``repeat`` times, alternating them so that load changes hit all alike.
    The process CPU time (all threads) of each call goes to ``CPU_TIMES[name]``: on a shared machine it
    shows whether a slow wall time was the code or the neighbours."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for name in fns:
        CPU_TIMES[name] = []
    for _ in range(repeat):
        for name, fn in fns.items():
            cpu = time.process_time()
            times[name].append(clock(fn)[0])
            CPU_TIMES[name].append(time.process_time() - cpu)
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cached(path: Path, make: Callable[[], object]) -> Path:
    if not path.exists():
        log(f"generating {path.relative_to(ROOT)}")
        seconds, _ = clock(make)
        log(f"  done in {seconds:.1f} s")
    return path
