"""Progress of a long simulation, without a CLI toolkit in the library.

A caller with a richer bar injects it: any ``factory(length)`` returning a context manager whose
value has ``update(n)`` (``lambda n: click.progressbar(length=n, label=..., file=sys.stderr)``
fits). ``True`` gives :func:`stderr_counter`; ``False`` gives nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO

__all__ = ["Progress", "ProgressFactory", "progress_context", "stderr_counter"]


class Progress(Protocol):
    """What a progress bar must offer: ``update(n)`` after ``n`` more steps."""

    def update(self, n: int) -> None:
        """Record ``n`` more finished steps."""


ProgressFactory = Callable[[int], AbstractContextManager[Progress]]


class _Silent:
    def update(self, n: int) -> None:
        """Ignore progress."""


class _Counter:
    def __init__(self, length: int, label: str, stream: TextIO) -> None:
        self.done, self.length, self.label, self.stream = 0, length, label, stream

    def update(self, n: int) -> None:
        """Count ``n`` more steps and rewrite the line."""
        self.done += n
        self.stream.write(f"\r{self.label} {self.done}/{self.length}")
        self.stream.flush()


@contextmanager
def stderr_counter(
    length: int, *, label: str = "simulating cohort", stream: TextIO | None = None
) -> Iterator[Progress]:
    """A one-line ``label done/length`` counter on ``stream`` (default stderr), ended by a newline."""
    counter = _Counter(length, label, sys.stderr if stream is None else stream)
    try:
        yield counter
    finally:
        counter.stream.write("\n")
        counter.stream.flush()


@contextmanager
def _silent(length: int) -> Iterator[Progress]:
    yield _Silent()


def progress_context(progress: bool | ProgressFactory, length: int) -> AbstractContextManager[Progress]:
    """The progress context for ``length`` steps: an injected factory, a stderr counter or nothing."""
    if callable(progress):
        return progress(length)
    return stderr_counter(length) if progress else _silent(length)
