"""Speed and memory benchmarks of tcrtrack at repertoire scale (1M-row AIRR files, 1M-clone samples).

Every figure is a ratio measured side by side in the same run (the machine may be shared, so runs are
interleaved and repeated; the median of the per-repeat ratios is reported, and the raw times):

* ingest: ``tcrtrack.ingest.ingest_airr`` of one 1M-row AIRR TSV.gz vs a bare ``polars.read_csv`` of the
  same file (goal <= 1.5x), and vs ``airr.load_rearrangement`` + a pandas group-by (goal >= 20x faster);
* expansion: ``tcrtrack.expansion.test_expansion`` (both models) on a pair of 1M-clone samples (goal
  <= 2 s) vs the per-clone ``scipy.stats.fisher_exact`` loop on a subsample, extrapolated;
* diversity: ``tcrtrack.diversity.sample_diversity`` (10 rarefactions) of N samples of 1M clonotypes on
  2 worker processes, as the workflow runs them (goal < 2 min for 100 samples);
* end to end: a cohort (patients x 7 samples x clonotypes) through ``snakemake --cores 2`` vs the bare read
  of all its inputs (goal <= 3x);
* memory: peak RSS of every job (Snakemake ``benchmark:`` files) of a 7-sample patient at 1M clonotypes
  per sample (goal <= 4 GB per job).

Inputs are generated (``benchmarks/airrgen.py``) into ``benchmarks/out/`` (git-ignored) and reused by
later runs. Usage (from the repository root, in the venv)::

    python benchmarks/run.py                       # everything (~25 min on 2 cores)
    python benchmarks/run.py --only ingest expansion
    python benchmarks/run.py --quick               # small sizes, a smoke test (~2 min)
    python benchmarks/run.py --only diversity --proposals   # + the proposed package changes, side by side

Results are printed as a Markdown table and merged into ``benchmarks/out/results.json`` (each step keeps
its latest measurement, with the date and load average; ``--quick`` writes ``results_quick.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

import airrgen  # noqa: E402  (benchmarks/ helper)
from timing import CPU_TIMES, cached, clock, interleaved, log, machine, median_ratio  # noqa: E402

STEPS = ("ingest", "expansion", "diversity", "cohort", "memory")


# --------------------------------------------------------------------------------------------- ingest
def airr_pandas_clonotypes(path: Path):
    """The reference implementation: the airr package's loader and a pandas group-by."""
    import airr

    frame = airr.load_rearrangement(str(path))
    keep = (
        (frame["locus"] == "TRB")
        & frame["productive"].fillna(False).astype(bool)
        & frame["junction_aa"].notna()
        & ~frame["junction_aa"].fillna("").str.contains(r"[*_~]")
        & (frame["junction_aa"].fillna("").str.len() >= 5)
        & (frame["duplicate_count"].fillna(0) > 0)
    )
    kept = frame.loc[keep].copy()
    kept["v_gene"] = kept["v_call"].str.split(",").str[0].str.replace(r"\*.*$", "", regex=True)
    kept["j_gene"] = kept["j_call"].str.split(",").str[0].str.replace(r"\*.*$", "", regex=True)
    return kept.groupby(["junction_aa", "v_gene", "j_gene"], as_index=False)["duplicate_count"].sum()


def minimal_clonotypes(path: Path) -> pl.DataFrame:
    """A floor for ingest: the least a clonotype table needs (read, filter, group-by, sorted output),
    without QC accounting, gene-call normalisation, validation or ambiguity flags."""
    raw = pl.read_csv(
        path, separator="\t", columns=["locus", "productive", "v_call", "j_call", "junction_aa", "duplicate_count"]
    )
    kept = raw.filter(
        (pl.col("locus") == "TRB") & (pl.col("productive") == "T") & ~pl.col("junction_aa").str.contains(r"[*_~]")
    )
    clonotypes = kept.group_by("junction_aa", "v_call", "j_call").agg(count=pl.col("duplicate_count").sum())
    clonotypes = clonotypes.with_columns(clone_id=pl.concat_str("junction_aa", "v_call", "j_call", separator="|"))
    return clonotypes.sort(["count", "clone_id"], descending=[True, False])


