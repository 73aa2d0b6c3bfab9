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


def _load_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column (see :func:`_friendly`)."""
    import yaml

    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _run_config(configfile: Path | None) -> dict[str, Any]:
    """The config of a run: the workflow's default config, updated by ``configfile``."""
    from tcrtrack.paths import workflow_root

    config = _load_yaml(workflow_root() / "config" / "config.yaml") or {}
    if configfile is not None:
        given = _load_yaml(configfile) or {}
        if not isinstance(given, dict):
            raise TcrtrackError(f"{configfile}: not a YAML mapping of config keys. Fix: write 'key: value' lines")
        for key, value in given.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def _ingest_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ingest options of a run's config."""
    ingest, clonotype = config.get("ingest", {}), config.get("clonotype", {})
    return {
        "locus": ingest.get("locus", "TRB"),
        "productive_only": ingest.get("productive_only", True),
        "min_junction_aa_length": ingest.get("min_junction_aa_length", 5),
        "species": ingest.get("species", "homosapiens"),
        "definition": clonotype.get("definition", "aa_vj"),
    }


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
    from tcrtrack.formats import ingest_converted
    from tcrtrack.ingest import DROP_REASONS
    from tcrtrack.paths import workflow_root
    from tcrtrack.samplesheet import config_problems, read_sample_sheet

    config = _run_config(configfile)
    problems = [
        f"configuration: {p}"
        for p in config_problems(config, workflow_root() / "workflow" / "schemas" / "config.schema.yaml")
    ]
    defaults = _run_config(None)
    for section in ("ingest", "clonotype"):  # a broken section: read the files with its defaults
        if any(f"config key '{section}" in problem for problem in problems):
            config[section] = defaults[section]
    settings = _ingest_settings(config)
    # a sheet that cannot be read stops here (one line); problems of single rows are listed, the others read
    samples = read_sample_sheet(sheet, check_files=False, problems=problems)
    sheet_problems = len(problems)
    lines = [
        "sample\tformat\tinput_rows\tkept_rows\tdropped_rows\tkept_count\tdropped_count\tdropped (reason: rows)"
        "\ttruncated"
    ]
    truncated = 0
    for sample, file, fmt in samples.select("sample", "path", "format").iter_rows():
        if not Path(file).is_file():
            problems.append(
                f"{sheet}: sample '{sample}': file {file} does not exist. Fix: correct 'path' "
                "(absolute, or relative to the sheet's folder)"
            )
            continue
        try:
            qc = ingest_converted(file, fmt=fmt, **settings).qc.row(0, named=True)
        except TcrtrackError as error:
            problems.append(f"sample '{sample}': {error}")
            continue
        reasons = ", ".join(f"{r}: {qc[f'{r}_rows']}" for r in DROP_REASONS if qc[f"{r}_rows"])
        lines.append(
            f"{sample}\t{qc['format']}\t{qc['input_rows']}\t{qc['kept_rows']}\t"
            f"{qc['input_rows'] - qc['kept_rows']}\t{qc['kept_count']}\t{qc['input_count'] - qc['kept_count']}"
            f"\t{reasons or '-'}\t{_truncation_cell(qc)}"
        )
        truncated += bool(qc.get("truncated"))
    if problems:
        for problem in problems:
            click.echo(f"problem: {problem}")
        bad = len(problems) - sheet_problems
        raise click.ClickException(
            f"{bad} of {samples.height} files {'has a problem' if bad == 1 else 'have problems'}"
            + (f", and {sheet_problems} of the sheet or configuration" if sheet_problems else "")
            + " (one line each above); the run would stop on them"
        )
    click.echo("\n".join(lines))
    click.echo(
        f"{sheet}: {samples.height} samples of {samples['patient'].n_unique()} patients, every file read "
        f"in full (locus {settings['locus']}): no problem"
        + (
            f"; {truncated} truncated export(s): absence from them is not evidence of absence (the warnings on "
            "stderr say why)"
            if truncated
            else ""
        )
    )


def _truncation_cell(qc: dict[str, Any]) -> str:
    """The validate table's ``truncated`` cell: ``no``, or ``yes`` with the share the file keeps when known."""
    if not qc.get("truncated"):
        return "no"
    share = qc.get("kept_share")
    return f"yes (keeps {share:.2f} of {qc['implied_depth']:.0f})" if share is not None else "yes (top-N cut)"


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


