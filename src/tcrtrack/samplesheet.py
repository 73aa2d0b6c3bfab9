"""Read and validate the sample sheet.

The sheet is a tab-separated table, one row per sequenced repertoire; its contract is
``workflow/schemas/samples.schema.yaml`` (the JSON Schema is the single source of truth
for column types, patterns and allowed values). Every problem is reported as one line that
names the sheet, the row (as its line number in the file) and the fix.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import yaml

from tcrtrack.errors import SampleSheetError
from tcrtrack.paths import workflow_root

SCHEMA_PATH = workflow_root() / "workflow" / "schemas" / "samples.schema.yaml"
"""The schema in a source checkout; installed copies pass ``schema=`` explicitly."""

_INTEGER_COLUMNS = ("day", "replicate")


def load_schema(path: Path | str = SCHEMA_PATH) -> dict[str, Any]:
    """Load a YAML JSON Schema."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


_BOM = "\ufeff"


def _fail(path: Path, problem: str, fix: str) -> SampleSheetError:
    return SampleSheetError(f"{path}: {problem}. Fix: {fix}.")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise _fail(path, "sample sheet not found", "pass an existing TSV file as 'samples'")
    if path.is_dir():
        raise _fail(path, "is a directory, not a sample sheet", "pass the sheet's TSV file as 'samples'")
    data = path.read_bytes()
    if not data:
        raise _fail(path, "the sheet is empty (0 bytes)", "write a header line and one row per repertoire file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(path, "the sheet is UTF-16 text", "save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    try:
        return data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as error:
        line = len(re.findall(rb"\r\n|\r|\n", data[: error.start])) + 1
        raise _fail(
            path,
            f"row {line} is not UTF-8 text (byte {data[error.start]:#04x}, e.g. a Latin-1 export)",
            "save the sheet as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8 in.tsv > out.tsv)",
        ) from None


def _read_raw(path: Path) -> tuple[pl.DataFrame, list[int]]:
    """The sheet as strings (stripped; empty = null) and the line number of each row.

    Accepts LF, CRLF and CR line endings and a UTF-8 BOM; skips blank lines and lines starting
    with ``#``; fields may be quoted. A row with more or fewer fields than the header is an error.
    """
    text = _read_text(path)
    reader = csv.reader(io.StringIO(re.sub(r"\r\n?", "\n", text)), delimiter="\t", quotechar='"')
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for fields in reader:
        if not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = _check_header(path, [name.strip() for name in fields])
            continue
        if len(fields) != len(header):
            raise _fail(
                path,
                f"row {reader.line_num} has {len(fields)} field(s) but the header has {len(header)}",
                "give every row one tab-separated value per column (leave a cell empty, do not drop it)",
            )
        rows.append(fields)
        lines.append(reader.line_num)
    if header is None or not rows:
        raise _fail(path, "the sheet has no sample rows", "add one row per repertoire file")
    frame = pl.DataFrame(rows, schema=dict.fromkeys(header, pl.Utf8), orient="row")
    return frame.with_columns(pl.all().str.strip_chars().replace("", None)), lines


def _check_header(path: Path, names: list[str]) -> list[str]:
    if len(names) == 1 and "," in names[0]:
        raise _fail(path, "the header has no tab (it looks comma-separated)", "save the sheet as tab-separated values")
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        positions = ", ".join(str(i + 1) for i, name in enumerate(names) if name == twice)
        raise _fail(
            path,
            f"column '{twice}' appears more than once in the header (columns {positions})",
            "keep one column of that name (remove or rename the others)",
        )
    return names


def _row_record(row: Mapping[str, str | None], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one row of strings into the typed record the schema describes."""
    record: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or value == "":
            continue
        if name in _INTEGER_COLUMNS:
            try:
                record[name] = int(value)
            except ValueError:
                record[name] = value  # the schema reports it as 'not of type integer'
        else:
            record[name] = value
    for name, spec in schema["properties"].items():
        if name not in record and "default" in spec:
            record[name] = spec["default"]
    return record


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> str:
    column = error.path[0] if error.path else None
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"column '{missing}' is empty. Fix: fill it in ({schema['properties'][missing]['description']})"
    spec = schema["properties"][column]
    if error.validator == "enum":
        return f"column '{column}' is '{error.instance}'. Fix: use one of {', '.join(spec['enum'])}"
    if error.validator == "pattern":
        return (
            f"column '{column}' is '{error.instance}'. Fix: use only letters, digits, '_' and '-' ({spec['pattern']})"
        )
    if error.validator == "type":
        return f"column '{column}' is '{error.instance}'. Fix: write a whole number ({spec['description']})"
    return f"column '{column}': {error.message}. Fix: {spec.get('description', 'see the schema')}"


def read_sample_sheet(
    path: Path | str,
    *,
    schema: Mapping[str, Any] | None = None,
    check_files: bool = True,
    problems: list[str] | None = None,
) -> pl.DataFrame:
    """Read, type and validate a sample sheet.

    Parameters
    ----------
    path
        The TSV sample sheet.
    schema
        The JSON Schema of one row (default: ``workflow/schemas/samples.schema.yaml``).
    check_files
        Also require every ``path`` to exist.
    problems
        When given, the problems of single rows (a bad value, a repeated sample id or file) are appended to it,
        one line each, and the other rows are returned, instead of stopping at the first (``tcrtrack
        validate``); a sheet that cannot be read at all still raises.

    Returns
    -------
    polars.DataFrame
        One row per sample with ``day`` and ``replicate`` as integers, defaults filled in,
        ``path`` resolved against the sheet's folder (absolute), and every other column
        kept as metadata (strings), in the sheet's row order.

    Raises
    ------
    SampleSheetError
        With one line naming the sheet, the row (line number in the file) and the fix.
    """
    path = Path(path)
    schema = load_schema() if schema is None else schema
    raw, lines = _read_raw(path)
    required = schema["required"]
    missing = [name for name in required if name not in raw.columns]
    if missing:
        hints = [
            f"'{close[0]}' for '{name}'"
            for name in missing
            if (close := difflib.get_close_matches(name, raw.columns, n=1, cutoff=0.75))
        ]
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise SampleSheetError(
            f"{path}: missing column(s) {', '.join(repr(m) for m in missing)} (header has "
            f"{', '.join(raw.columns)}{hint}). Fix: the sheet needs columns {', '.join(required)}."
        )
    validator = jsonschema.validators.validator_for(schema)(schema)
    records, good_lines = [], []
    for line, row in zip(lines, raw.iter_rows(named=True), strict=True):
        record = _row_record(row, schema)
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            error = SampleSheetError(
                f"{path}: row {line} (sample '{row.get('sample')}'): {_describe(errors[0], schema)}."
            )
            if problems is None:
                raise error
            problems.append(str(error))
            continue
        record["path"] = str((path.parent / record["path"]).resolve())
        records.append(record)
        good_lines.append(line)
    metadata = [name for name in raw.columns if name not in schema["properties"]]
    frame = pl.DataFrame(
        records,
        schema={
            "patient": pl.Utf8,
            "sample": pl.Utf8,
            "compartment": pl.Utf8,
            "day": pl.Int64,
            "replicate": pl.Int64,
            "path": pl.Utf8,
            "format": pl.Utf8,
            **{name: pl.Utf8 for name in metadata},
        },
    )
    if problems is None:
        _check_unique(frame, path, good_lines, check_files=check_files)
        return frame
    try:
        _check_unique(frame, path, good_lines, check_files=check_files)
    except SampleSheetError as error:
        problems.append(str(error))
    return frame


def _check_unique(frame: pl.DataFrame, path: Path, lines: list[int], *, check_files: bool) -> None:
    rows = frame.with_columns(line=pl.Series(lines, dtype=pl.Int64))
    duplicated = rows.filter(pl.col("sample").is_duplicated())
    if duplicated.height:
        lines = duplicated["line"].to_list()
        raise SampleSheetError(
            f"{path}: sample id '{duplicated['sample'][0]}' is used on rows "
            f"{', '.join(map(str, lines))}. Fix: give every row its own sample id."
        )
    shared = rows.filter(pl.col("path").is_duplicated())
    if shared.height:
        raise SampleSheetError(
            f"{path}: rows {', '.join(map(str, shared['line'].to_list()))} point at the "
            f"same file {shared['path'][0]}. Fix: each sample needs its own repertoire file."
        )
    replicate_clash = rows.filter(pl.struct("patient", "compartment", "day", "replicate").is_duplicated())
    if replicate_clash.height:
        raise SampleSheetError(
            f"{path}: rows {', '.join(map(str, replicate_clash['line'].to_list()))} are the same patient, "
            "compartment and day with the same replicate number. Fix: number technical replicates 1, 2, ... "
            "in the 'replicate' column."
        )
    if check_files:
        for line, sample, file in rows.select("line", "sample", "path").iter_rows():
            if Path(file).is_dir():
                raise SampleSheetError(
                    f"{path}: row {line} (sample '{sample}'): {file} is a directory. "
                    "Fix: 'path' must name the repertoire file itself."
                )
            if not Path(file).is_file():
                raise SampleSheetError(
                    f"{path}: row {line} (sample '{sample}'): file {file} does not exist. "
                    "Fix: correct 'path' (absolute, or relative to the sheet's folder)."
                )


def patient_rows(samples: pl.DataFrame, patient: str) -> pl.DataFrame:
    """The sheet rows of one patient, in sheet order (the one place the sheet is cut to a patient)."""
    return samples.filter(pl.col("patient") == patient)


def read_patient_sheet(path: Path | str, patient: str) -> pl.DataFrame:
    """The sheet rows of one patient (:func:`patient_rows`) of the sheet at ``path`` (files not checked:
    a step reads the pipeline's tables, not the raw files)."""
    return patient_rows(read_sample_sheet(path, check_files=False), patient)


def patient_samples(samples: pl.DataFrame, patient: str) -> pl.DataFrame:
    """The sheet rows of one patient, ordered by compartment, day and replicate."""
    return patient_rows(samples, patient).sort("compartment", "day", "replicate", "sample")


def config_problem(config: Mapping[str, Any], schema_path: Path | str) -> str | None:
    """The first way ``config`` breaks its JSON Schema, as one line with the fix; ``None`` when valid."""
    schema = load_schema(schema_path)
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    return None if error is None else _config_error_line(error)


def config_problems(config: Mapping[str, Any], schema_path: Path | str) -> list[str]:
    """Every way ``config`` breaks its JSON Schema, one line each (``tcrtrack validate``)."""
    schema = load_schema(schema_path)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path])
    return [_config_error_line(error) for error in errors]


def _config_error_line(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    spec = error.schema
    if error.validator == "enum":
        fix = f"use one of {', '.join(map(str, spec['enum']))}"
    else:
        fix = spec.get("description") or error.message
    return f"config key '{key}' is {error.instance!r}: {error.message}. Fix: {fix}"
