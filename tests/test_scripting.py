"""run_step: a figure's PDF is written exactly when the job's rule declares one (config report.pdf)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

import tcrtrack.plots
from tcrtrack.scripting import run_step


@pytest.mark.parametrize(("outputs", "pdf"), [(["a.png"], False), (["a.png", "a.pdf"], True), ([], False)])
def test_run_step_writes_pdfs_only_when_the_rule_declares_them(tmp_path, monkeypatch, outputs, pdf):
    monkeypatch.setattr(tcrtrack.plots, "WRITE_PDF", not pdf)
    job = SimpleNamespace(log=[str(tmp_path / "job.log")], output=outputs)
    seen = []
    handlers = logging.root.handlers[:]
    try:
        run_step(job, lambda sm: seen.append(tcrtrack.plots.WRITE_PDF))
    finally:  # run_step points the root logger at the job's log: give the test session its handlers back
        for handler in logging.root.handlers:
            if handler not in handlers:
                handler.close()
        logging.root.handlers[:] = handlers
    assert seen == [pdf]