def workflow_snakefile() -> Path:
    """The tcrtrack Snakefile: ``$TCRTRACK_SNAKEFILE``, else this source checkout's, else the copy installed
    with the package (tcrtrack/_workflow/, see setup.py)."""
    from tcrtrack.paths import snakefile

    candidate = snakefile()
    if not candidate.is_file():
        raise TcrtrackError(
            f"cannot find the tcrtrack Snakefile (looked for {candidate}). Fix: reinstall tcrtrack "
            "(pip install .) or set TCRTRACK_SNAKEFILE to its Snakefile"
        )
    return candidate


def patient_targets(patient: str) -> list[str]:
    """The files of one patient that ``tcrtrack run --patient`` asks Snakemake for (paths relative to the
    run folder): every per-patient output of :mod:`tcrtrack.registry`."""
    from tcrtrack.registry import patient_files

    return patient_files(patient)


def _config_file(outdir: Path, configfile: Path | None) -> tuple[Path | None, bool]:
    """The config file Snakemake will read, and whether it must be passed explicitly (the run folder has
    no ``config/config.yaml``: the defaults shipped with the workflow are used)."""
    if configfile is not None:
        return configfile.resolve(), True
    local = outdir / "config" / "config.yaml"
    if local.is_file():
        return local, False
    return workflow_snakefile().parent / "config" / "config.yaml", True


def _sheet_path(outdir: Path, samples: Path | None, config_path: Path | None) -> tuple[Path, bool]:
    """The sample sheet of the run: ``--samples``, else the config's ``samples`` (relative to the run folder),
    and whether it must be passed to Snakemake. With the workflow's default config and no such sheet in the
    run folder, the bundled demo cohort (the workflow's own ``config/samples.tsv``)."""
    from tcrtrack.paths import workflow_root

    if samples is not None:
        return samples.resolve(), True
    config = _load_yaml(config_path) if config_path and config_path.is_file() else {}
    name = (config or {}).get("samples")
    if not name:
        raise TcrtrackError(f"no sample sheet: {config_path} names none. Fix: pass --samples SHEET")
    path = Path(name)
    if path.is_absolute():
        return path, False
    defaults = workflow_root() / "config"
    if not (outdir / path).is_file() and config_path is not None and config_path.parent == defaults:
        demo = defaults / path.relative_to("config") if path.parts[0] == "config" else defaults / path
        if demo.is_file():
            click.echo(
                f"tcrtrack: no sample sheet in {outdir} ({path}): running the bundled demo cohort "
                f"({demo}); pass --samples SHEET for yours",
                err=True,
            )
            return demo, True
    return outdir / path, False


class ProgressLines:
    """Reads Snakemake's log line by line and, for every finished job, says which patient (or the cohort) and
    which stage is done: ``P01: ingest done (3 of 33 steps)``."""

    def __init__(self) -> None:
        import re

        self._job = re.compile(r"^\s*jobid: (\d+)")
        self._patient = re.compile(r"^\s*wildcards: .*\bpatient=([^,\s]+)")
        self._rule = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):")
        self._finished = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
        self._steps = re.compile(r"^(\d+ of \d+ steps)")
        self.jobs: dict[str, tuple[str, str]] = {}  # jobid -> (rule, patient or "cohort")
        self._current: str | None = None
        self._rule_name: str | None = None
        self._pending: tuple[str, str] | None = None

    def feed(self, line: str) -> str | None:
        """The progress message for this log line, if it completes one."""
        if match := self._rule.match(line):
            self._rule_name, self._current = match.group(1), None
        elif (match := self._job.match(line)) and self._rule_name:
            self._current = match.group(1)
            self.jobs[self._current] = (self._rule_name, "cohort")
        elif (match := self._patient.match(line)) and self._current in self.jobs:
            self.jobs[self._current] = (self.jobs[self._current][0], match.group(1))
        elif match := self._finished.match(line):
            rule, who = self.jobs.get(match.group(1), (match.group(2), "cohort"))
            self._pending = (rule, who)
        elif (match := self._steps.match(line)) and self._pending:
            (rule, who), self._pending = self._pending, None
            return f"{who}: {rule} done ({match.group(1)})"
        return None


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

    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    config_path, pass_config = _config_file(outdir, configfile)
    sheet, pass_sheet = _sheet_path(outdir, samples, config_path)
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
