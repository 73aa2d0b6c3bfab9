"""Read AIRR Rearrangement TSV files (plain or gzipped) as string columns, refusing bad files clearly.

Field names and types come from the schema file that the ``airr`` package ships (read directly:
importing ``airr`` pulls in pandas, slow for every job). Bad input (tests/test_bad_inputs.py) is
refused with one :class:`~tcrtrack.errors.InputFileError` line naming the file, the row (its line in the
file, the header being row 1) or column, and the fix: a missing path or a directory, an empty file, a
header without rows, corrupt or truncated gzip, other compression (bzip2, xz, zstd, zip), UTF-16, text
that is not UTF-8 in a column tcrtrack reads, a header without tabs (CSV), a blank first line, a column
tcrtrack reads appearing twice, a missing required column (with the nearest header name as a hint), a
row with more or fewer fields than the header, and a value running over several lines (unclosed quote).
Read as documented: LF, CRLF and CR-only line endings and a UTF-8 BOM (same result as LF), gzip with or
without the .gz suffix and with several members (bgzip), quoted fields, header names with spaces or
quotes around them, blank lines (skipped: they are not rows), and columns tcrtrack does not read (not
decoded, duplicates allowed).

Two readers, one result: a file without quotes in its first 256 KiB (and whose header ends at LF or CRLF)
is first split into lines and fields by Polars (:func:`_read_lines`: ~1.4x less CPU and ~2x less wall time
on two cores than Arrow's reader, whose single-threaded gzip decoding alone takes longer than Polars' whole
read; and no pyarrow import), which is kept only when every line has exactly the header's number of fields
and no carriage return inside it. Anything else (quotes, a ragged or CR-only file, text that is not UTF-8,
corrupt gzip, no rows) is read again by Arrow's CSV reader (:func:`_read_columns`), which reads those files
as documented above or names the problem: both readers give the same frame (tests/test_ingest.py).
"""

from __future__ import annotations

import difflib
import functools
import gzip
import importlib.util
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import yaml

from tcrtrack.airr_errors import REREAD_FIX, UTF8_FIX, read_error, row_error
from tcrtrack.errors import InputFileError

if TYPE_CHECKING:
    import pyarrow as pa

COUNT_FIELDS: tuple[str, ...] = ("duplicate_count", "umi_count", "consensus_count")
"""Count columns in order of preference; without any, each row counts 1."""

READ_FIELDS: tuple[str, ...] = (
    "locus",
    "productive",
    "v_call",
    "j_call",
    "junction",
    "junction_aa",
    "cell_id",
    *COUNT_FIELDS,
)


def count_column(frame: pl.DataFrame) -> str | None:
    """The first of :data:`COUNT_FIELDS` that ``frame`` has with at least one value, else ``None``."""
    for name in COUNT_FIELDS:
        if name in frame.columns and frame[name].is_not_null().any():
            return name
    return None


@functools.cache
def airr_rearrangement_schema() -> dict:
    """The AIRR Rearrangement schema (``properties``, ``required``) from the ``airr`` package's spec file."""
    spec = importlib.util.find_spec("airr")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'airr' package is required (pip install airr)")
    path = Path(spec.submodule_search_locations[0]) / "specs" / "airr-schema.yaml"
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["Rearrangement"]


def airr_field_types() -> dict[str, str]:
    """AIRR Rearrangement field name -> AIRR type (``string``, ``integer``, ``boolean``, ``number``)."""
    return {name: field.get("type", "object") for name, field in airr_rearrangement_schema()["properties"].items()}


