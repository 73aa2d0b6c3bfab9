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
from tcrtrack.format_names import FORMATS


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
        except Exception as error:  # a config file that is not YAML (yaml is imported lazily, as the commands do)
            import yaml

            if not isinstance(error, yaml.YAMLError) or click.get_current_context().find_root().params.get("debug"):
                raise
            mark = getattr(error, "problem_mark", None)
            where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
            problem = getattr(error, "problem", None) or " ".join(str(error).split())
            raise click.ClickException(
                f"{where}: not valid YAML ({problem}). Fix: correct the file's YAML "
                "syntax ('key: value' lines, nested keys indented)"
            ) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tcrtrack")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug: bool) -> None:
    """tcrtrack: find the T-cell clones a cell therapy sets in motion.

    The analysis itself runs as a Snakemake workflow (see README.md: `snakemake --cores 2`).
    """


@main.command()
@click.version_option(__version__, prog_name="tcrtrack")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the cohort to (samples.tsv, truth.tsv, one folder per patient).",
)
@click.option("--demo", is_flag=True, help="The small bundled demo cohort (sizes fixed; --seed still applies).")
@click.option("--patients", "n_patients", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--clones",
    "n_clones",
    type=click.IntRange(100),
    default=20_000,
    show_default=True,
    help="Distinct TRB clonotypes in each patient's blood.",
)
@click.option(
    "--blood-depth",
    type=click.IntRange(100),
    default=40_000,
    show_default=True,
    help="Mean templates per blood library.",
)
@click.option(
    "--tumor-depth",
    type=click.IntRange(100),
    default=15_000,
    show_default=True,
    help="Mean templates per biopsy library.",
)
@click.option(
    "--dispersion",
    type=click.FloatRange(0),
    default=0.1,
    show_default=True,
    help="Overdispersion of library frequencies (0 = Poisson sampling only).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the sample sheet [default: OUT/samples.tsv].",
)
@_friendly
def simulate(
    out_dir: Path,
    demo: bool,
    n_patients: int,
    n_clones: int,
    blood_depth: int,
    tumor_depth: int,
    dispersion: float,
    seed: int,
    sheet: Path | None,
) -> None:
    """Write a synthetic cohort (OLGA TRB clonotypes, planted clones, a truth table)."""
    from tcrtrack.simulate import simulate_cohort, simulate_demo

    if demo:
        cohort = simulate_demo(out_dir, seed=seed, sheet=sheet, progress=True)
    else:
        cohort = simulate_cohort(
            out_dir,
            n_patients=n_patients,
            n_clones=n_clones,
            blood_depth=blood_depth,
            tumor_depth=tumor_depth,
            dispersion=dispersion,
            seed=seed,
            sheet=sheet,
            progress=True,
            replicate_patients=(0, 1)[:n_patients],
        )  # the default, up to N
    click.echo(
        f"wrote {len(cohort.files)} repertoires ({cohort.total_bytes / 1e6:.1f} MB): "
        f"sheet {cohort.sheet}, truth {cohort.truth}"
    )


@main.command()
@click.version_option(__version__, prog_name="tcrtrack")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--configfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The run's config file (its ingest settings: locus, productive_only, ...) [default: the workflow's defaults].",
)
@_friendly
def validate(sheet: Path, configfile: Path | None) -> None:
    """Check a sample sheet and read every file it names in full, through the run's own ingest.

    Every problem of every file is printed on its own line (file, row or column, and the fix) and the exit
    code is 1 when there is any; otherwise one line per sample gives its rows kept and dropped.
    """
    from tcrtrack.validate import validate_sheet

    found = validate_sheet(sheet, configfile)
    problems, sheet_problems = found.problems, found.sheet_problems
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}")
        bad = len(problems) - sheet_problems
        raise click.ClickException(
            f"{bad} of {found.n_samples} files {'has a problem' if bad == 1 else 'have problems'}"
            + (f", and {sheet_problems} of the sheet or configuration" if sheet_problems else "")
            + " (one line each above); the run would stop on them"
        )
    click.echo("\n".join(found.lines))
    click.echo(
        f"{sheet}: {found.n_samples} samples of {found.n_patients} patients, every file read "
        f"in full (locus {found.locus}): no problem"
        + (
            f"; {found.truncated} truncated export(s): absence from them is not evidence of absence (the warnings on "
            "stderr say why)"
            if found.truncated
            else ""
        )
    )


