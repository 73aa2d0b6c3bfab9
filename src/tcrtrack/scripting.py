"""Run a step from a Snakemake ``script:`` with its log, and user errors as one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from tcrtrack.errors import TcrtrackError


def run_step(snakemake: Any, step: Callable[[Any], None]) -> None:
    """Call ``step(snakemake)`` logging to the rule's ``log:`` file.

    A :class:`~tcrtrack.errors.TcrtrackError` (bad input) is written as one line to the log
    and to stderr and the job exits with status 1, without a traceback; anything else is a
    bug and keeps its traceback. Figures are written as PDF too when the rule declares a PDF
    output (config ``report.pdf``: :data:`tcrtrack.plots.WRITE_PDF`).
    """
    from tcrtrack import plots  # light: the registry, no matplotlib

    plots.WRITE_PDF = any(str(path).endswith(".pdf") for path in snakemake.output)
    log_file = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    try:
        step(snakemake)
    except TcrtrackError as error:
        logging.error("%s", error)
        sys.exit(1)
    except Exception:
        logging.exception("tcrtrack failed unexpectedly (a bug: please report it with this log)")
        raise
