"""``tcrtrack run``'s plumbing: the Snakefile, the config file and the sample sheet a run uses, the targets of
one patient, and the progress lines read from Snakemake's log (the click command is in :mod:`tcrtrack.cli`)."""

from __future__ import annotations

from pathlib import Path

import click

from tcrtrack.errors import TcrtrackError


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


def config_file(outdir: Path, configfile: Path | None) -> tuple[Path | None, bool]:
    """The config file Snakemake will read, and whether it must be passed explicitly (the run folder has
    no ``config/config.yaml``: the defaults shipped with the workflow are used)."""
    if configfile is not None:
        return configfile.resolve(), True
    local = outdir / "config" / "config.yaml"
    if local.is_file():
        return local, False
    return workflow_snakefile().parent / "config" / "config.yaml", True


def sheet_path(outdir: Path, samples: Path | None, config_path: Path | None) -> tuple[Path, bool]:
    """The sample sheet of the run: ``--samples``, else the config's ``samples`` (relative to the run folder),
    and whether it must be passed to Snakemake. With the workflow's default config and no such sheet in the
    run folder, the bundled demo cohort (the workflow's own ``config/samples.tsv``)."""
    from tcrtrack.paths import workflow_root
    from tcrtrack.validate import load_yaml

    if samples is not None:
        return samples.resolve(), True
    config = load_yaml(config_path) if config_path and config_path.is_file() else {}
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
