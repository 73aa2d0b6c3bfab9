"""Read and validate the sample sheet.

The sheet is a tab-separated table, one row per sequenced repertoire; its contract is
``workflow/schemas/samples.schema.yaml`` (the JSON Schema is the single source of truth
for column types, patterns and allowed values). Every problem is reported as one line that
names the sheet, the row (as its line number in the file) and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import yaml

from tcrtrack.errors import SampleSheetError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "samples.schema.yaml"
"""The schema in a source checkout; installed copies pass ``schema=`` explicitly."""

_INTEGER_COLUMNS = ("day", "replicate")


def load_schema(path: Path | str = SCHEMA_PATH) -> dict[str, Any]:
    """Load a YAML JSON Schema."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _read_raw(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise SampleSheetError(f"{path}: sample sheet not found. Fix: pass an existing TSV file as 'samples'.")
    try:
        frame = pl.read_csv(path, separator="\t", infer_schema=False, comment_prefix="#")
    except pl.exceptions.PolarsError as error:
        first = str(error).splitlines()[0]
        raise SampleSheetError(f"{path}: cannot be read as a tab-separated table ({first}). "
                               "Fix: save the sheet as TSV with one header line.") from None
    if frame.height == 0:
        raise SampleSheetError(f"{path}: the sheet has no sample rows. Fix: add one row per repertoire file.")
    if len(frame.columns) == 1 and "," in frame.columns[0]:
        raise SampleSheetError(f"{path}: the header has no tab (it looks comma-separated). "
                               "Fix: save the sheet as tab-separated values.")
    return frame.rename({name: name.strip() for name in frame.columns}).with_columns(
        pl.col(name).str.strip_chars() for name in frame.columns
    )


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
        return (f"column '{column}' is '{error.instance}'. Fix: use only letters, digits, '_' and '-' "
                f"({spec['pattern']})")
    if error.validator == "type":
        return f"column '{column}' is '{error.instance}'. Fix: write a whole number ({spec['description']})"
    return f"column '{column}': {error.message}. Fix: {spec.get('description', 'see the schema')}"


def read_sample_sheet(path: Path | str, *, schema: Mapping[str, Any] | None = None,
                      check_files: bool = True) -> pl.DataFrame:
    """Read, type and validate a sample sheet.

    Parameters
    ----------
    path
        The TSV sample sheet.
    schema
        The JSON Schema of one row (default: ``workflow/schemas/samples.schema.yaml``).
    check_files
        Also require every ``path`` to exist.

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
    raw = _read_raw(path)
    required = schema["required"]
    missing = [name for name in required if name not in raw.columns]
    if missing:
        raise SampleSheetError(
            f"{path}: missing column(s) {', '.join(repr(m) for m in missing)} (header has "
            f"{', '.join(raw.columns)}). Fix: the sheet needs columns {', '.join(required)}.")
    validator = jsonschema.validators.validator_for(schema)(schema)
    records = []
    for index, row in enumerate(raw.iter_rows(named=True)):
        line = index + 2  # 1-based, after the header line
        record = _row_record(row, schema)
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        if errors:
            raise SampleSheetError(f"{path}: row {line} (sample '{row.get('sample')}'): "
                                   f"{_describe(errors[0], schema)}.")
        record["path"] = str((path.parent / record["path"]).resolve())
        records.append(record)
    metadata = [name for name in raw.columns if name not in schema["properties"]]
    frame = pl.DataFrame(records, schema={
        "patient": pl.Utf8, "sample": pl.Utf8, "compartment": pl.Utf8, "day": pl.Int64,
        "replicate": pl.Int64, "path": pl.Utf8, "format": pl.Utf8,
        **{name: pl.Utf8 for name in metadata}})
    _check_unique(frame, path, check_files=check_files)
    return frame


def _check_unique(frame: pl.DataFrame, path: Path, *, check_files: bool) -> None:
    rows = frame.with_row_index("line", offset=2)
    duplicated = rows.filter(pl.col("sample").is_duplicated())
    if duplicated.height:
        lines = duplicated["line"].to_list()
        raise SampleSheetError(f"{path}: sample id '{duplicated['sample'][0]}' is used on rows "
                               f"{', '.join(map(str, lines))}. Fix: give every row its own sample id.")
    shared = rows.filter(pl.col("path").is_duplicated())
    if shared.height:
        raise SampleSheetError(f"{path}: rows {', '.join(map(str, shared['line'].to_list()))} point at the "
                               f"same file {shared['path'][0]}. Fix: each sample needs its own repertoire file.")
    replicate_clash = rows.filter(pl.struct("patient", "compartment", "day", "replicate").is_duplicated())
    if replicate_clash.height:
        raise SampleSheetError(
            f"{path}: rows {', '.join(map(str, replicate_clash['line'].to_list()))} are the same patient, "
            "compartment and day with the same replicate number. Fix: number technical replicates 1, 2, ... "
            "in the 'replicate' column.")
    if check_files:
        for line, sample, file in rows.select("line", "sample", "path").iter_rows():
            if not Path(file).is_file():
                raise SampleSheetError(f"{path}: row {line} (sample '{sample}'): file {file} does not exist. "
                                       "Fix: correct 'path' (absolute, or relative to the sheet's folder).")


def patient_samples(samples: pl.DataFrame, patient: str) -> pl.DataFrame:
    """The sheet rows of one patient, ordered by compartment, day and replicate."""
    return samples.filter(pl.col("patient") == patient).sort("compartment", "day", "replicate", "sample")
