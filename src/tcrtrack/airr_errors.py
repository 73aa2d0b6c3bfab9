"""The one-line errors of :mod:`tcrtrack.airr_reader` (and of the vendor readers): the row a problem is on, as
its line in the file (header = row 1, blank lines counted), the value, how many more rows share it, and the fix.
Only the error path reads the file again (to find the ragged row, or the first byte that is not UTF-8)."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tcrtrack.errors import InputFileError

if TYPE_CHECKING:
    from tcrtrack.airr_reader import _Sniffed

REREAD_FIX = "re-download or re-export the file (gzip -t FILE checks a .gz file)"
UTF8_FIX = "convert the file to UTF-8, e.g. iconv -f LATIN1 -t UTF-8 in.tsv > out.tsv"


def read_error(path: Path, sniffed: _Sniffed, error: Exception) -> InputFileError:
    """Turn an Arrow/gzip error into a one-line error naming the row (only on the error path)."""
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "columns, got" in message:
        row, expected, got = _ragged_row(path, sniffed)
        where = f"row {_line_of_row(path, sniffed, row)} has {got}" if row else "a row has another number of"
        return InputFileError(
            path,
            f"{where} field(s) but the header has {expected}",
            "every row needs one tab-separated value per column (look for a tab inside a value, "
            "a cut-off line or an unclosed quote)",
        )
    if "invalid UTF8" in message:
        line, byte = _first_non_utf8(path, sniffed)
        column = re.search(r"column #(\d+)", message)
        where = f", column '{sniffed.names[int(column.group(1))]}'" if column else ""
        return InputFileError(
            path, f"row {line}{where} is not UTF-8 text (byte {byte:#04x}, e.g. a Latin-1 export)", UTF8_FIX
        )
    if sniffed.compression and isinstance(error, (OSError, EOFError)):
        return InputFileError(path, f"the gzip data is corrupt or truncated ({message})", REREAD_FIX)
    return InputFileError(
        path,
        f"cannot be parsed ({message})",
        "check for truncated or corrupt content and rows with a wrong number of tabs",
    )


def _ragged_row(path: Path, sniffed: _Sniffed) -> tuple[int, int, int]:
    """(row as Arrow counts it: header = 1, blank lines skipped; fields expected; fields found).

    Arrow names the row only when it reads with one thread, so the file is read again that way.
    """
    import pyarrow as pa

    from tcrtrack.airr_reader import _arrow_read

    try:
        _arrow_read(path, sniffed, columns=None, threads=False)
    except (pa.ArrowInvalid, OSError) as error:
        found = re.search(r"Row #(\d+): Expected (\d+) columns, got (\d+)", str(error))
        if found:
            row, expected, got = map(int, found.groups())
            return row, expected, got
    return 0, len(sniffed.names), 0


def _line_of_row(path: Path, sniffed: _Sniffed, row: int) -> int:
    """The line number in the file of Arrow's row ``row`` (Arrow does not count blank lines)."""
    lines = re.split(rb"\r\n|\r|\n", _all_bytes(path, sniffed))
    nonblank = [number for number, line in enumerate(lines, start=1) if line]
    return nonblank[row - 1] if 0 < row <= len(nonblank) else row


def _first_non_utf8(path: Path, sniffed: _Sniffed) -> tuple[int, int]:
    data = _all_bytes(path, sniffed)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return len(re.findall(rb"\r\n|\r|\n", data[: error.start])) + 1, data[error.start]
    return 0, 0


def _all_bytes(path: Path, sniffed: _Sniffed) -> bytes:
    data = path.read_bytes()
    if not sniffed.compression:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):  # truncated: what can be decompressed of the first member
        return zlib.decompressobj(wbits=31).decompress(data)


RowLocator = Callable[[int], str]
"""Describes the row at a 0-based index of a frame for an error message (e.g. ``row 12``)."""


def airr_row_locator(path: Path | str) -> RowLocator:
    """``row N`` with N the line in the AIRR file (header = row 1; blank lines counted) of a frame row."""
    from tcrtrack.airr_reader import _sniff

    path = Path(path)
    return lambda index: f"row {_line_of_row(path, _sniff(path), index + 2)}"


def row_error(
    path: Path | str,
    frame: pl.DataFrame,
    bad: pl.Series,
    column: str,
    problem: str,
    fix: str,
    *,
    locate: RowLocator | None = None,
) -> InputFileError:
    """The error for the first row flagged in ``bad``, located by ``locate`` (default: the AIRR file's line),
    and how many more rows have the same problem (a user fixes them all at once)."""
    flagged = bad.arg_true()
    index = int(flagged[0])
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(frame[column][index])[:60])
    locate = locate or airr_row_locator(path)
    return InputFileError(
        path,
        f"{locate(index)}, column '{column}': '{value}' {problem}"
        f"{more_rows([locate(int(i)) for i in flagged[1:6]], len(flagged) - 1)}",
        fix,
    )


def more_rows(where: list[str], more: int) -> str:
    """`` (and 3 more rows like it: row 5, row 9, row 12)``, or nothing when no other row is flagged."""
    if more <= 0:
        return ""
    listed = ", ".join(where) + (", ..." if more > len(where) else "")
    return f" (and {more} more row{'s' if more > 1 else ''} like it: {listed})"