def bench_ingest(args: argparse.Namespace) -> dict[str, object]:
    from tcrtrack.ingest import ingest_airr

    rows = args.ingest_rows
    path = cached(
        OUT / f"ingest_{rows}.tsv.gz", lambda: airrgen.single_sample(OUT / f"ingest_{rows}.tsv.gz", clonotypes=rows)
    )
    ingest_airr(path)  # warm the page cache and imports (pyarrow, the AIRR schema)
    fns: dict[str, Callable[[], object]] = {
        "polars_read_csv": lambda: pl.read_csv(path, separator="\t"),
        "ingest_airr": lambda: ingest_airr(path),
        "polars_minimal_clonotypes": lambda: minimal_clonotypes(path),
    }
    times = interleaved(fns, args.repeat)
    result: dict[str, object] = {
        "rows": rows,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "times_s": times,
        "cpu_s": {name: CPU_TIMES[name] for name in fns},
    }
    result["ratio_ingest_vs_read_csv"] = median_ratio(times["ingest_airr"], times["polars_read_csv"])
    result["ratio_minimal_vs_read_csv"] = median_ratio(times["polars_minimal_clonotypes"], times["polars_read_csv"])
    log("ingest: airr.load_rearrangement + pandas group-by (once; slow)")
    baseline_s, table = clock(lambda: airr_pandas_clonotypes(path))
    ours = ingest_airr(path).clonotypes
    result["airr_pandas_s"] = baseline_s
    result["airr_pandas_clonotypes"] = len(table)
    result["ingest_clonotypes"] = ours.height
    result["speedup_vs_airr_pandas"] = baseline_s / statistics.median(times["ingest_airr"])
    return result


# --------------------------------------------------------------------------------------------- expansion
def bench_expansion(args: argparse.Namespace) -> dict[str, object]:
    from scipy import stats

    from tcrtrack.expansion import test_expansion

    a, b = airrgen.sample_pair(clonotypes=args.pair_clones)
    n_a, n_b = int(a.sum()), int(b.sum())
    test_expansion(a[:1000], b[:1000], n_a=n_a, n_b=n_b, model="fisher")  # imports
    fns = {
        model: (lambda m=model: test_expansion(a, b, n_a=n_a, n_b=n_b, model=m))
        for model in ("fisher", "overdispersed")
    }
    times = interleaved(fns, args.repeat)
    tested = int(((a + b) > 0).sum())
    rng = np.random.default_rng(0)
    pick = rng.choice(a.size, args.naive_subsample, replace=False)
    start = time.perf_counter()
    naive = [
        stats.fisher_exact([[int(b[i]), n_b - int(b[i])], [int(a[i]), n_a - int(a[i])]], alternative="greater").pvalue
        for i in pick
    ]
    per_clone = (time.perf_counter() - start) / pick.size
    fisher = test_expansion(a, b, n_a=n_a, n_b=n_b, model="fisher")["pvalue"].to_numpy()
    agree = float(np.max(np.abs(np.asarray(naive) - fisher[pick]) / np.maximum(np.asarray(naive), 1e-300)))
    naive_total = per_clone * tested
    return {
        "clones_a": int((a > 0).sum()),
        "clones_b": int((b > 0).sum()),
        "tested": tested,
        "depths": [n_a, n_b],
        "times_s": times,
        "cpu_s": {name: CPU_TIMES[name] for name in fns},
        "naive_subsample": int(pick.size),
        "naive_per_clone_us": per_clone * 1e6,
        "naive_extrapolated_s": naive_total,
        "naive_max_relative_difference": agree,
        "speedup_fisher_vs_naive": naive_total / statistics.median(times["fisher"]),
    }


# --------------------------------------------------------------------------------------------- diversity
def _diversity_one(job: tuple[int, int, int]) -> tuple[float, float]:
    from tcrtrack.diversity import sample_diversity

    index, clones, depth = job
    counts = _sample_counts(index, clones)
    start, cpu = time.perf_counter(), time.process_time()
    sample_diversity(counts, depth=depth, n_iterations=10, seed=index)
    return time.perf_counter() - start, time.process_time() - cpu


def _sample_counts(index: int, clones: int) -> np.ndarray:
    """Power-law clone counts of one sample of ``clones`` clonotypes (as the ingest file's)."""
    rng = np.random.default_rng([index, 7])
    return np.sort(np.floor((1.0 - rng.random(clones) * (1.0 - 1.0 / clones)) ** (-1.0 / 1.2)).astype(np.int64))[::-1]


