"""``tcrtrack validate``'s checks: a run's config, its sample sheet and every file the sheet names, read in
full through the run's own ingest (the click command, in :mod:`tcrtrack.cli`, prints the result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcrtrack.errors import TcrtrackError


def load_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column (see :func:`tcrtrack.cli._friendly`)."""
    import yaml

    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def run_config(configfile: Path | None) -> dict[str, Any]:
    """The config of a run: the workflow's default config, updated by ``configfile``."""
    from tcrtrack.paths import workflow_root

    config = load_yaml(workflow_root() / "config" / "config.yaml") or {}
    if configfile is not None:
        given = load_yaml(configfile) or {}
        if not isinstance(given, dict):
            raise TcrtrackError(f"{configfile}: not a YAML mapping of config keys. Fix: write 'key: value' lines")
        for key, value in given.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def ingest_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ingest options of a run's config."""
    ingest, clonotype = config.get("ingest", {}), config.get("clonotype", {})
    return {
        "locus": ingest.get("locus", "TRB"),
        "productive_only": ingest.get("productive_only", True),
        "min_junction_aa_length": ingest.get("min_junction_aa_length", 5),
        "species": ingest.get("species", "homosapiens"),
        "definition": clonotype.get("definition", "aa_vj"),
    }


def truncation_cell(qc: dict[str, Any]) -> str:
    """The validate table's ``truncated`` cell: ``no``, or ``yes`` with the share the file keeps when known."""
    if not qc.get("truncated"):
        return "no"
    share = qc.get("kept_share")
    return f"yes (keeps {share:.2f} of {qc['implied_depth']:.0f})" if share is not None else "yes (top-N cut)"


@dataclass
class Validation:
    """What :func:`validate_sheet` found: the problems (those of the sheet or configuration first), the table
    lines (a header, then one line per sample read), and the counts the summary line gives."""

    problems: list[str]
    sheet_problems: int
    lines: list[str] = field(default_factory=list)
    n_samples: int = 0
    n_patients: int = 0
    locus: str = "TRB"
    truncated: int = 0


def validate_sheet(sheet: Path, configfile: Path | None) -> Validation:
    """Check the run's config and the sample sheet, and read every file the sheet names in full; every
    problem is one line (file, row or column, and the fix). A sheet that cannot be read raises."""
    from tcrtrack.formats import ingest_converted
    from tcrtrack.ingest import DROP_REASONS
    from tcrtrack.paths import workflow_root
    from tcrtrack.samplesheet import config_problems, read_sample_sheet

    config = run_config(configfile)
    problems = [
        f"configuration: {p}"
        for p in config_problems(config, workflow_root() / "workflow" / "schemas" / "config.schema.yaml")
    ]
    defaults = run_config(None)
    for section in ("ingest", "clonotype"):  # a broken section: read the files with its defaults
        if any(f"config key '{section}" in problem for problem in problems):
            config[section] = defaults[section]
    settings = ingest_settings(config)
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
            f"\t{reasons or '-'}\t{truncation_cell(qc)}"
        )
        truncated += bool(qc.get("truncated"))
    return Validation(
        problems=problems,
        sheet_problems=sheet_problems,
        lines=lines,
        n_samples=samples.height,
        n_patients=samples["patient"].n_unique(),
        locus=settings["locus"],
        truncated=truncated,
    )
