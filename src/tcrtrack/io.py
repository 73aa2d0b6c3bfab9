"""Atomic table writers: a crashed or killed job never leaves a partial output behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` then move the file into place, so ``path`` is never partial.

    The file gets the usual permissions (``0o666`` less the umask), not the private ``0o600`` that
    :func:`tempfile.mkstemp` gives, so results stay readable on a shared lab file system.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_parquet(frame: pl.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` as Parquet (zstd), atomically."""
    return atomic_write(path, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))


def write_tsv(frame: pl.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` as a tab-separated table with a header, atomically.

    Floats are written in their shortest exact form (``5e-7``, ``0.000025``), so small frequencies
    and q-values are never rounded to zero; missing values are ``NA``.
    """
    return atomic_write(path, lambda tmp: frame.write_csv(tmp, separator="\t", null_value="NA"))


def write_text(text: str, path: Path | str) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_tsv(path: Path | str) -> pl.DataFrame:
    """Read a table written by :func:`write_tsv`."""
    return pl.read_csv(path, separator="\t", null_values="NA", infer_schema_length=None)