def bench_diversity(args: argparse.Namespace) -> dict[str, object]:
    n, clones = args.diversity_samples, args.diversity_clones
    depth = min(int(_sample_counts(i, clones).sum()) for i in range(n))
    jobs = [(i, clones, depth) for i in range(n)]

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        start = time.perf_counter()
        timed = pool.map(_diversity_one, jobs, chunksize=1)
        wall = time.perf_counter() - start
    per_sample, cpu = [t for t, _ in timed], [c for _, c in timed]
    return {
        "samples": n,
        "clonotypes": clones,
        "depth": depth,
        "iterations": 10,
        "workers": 2,
        "wall_s": wall,
        "per_sample_s_median": statistics.median(per_sample),
        "cpu_per_sample_s_median": statistics.median(cpu),
        "cpu_total_s": sum(cpu),
        "extrapolated_100_samples_s": wall * 100 / n,
    }


# --------------------------------------------------------------------------------------------- workflow
def make_cohort(patients: int, clonotypes: int) -> Path:
    folder = OUT / f"cohort_{patients}x7x{clonotypes}"
    sheet = folder / "samples.tsv"
    if not sheet.exists():
        log(f"generating {folder.relative_to(ROOT)} ({patients} patients x 7 samples x {clonotypes} clonotypes)")
        seconds, _ = clock(lambda: airrgen.cohort(folder, patients=patients, clonotypes=clonotypes))
        log(f"  done in {seconds:.1f} s")
    return sheet