@main.command()
@click.version_option(__version__, prog_name="tcrtrack")
@click.option(
    "--from",
    "fmt",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", *FORMATS]),
    help="Format of the input export.",
)
@click.option("--locus", default="TRB", show_default=True, type=click.Choice(["TRA", "TRB", "TRG", "TRD"]))
@click.option(
    "--species",
    default="homosapiens",
    show_default=True,
    type=click.Choice(["homosapiens", "musmusculus"]),
    help="Species of the gene names (standardised to IMGT with tidytcells).",
)
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_friendly
def convert(fmt: str, locus: str, species: str, source: Path, out: Path) -> None:
    """Convert a vendor export (SOURCE) into an AIRR Rearrangement TSV (OUT; gzipped when it ends in .gz)."""
    from tcrtrack.formats import convert as convert_file

    result = convert_file(source, out, fmt=fmt, locus=locus, species=species)
    click.echo(
        f"{source} ({result.fmt}) -> {out}: {result.frame.height} rows; count: {result.count_source}; "
        f"genes: {result.gene_mapping}, {result.unmapped_genes} rows with unmapped names"
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    if "duplicate_count" in result.frame.columns:  # a top-N export: say so here too, as the run's QC does
        import polars as pl

        from tcrtrack.truncation import assess

        verdict = assess(
            result.frame["duplicate_count"].cast(pl.Int64, strict=False),
            result.frequency,
            single_cell=result.fmt == "10x_contigs" or "cell_id" in result.frame.columns,
        )
        if verdict.truncated:
            click.echo(f"warning: {verdict.note}", err=True)


# --- run: the workflow for the cohort or some patients ---------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True})
@click.version_option(__version__, prog_name="tcrtrack")
@click.option(
    "--samples",
    "samples",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Sample sheet [default: the config's `samples`].",
)
@click.option(
    "--patient",
    "patients",
    multiple=True,
    metavar="ID",
    help="Run only this patient (repeat for several): its tables and figures, and the cohort tables "
    "once every other patient has results. Default: the whole cohort.",
)
@click.option("--cores", type=str, default=None, help="Cores for Snakemake [default: all, or the profile's].")
@click.option(
    "--profile",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Snakemake profile folder (e.g. config/profiles/slurm).",
)
@click.option(
    "--configfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Config file [default: OUTDIR/config/config.yaml, else the workflow's defaults].",
)
@click.option(
    "--outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Run folder: results/ and logs/ are written under it.",
)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would run, run nothing.")
@click.argument("snakemake_args", nargs=-1, type=click.UNPROCESSED)
@_friendly
def run(
    samples: Path | None,
    patients: tuple[str, ...],
    cores: str | None,
    profile: Path | None,
    configfile: Path | None,
    outdir: Path,
    dry_run: bool,
    snakemake_args: tuple[str, ...],
) -> None:
    """Run the workflow (Snakemake) for the cohort or only some patients.

    Arguments after `--` go to Snakemake unchanged, e.g. `tcrtrack run -- --forcerun figures`.
    Snakemake redoes only what is missing or out of date, so re-running after adding a patient or
    changing one file is cheap. With --patient, only that patient's jobs run (every sample is still
    ingested when the rarefaction depth, config diversity.depth, is left to the smallest sample); the
    cohort tables and figures are refreshed too when every other patient already has results.
    """
    import subprocess

    from tcrtrack.samplesheet import read_sample_sheet
    from tcrtrack.workflow_run import ProgressLines, config_file, patient_targets, sheet_path, workflow_snakefile

    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    config_path, pass_config = config_file(outdir, configfile)
    sheet, pass_sheet = sheet_path(outdir, samples, config_path)
    sheet_patients = read_sample_sheet(sheet, check_files=False)["patient"].unique(maintain_order=True).to_list()
    unknown = [p for p in patients if p not in sheet_patients]
    if unknown:
        raise TcrtrackError(
            f"patient {', '.join(map(repr, unknown))} is not in {sheet} (patients: "
            f"{', '.join(sheet_patients)}). Fix: use one of those ids"
        )
    command = [sys.executable, "-m", "snakemake", "-s", str(workflow_snakefile()), "--directory", str(outdir)]
    if pass_config:
        command += ["--configfile", str(config_path)]
    if pass_sheet:
        command += ["--config", f"samples={sheet}"]
    if profile is not None:
        command += ["--profile", str(profile.resolve())]
    if cores is not None or profile is None:
        command += ["--cores", cores or "all"]
    if dry_run:
        command.append("--dry-run")
    command += list(snakemake_args)
    if patients:
        targets = [t for p in dict.fromkeys(patients) for t in patient_targets(p)]
        others = [p for p in sheet_patients if p not in patients]
        missing = [p for p in others if not (outdir / "results" / "patients" / p / "clones.parquet").is_file()]
        if missing:
            click.echo(
                f"tcrtrack: cohort tables not refreshed: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'}"
                " no results yet (run `tcrtrack run` for the whole cohort)",
                err=True,
            )
        else:
            targets.append("all")
        command += targets
    click.echo(f"tcrtrack: {' '.join(command)}", err=True)
    if dry_run:
        returncode = subprocess.run(command, cwd=outdir, check=False).returncode
    else:  # Snakemake's log passes through; a line per finished job says which patient and stage is done
        with subprocess.Popen(command, cwd=outdir, stderr=subprocess.PIPE, text=True, bufsize=1) as process:
            assert process.stderr is not None
            progress = ProgressLines()
            for line in process.stderr:
                sys.stderr.write(line)
                message = progress.feed(line)
                if message:
                    click.echo(f"tcrtrack: {message}", err=True)
        returncode = process.returncode
    if returncode != 0:
        raise click.ClickException(
            f"the workflow failed (snakemake exit status {returncode}); the lines "
            "above name the failing job and its log"
        )


# --- show: one patient's results (the lines: tcrtrack.show) ------------------------------------------------


@main.command()
@click.version_option(__version__, prog_name="tcrtrack")
@click.argument("patient")
@click.option(
    "--outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Run folder (the one holding results/).",
)
@_friendly
def show(patient: str, outdir: Path) -> None:
    """Print a patient's figures and tables with their paths, and one-line summaries (flagged clones, top
    expansions), then the cohort's association table when it exists."""
    from tcrtrack.show import association_summary, patient_summary

    click.echo("\n".join(patient_summary(outdir / "results", patient) + association_summary(outdir / "results")))


if __name__ == "__main__":
    main()