_HEAD_BYTES = 1 << 18
_BOM = b"\xef\xbb\xbf"
_OTHER_FORMATS = (
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


@dataclass(frozen=True)
class _Sniffed:
    compression: str | None  # "gzip" or None
    names: tuple[str, ...]
    quoted: bool  # the first 256 KiB hold a '"': honour quotes
    lines: bool  # the header ends at LF or CRLF: Polars may split the lines (_read_lines)


def read_airr_tsv(path: Path | str, *, extra: Sequence[str] = ()) -> pl.DataFrame:
    """Read the columns tcrtrack uses (:data:`READ_FIELDS`, plus those of ``extra`` that the file has)
    from an AIRR Rearrangement TSV (plain or gzipped).

    All columns are read as strings (AIRR allows empty values anywhere) and typed later,
    so a malformed value is reported with its row instead of failing inside the parser.
    Every row's number of fields is checked; LF, CRLF and CR line endings and a UTF-8 BOM are
    accepted and blank lines skipped (by Polars' line split, else by Arrow's CSV reader: see the
    module docstring); see :func:`read_airr_header` for the whole-file checks made first. Quotes are
    honoured when the file uses them (a ``"`` in its first 256 KiB, or a row that only parses with them);
    a value of a column tcrtrack reads that runs over several lines (an unclosed quote) is an error.
    """
    path = Path(path)
    sniffed = _sniff(path)
    columns = [name for name in dict.fromkeys((*READ_FIELDS, *extra)) if name in sniffed.names]
    frame = _read_lines(path, sniffed, columns) if sniffed.lines and not sniffed.quoted else None
    quoted = False
    if frame is None:
        frame, quoted = _read_columns(path, sniffed, columns)
    if frame.height == 0:
        raise InputFileError(
            path,
            "has a header but no rows (an empty repertoire cannot be analysed)",
            "re-export the file with its rearrangements, or remove the sample from the sheet",
        )
    if quoted:
        _refuse_line_breaks(path, frame)
    return frame


def read_airr_header(path: Path | str) -> list[str]:
    """The column names of an AIRR TSV, after the whole-file checks.

    Refused with an :class:`InputFileError`: a missing path, a directory, an empty file, compression
    other than gzip, corrupt gzip, UTF-16 or non-UTF-8 header, a header without tabs, a blank first line,
    a column that tcrtrack reads appearing twice, and missing required columns (with the nearest
    names in the header as a hint). Column names are stripped of spaces and quotes.
    """
    return list(_sniff(Path(path)).names)


def _sniff(path: Path) -> _Sniffed:
    """The whole-file checks of :func:`read_airr_header`, on the first 256 KiB (decompressed)."""
    if not path.exists():
        raise InputFileError(
            path, "does not exist", "correct 'path' in the sample sheet (absolute, or relative to the sheet's folder)"
        )
    if path.is_dir():
        raise InputFileError(path, "is a directory, not a file", "give the path of the repertoire file itself")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as error:
        raise InputFileError(path, f"cannot be opened ({error.strerror})", "check the file's permissions") from None
    if not magic:
        raise InputFileError(
            path, "is empty (0 bytes)", "re-export or re-download the file: it needs a header line and at least one row"
        )
    for signature, kind in _OTHER_FORMATS:
        if magic.startswith(signature):
            fix = (
                "save it as UTF-8 text (e.g. iconv -f UTF-16 -t UTF-8 in.tsv > out.tsv)"
                if "UTF" in kind
                else "extract it, or recompress it with gzip: tcrtrack reads plain or gzipped TSV"
            )
            raise InputFileError(path, f"is {kind}", fix)
    compression = "gzip" if magic.startswith(b"\x1f\x8b") else None
    head = _read_head(path, compression)
    names = _parse_header(path, head)
    _require_columns(path, names)
    header = re.match(rb"[^\r\n]*(\r\n|\n)?", head.removeprefix(_BOM))
    return _Sniffed(compression, tuple(names), quoted=b'"' in head, lines=bool(header and header.group(1)))


def _read_head(path: Path, compression: str | None) -> bytes:
    opener = gzip.open if compression else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as error:
        raise InputFileError(path, f"the gzip data is corrupt or truncated ({error})", REREAD_FIX) from None


def _parse_header(path: Path, head: bytes) -> list[str]:
    if not head:
        raise InputFileError(path, "is empty (no text after decompression)", REREAD_FIX)
    line = re.split(rb"[\r\n]", head.removeprefix(_BOM), maxsplit=1)[0]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputFileError(
            path, f"row 1 (the header) is not UTF-8 text (byte {line[error.start]:#04x})", UTF8_FIX
        ) from None
    names = [name.strip().strip('"').strip() for name in text.split("\t")]
    if names == [""]:
        raise InputFileError(
            path, "row 1 is empty", "remove the blank line(s) above the header: the first line must be the column names"
        )
    if len(names) == 1:
        looks = next(
            (
                f"{word}-separated"
                for char, word in ((",", "comma"), (";", "semicolon"), (" ", "space"))
                if char in names[0]
            ),
            "like a single column",
        )
        raise InputFileError(
            path,
            f"the header has no tab (it looks {looks})",
            "give a tab-separated AIRR Rearrangement file (re-export it as TSV)",
        )
    twice = sorted({name for name in names if name in READ_FIELDS and names.count(name) > 1})
    if twice:
        positions = [index + 1 for index, name in enumerate(names) if name == twice[0]]
        raise InputFileError(
            path,
            f"column '{twice[0]}' appears {len(positions)} times in the header "
            f"(columns {', '.join(map(str, positions))})",
            "keep one column of that name (remove or rename the others)",
        )
    return names


def _require_columns(path: Path, header: list[str]) -> None:
    missing = [name for name in ("v_call", "j_call") if name not in header]
    if "junction_aa" not in header and "junction" not in header:
        missing.insert(0, "junction_aa")
    if missing:
        known = airr_field_types()  # a real AIRR field (d_call for v_call) is no misspelling
        lowered = {name.lower(): name for name in header if name not in known}
        hints = [
            f"'{lowered[close[0]]}' for '{name}'"
            for name in missing
            if (close := difflib.get_close_matches(name, list(lowered), n=1, cutoff=0.75))
        ]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise InputFileError(
            path,
            f"required AIRR column(s) {', '.join(missing)} missing{hint}",
            "export the file as an AIRR Rearrangement TSV with junction_aa (or junction), v_call and j_call",
        )


def _unique(names: tuple[str, ...]) -> list[str]:
    """Make duplicate names (of columns tcrtrack does not read) unique for Arrow."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


_WHOLE = "__line_is_whole"


def _read_lines(path: Path, sniffed: _Sniffed, columns: list[str]) -> pl.DataFrame | None:
    """``columns`` as strings (empty = null) from Polars' split of each line on tabs, or ``None`` when the
    file needs Arrow's reader (:func:`_read_columns`) to be read as documented or to name its problem.

    Blank lines are dropped (as Arrow drops them, so that row numbers still map to lines). A line is
    *whole* when it has one field per header column and no carriage return left in it (Arrow ends a line
    at a lone CR). ``None`` for: a line that is not whole, no rows, or a read error (corrupt or truncated
    gzip, text that is not UTF-8, in any column).
    """
    width = len(sniffed.names)
    where = {name: sniffed.names.index(name) for name in columns}
    last = max(where.values())
    line, split = pl.col("line"), pl.col("split")
    if 2 * (last + 1) < width:  # the columns read come first: split up to them, then count the rest's tabs
        splitter = line.str.splitn("\t", last + 2)
        values = {name: split.struct.field(f"field_{index}") for name, index in where.items()}
        whole = split.struct.field(f"field_{last + 1}").str.count_matches("\t", literal=True) == width - 2 - last
    else:  # a list of all the fields: cheaper than a struct
        splitter = line.str.split("\t")
        values = {name: split.list.get(index, null_on_oob=True) for name, index in where.items()}
        whole = split.list.len() == width
    query = (
        pl.scan_lines(path, glob=False)
        .slice(1)
        .filter(line != "")
        .select(  # split once, then take apart
            split=pl.when(~line.str.contains("\r", literal=True)).then(splitter),
        )
        .select(
            *(pl.when(value != "").then(value).alias(name) for name, value in values.items()),
            whole.fill_null(False).alias(_WHOLE),
        )
    )
    try:
        frame = query.collect(engine="streaming")
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError):
        return None
    if frame.height == 0 or not frame[_WHOLE].all():
        return None
    return frame.drop(_WHOLE)


def _read_columns(path: Path, sniffed: _Sniffed, columns: list[str]) -> tuple[pl.DataFrame, bool]:
    """``columns`` as strings, and whether quotes were honoured."""
    import pyarrow as pa  # deferred: only the ingest step needs it

    try:
        table = _arrow_read(path, sniffed, columns=columns)
    except (pa.ArrowInvalid, OSError, EOFError) as error:
        if "Could not skip initial" in str(error):  # Arrow's words for a header without a line end
            return pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8)), sniffed.quoted
        if sniffed.quoted or "columns, got" not in str(error):
            raise read_error(path, sniffed, error) from None
        sniffed = replace(sniffed, quoted=True)  # a quoted value holding a tab, after the first 256 KiB
        try:
            table = _arrow_read(path, sniffed, columns=columns)
        except (pa.ArrowInvalid, OSError, EOFError) as error_with_quotes:
            raise read_error(path, replace(sniffed, quoted=False), error_with_quotes) from None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, sniffed.quoted


def _arrow_read(path: Path, sniffed: _Sniffed, *, columns: list[str] | None, threads: bool = True) -> pa.Table:
    """Arrow's CSV reader on the file: ``columns`` (all when ``None``) as strings, empty = null."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    convert = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True)
    if columns is not None:
        convert.include_columns = columns
        convert.column_types = dict.fromkeys(columns, pa.string())
    with pa.input_stream(str(path), compression=sniffed.compression) as stream:
        return pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=_unique(sniffed.names), skip_rows=1, use_threads=threads),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char='"' if sniffed.quoted else False),
            convert_options=convert,
        )


def _refuse_line_breaks(path: Path, frame: pl.DataFrame) -> None:
    """In a quoted file, a value with a line break in it is an unclosed quote that swallowed rows."""
    for column in frame.columns:
        broken = frame[column].str.contains(r"[\r\n]").fill_null(False)
        if broken.any():
            raise row_error(
                path,
                frame,
                broken,
                column,
                "runs over several lines (an unclosed quote?)",
                "close or remove the stray '\"' in that row: a value must not hold a line break",
            )