def bare_read(sheet: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of ``polars.read_csv`` of every input of ``sheet``, one after another."""
    paths = [sheet.parent / p for p in pl.read_csv(sheet, separator="\t")["path"]]
    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        pl.read_csv(path, separator="\t")
    return time.perf_counter() - start, time.process_time() - cpu


def run_snakemake(sheet: Path, workdir: Path, cores: int = 2) -> tuple[float, float]:
    """Run the workflow on ``sheet`` in a fresh ``workdir``: (wall seconds, CPU seconds of the whole process
    tree: Snakemake and every job, user + system, from ``getrusage(RUSAGE_CHILDREN)``; unlike wall time, it
    does not grow when other work shares the cores)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "bench.yaml").write_text(f"samples: {sheet}\n")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        "bench.yaml",
        "--cores",
        str(cores),
        "--quiet",
        "progress",
    ]
    log("running " + " ".join(command[1:]) + f"  (in {workdir})")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{done.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


# A benchmark record is logs/benchmarks/<rule>/<patient>.tsv for a per-patient rule and
# logs/benchmarks/cohort/<stage>.tsv for the cohort rule <stage>_cohort; except these:
RULE_OF_RECORD = {
    "diversity/common_depth": "common_depth",
    "cohort/qc": "ingest_cohort",
    "cohort/diversity_coverage": "diversity_curves_cohort",
    "cohort/provenance": "provenance",
    "cohort/association": "association",
}


def rule_of_record(rel: Path) -> str:
    """The rule of a benchmark record (``rel``: its path under logs/benchmarks)."""
    single = f"{rel.parts[0]}/{rel.stem}"  # one record per run: cohort/qc.tsv, diversity/common_depth.tsv
    if single in RULE_OF_RECORD:
        return RULE_OF_RECORD[single]
    return f"{rel.stem}_cohort" if rel.parts[0] == "cohort" else rel.parts[0]


def job_benchmarks(workdir: Path) -> pl.DataFrame:
    """One row per job: rule, job, seconds, max_rss (MB) and cpu_time from the ``benchmark:`` files."""
    rows = []
    for path in sorted((workdir / "logs" / "benchmarks").rglob("*.tsv")):
        table = pl.read_csv(path, separator="\t", null_values=["-", "NA"], infer_schema_length=None)
        rel = path.relative_to(workdir / "logs" / "benchmarks")
        rule = rule_of_record(rel)
        rows.append(
            {
                "rule": rule,
                "job": str(rel.with_suffix("")),
                "s": float(table["s"][0]),
                "max_rss_mb": float(table["max_rss"][0] or 0.0),
                "cpu_time_s": float(table["cpu_time"][0] or 0.0),
            }
        )
    return pl.DataFrame(rows)


def per_rule(jobs: pl.DataFrame) -> list[dict[str, object]]:
    return (
        jobs.group_by("rule")
        .agg(
            jobs=pl.len(),
            seconds_total=pl.col("s").sum(),
            seconds_max=pl.col("s").max(),
            max_rss_mb=pl.col("max_rss_mb").max(),
            cpu_time_total=pl.col("cpu_time_s").sum(),
        )
        .sort("seconds_total", descending=True)
        .to_dicts()
    )


STARTUP_IMPORTS = {
    "python + snakemake.script (every script: job)": "import snakemake.script",
    "ingest job imports": "import snakemake.script, tcrtrack.pipeline, pyarrow.csv",
    "diversity job imports": "import snakemake.script, tcrtrack.pipeline, tcrtrack.diversity",
    "diversity job imports without scikit-bio": "import snakemake.script, tcrtrack.pipeline, numpy",
    "expansion job imports": "import snakemake.script, tcrtrack.pipeline, tcrtrack.patient",
}


def startup_costs(repeat: int = 3) -> dict[str, float]:
    """Seconds a fresh interpreter takes to import what each kind of job imports (median of ``repeat``)."""
    out = {}
    for name, statement in STARTUP_IMPORTS.items():
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def bench_cohort(args: argparse.Namespace) -> dict[str, object]:
    sheet = make_cohort(args.cohort_patients, args.cohort_clonotypes)
    bare_read(sheet)  # warms the page cache for the run
    read_s, read_cpu = min(bare_read(sheet), bare_read(sheet))
    workdir = OUT / "run_cohort"
    seconds, cpu = run_snakemake(sheet, workdir)
    jobs = job_benchmarks(workdir)
    return {
        "patients": args.cohort_patients,
        "samples": 7 * args.cohort_patients,
        "clonotypes_per_sample": args.cohort_clonotypes,
        "input_mb": round(sum(p.stat().st_size for p in sheet.parent.rglob("*.tsv.gz")) / 1e6, 1),
        "bare_read_s": read_s,
        "bare_read_cpu_s": read_cpu,
        "snakemake_s": seconds,
        "snakemake_cpu_s": cpu,
        "ratio": seconds / read_s,
        "cpu_ratio": cpu / read_cpu,
        "jobs": jobs.height,
        "job_seconds_total": float(jobs["s"].sum()),
        "rules": per_rule(jobs),
        "startup_s": startup_costs(),
    }


def bench_memory(args: argparse.Namespace) -> dict[str, object]:
    sheet = make_cohort(1, args.memory_clonotypes)
    workdir = OUT / "run_memory"
    seconds, _ = run_snakemake(sheet, workdir)
    jobs = job_benchmarks(workdir)
    return {
        "samples": 7,
        "clonotypes_per_sample": args.memory_clonotypes,
        "snakemake_s": seconds,
        "max_rss_mb": float(jobs["max_rss_mb"].max()),
        "rules": per_rule(jobs),
    }


# --------------------------------------------------------------------------------------------- report
def report(results: dict[str, object]) -> str:
    lines = ["| benchmark | tcrtrack | reference | ratio | goal | met |", "|---|---|---|---|---|---|"]

    def row(name: str, ours: str, ref: str, ratio: str, goal: str, met: bool) -> None:
        lines.append(f"| {name} | {ours} | {ref} | {ratio} | {goal} | {'yes' if met else 'no'} |")

    med = statistics.median
    if "ingest" in results:
        r = results["ingest"]
        t = r["times_s"]
        c = r.get("cpu_s", {})

        def cpu(k: str, c: dict = c) -> str:
            return f" (CPU {med(c[k]):.2f} s)" if k in c else ""

        row(
            f"ingest {r['rows']:,} rows ({r['file_mb']} MB gz) vs polars.read_csv",
            f"{med(t['ingest_airr']):.2f} s{cpu('ingest_airr')}",
            f"{med(t['polars_read_csv']):.2f} s{cpu('polars_read_csv')}",
            f"{r['ratio_ingest_vs_read_csv']:.2f}x",
            "<= 1.5x",
            r["ratio_ingest_vs_read_csv"] <= 1.5,
        )
        row(
            "  floor: bare polars read + filter + group-by + sort (no QC, genes, checks)",
            f"{med(t['polars_minimal_clonotypes']):.2f} s{cpu('polars_minimal_clonotypes')}",
            f"{med(t['polars_read_csv']):.2f} s",
            f"{r['ratio_minimal_vs_read_csv']:.2f}x",
            "-",
            True,
        )
        row(
            "ingest vs airr.load_rearrangement + pandas group-by",
            f"{med(t['ingest_airr']):.2f} s",
            f"{r['airr_pandas_s']:.1f} s",
            f"{r['speedup_vs_airr_pandas']:.0f}x faster",
            ">= 20x faster",
            r["speedup_vs_airr_pandas"] >= 20,
        )
    if "expansion" in results:
        r = results["expansion"]
        t = r["times_s"]
        for model in ("fisher", "overdispersed"):
            row(
                f"expansion, {model}, {r['clones_a']:,} + {r['clones_b']:,} clones ({r['tested']:,} tested)",
                f"{med(t[model]):.2f} s" + (f" (CPU {med(r['cpu_s'][model]):.2f} s)" if "cpu_s" in r else ""),
                f"naive fisher_exact loop ~{r['naive_extrapolated_s']:.0f} s "
                f"(extrapolated from {r['naive_subsample']})",
                f"{r['naive_extrapolated_s'] / med(t[model]):.0f}x faster",
                "<= 2 s",
                med(t[model]) <= 2.0,
            )
    if "diversity" in results:
        r = results["diversity"]
        row(
            f"diversity, {r['samples']} samples x {r['clonotypes']:,} clonotypes, 10 rarefactions, 2 processes",
            f"{r['wall_s']:.1f} s ({r['per_sample_s_median']:.2f} s/sample; CPU {r.get('cpu_total_s', 0):.0f} s)",
            "-" if r["samples"] == 100 else f"{r['extrapolated_100_samples_s']:.0f} s for 100 (extrapolated)",
            "-",
            "< 120 s for 100",
            r["extrapolated_100_samples_s"] < 120,
        )
    if "cohort" in results:
        r = results["cohort"]
        row(
            f"cohort {r['patients']} x 7 x {r['clonotypes_per_sample']:,} through snakemake --cores 2",
            f"{r['snakemake_s']:.0f} s (CPU {r.get('snakemake_cpu_s', 0):.0f} s)",
            f"bare read {r['bare_read_s']:.1f} s (CPU {r.get('bare_read_cpu_s', 0):.0f} s)",
            f"{r['ratio']:.1f}x (CPU {r.get('cpu_ratio', 0):.1f}x)",
            "<= 3x",
            r["ratio"] <= 3.0,
        )
    if "memory" in results:
        r = results["memory"]
        worst = max(r["rules"], key=lambda x: x["max_rss_mb"])
        row(
            f"peak RSS per job, 7 samples x {r['clonotypes_per_sample']:,} clonotypes",
            f"{r['max_rss_mb'] / 1024:.2f} GB ({worst['rule']})",
            "-",
            "-",
            "<= 4 GB",
            r["max_rss_mb"] <= 4096,
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    parser.add_argument("--repeat", type=int, default=5, help="repeats of the timed in-process steps")
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    parser.add_argument("--pair-clones", type=int, default=1_000_000)
    parser.add_argument("--naive-subsample", type=int, default=3000)
    parser.add_argument("--diversity-samples", type=int, default=100)
    parser.add_argument("--diversity-clones", type=int, default=1_000_000)
    parser.add_argument("--cohort-patients", type=int, default=20)
    parser.add_argument("--cohort-clonotypes", type=int, default=300_000)
    parser.add_argument("--memory-clonotypes", type=int, default=1_000_000)
    parser.add_argument(
        "--proposals",
        action="store_true",
        help="also measure the proposed package changes (benchmarks/proposals.py) side by side",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.ingest_rows, args.pair_clones, args.naive_subsample = 100_000, 100_000, 300
        args.diversity_samples, args.diversity_clones = 4, 100_000
        args.cohort_patients, args.cohort_clonotypes, args.memory_clonotypes = 2, 20_000, 50_000
        args.repeat = 2
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"machine": machine(), "args": vars(args)}
    for number, step in enumerate(args.only, start=1):
        log(f"benchmark: {step} ({number} of {len(args.only)})")
        load_before = os.getloadavg()
        results[step] = globals()[f"bench_{step}"](args)
        results[step]["measured"] = {
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
        log(f"  {json.dumps(results[step], default=str)[:400]}")
    if args.proposals:
        import proposals

        log("proposals (benchmarks/proposals.py)")
        results["proposals"] = proposals.measure(args.diversity_clones)
        print(json.dumps(results["proposals"], indent=2), file=sys.stderr)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    # steps measured by earlier runs (--only) are kept: results.json holds the latest figure of each step
    path = OUT / ("results_quick.json" if args.quick else "results.json")
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **results}, indent=2, default=str))
    info = results["machine"]
    print(
        f"{info['date']}  {info['nproc']} x {info['cpu']}, {info['ram_gib']} GiB RAM, "
        f"load average {info['load_average_at_start'][0]:.1f} -> {info['load_average_at_end'][0]:.1f}"
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
