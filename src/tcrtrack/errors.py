"""Errors that users see as one clear line (file, row or column, and the fix)."""

from __future__ import annotations


class TcrtrackError(Exception):
    """Base class: an error caused by the user's input, reported without a traceback.

    The message is kept to one line: line breaks (say, from a quoted value) are shown as ``\\n``/``\\r``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


class InputFileError(TcrtrackError):
    """A repertoire file cannot be read as it is."""

    def __init__(self, path: object, problem: str, fix: str) -> None:
        super().__init__(f"{path}: {problem}. Fix: {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix


class SampleSheetError(TcrtrackError):
    """The sample sheet breaks its contract (workflow/schemas/samples.schema.yaml)."""
