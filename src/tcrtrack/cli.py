"""The ``tcrtrack`` command line (click)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tcrtrack import __version__
from tcrtrack.errors import TcrtrackError


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report user errors as one line (exit code 1); ``--debug`` shows the traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (TcrtrackError, ValueError, OSError) as error:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise click.ClickException(str(error)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tcrtrack")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug: bool) -> None:
    """tcrtrack: find the T-cell clones a cell therapy sets in motion.

    The analysis itself runs as a Snakemake workflow (see README.md: `snakemake --cores 2`).
    """


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the cohort to (samples.tsv, truth.tsv, one folder per patient).")
@click.option("--demo", is_flag=True, help="The small bundled demo cohort (sizes fixed; --seed still applies).")
@click.option("--patients", "n_patients", type=click.IntRange(1), default=4, show_default=True)
@click.option("--clones", "n_clones", type=click.IntRange(100), default=20_000, show_default=True,
              help="Distinct TRB clonotypes in each patient's blood.")
@click.option("--blood-depth", type=click.IntRange(100), default=40_000, show_default=True,
              help="Mean templates per blood library.")
@click.option("--tumor-depth", type=click.IntRange(100), default=15_000, show_default=True,
              help="Mean templates per biopsy library.")
@click.option("--dispersion", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Overdispersion of library frequencies (0 = Poisson sampling only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the sample sheet [default: OUT/samples.tsv].")
@_friendly
def simulate(out_dir: Path, demo: bool, n_patients: int, n_clones: int, blood_depth: int, tumor_depth: int,
             dispersion: float, seed: int, sheet: Path | None) -> None:
    """Write a synthetic cohort (OLGA TRB clonotypes, planted clones, a truth table)."""
    from tcrtrack.simulate import simulate_cohort, simulate_demo

    if demo:
        cohort = simulate_demo(out_dir, seed=seed, sheet=sheet, progress=True)
    else:
        cohort = simulate_cohort(out_dir, n_patients=n_patients, n_clones=n_clones, blood_depth=blood_depth,
                                 tumor_depth=tumor_depth, dispersion=dispersion, seed=seed, sheet=sheet,
                                 progress=True)
    click.echo(f"wrote {len(cohort.files)} repertoires ({cohort.total_bytes / 1e6:.1f} MB): "
               f"sheet {cohort.sheet}, truth {cohort.truth}")


@main.command()
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@_friendly
def validate(sheet: Path) -> None:
    """Check a sample sheet and the header of every file it names."""
    from tcrtrack.ingest import read_airr_header
    from tcrtrack.samplesheet import read_sample_sheet

    samples = read_sample_sheet(sheet)
    problems = []
    for sample, path in samples.select("sample", "path").iter_rows():
        try:
            read_airr_header(path)
        except TcrtrackError as error:
            problems.append(f"{sample}\t{error}")
    if problems:
        click.echo("sample\tproblem")
        click.echo("\n".join(problems))
        sys.exit(1)
    click.echo(f"{sheet}: {samples.height} samples of {samples['patient'].n_unique()} patients, all files readable")


if __name__ == "__main__":
    main()
