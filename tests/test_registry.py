"""tcrtrack.registry is the one list of outputs: the workflow's rules write exactly its files, and `rule all`,
`tcrtrack run --patient`, `tcrtrack show` and the figure lists read it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tcrtrack import registry
from tcrtrack.plots import COHORT_FIGURES, PATIENT_FIGURES

ROOT = Path(__file__).resolve().parents[1]
SHEET = ROOT / "config" / "samples.tsv"


@pytest.mark.parametrize("pdf", [False, True])
def test_the_workflow_writes_exactly_the_registry(tmp_path, pdf):
    """`snakemake --summary` of the demo (a dry plan, nothing runs) lists every file the DAG of `all` writes,
    with its rule: the registry's files, each from the rule the registry names; figures' PDFs only with
    report.pdf."""
    (tmp_path / "my.yaml").write_text(f"samples: {SHEET}\nreport:\n  pdf: {str(pdf).lower()}\n")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", "my.yaml", "--summary"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("\t") for line in done.stdout.splitlines() if line.startswith("results/")]
    planned = {path: rule for path, _, rule, *_ in rows}
    patients = pl.read_csv(SHEET, separator="\t")["patient"].unique(maintain_order=True).to_list()
    expected = {
        f: o.rule
        for o in registry.OUTPUTS
        for p in (patients if o.scope == "patient" else [None])
        for f in o.format(p, pdf=pdf)
    }
    assert any(f.endswith(".pdf") for f in planned) == pdf
    assert planned == expected
    rules = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", "my.yaml", "--list-rules"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert set(rules.stdout.split()) == {o.rule for o in registry.OUTPUTS} | {"all"}


def test_every_rule_output_goes_through_the_registry():
    """Each `output:` of every rule is `out("...")` (common.smk: a registry lookup that fails on unknown paths),
    or `**pdf_out(name="...")` for a figure's PDF (out() when report.pdf is on), so no rule can write a file the
    registry, and so `rule all` and the CLI, does not know."""
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.findall(r"\n    output:\n((?:        .*\n)+)", smk.read_text()):
            for line in block.splitlines():
                assert re.fullmatch(r'        (\w+=out\("[^"]+"\)|\*\*pdf_out\(\w+="[^"]+\.pdf"\)),(  #.*)?', line), (
                    f"{smk.name}: {line.strip()}"
                )


def test_registry_entries_are_complete():
    for entry in registry.OUTPUTS:
        assert ("{patient}" in entry.path) == (entry.scope == "patient"), entry.path
        if entry.kind == "figure":
            assert entry.path.endswith(".png") and entry.label and entry.caption, entry.path
        if entry.caption:
            assert (ROOT / "workflow" / "report" / entry.caption).is_file(), entry.caption
        assert entry.meaning and entry.stage
    figures = registry.select(kind="figure")
    assert {o.stem for o in figures if o.rule == "figures"} == set(PATIENT_FIGURES)
    assert {o.stem for o in figures if o.rule == "figures_cohort"} == set(COHORT_FIGURES)
    assert {"kinetics", "persistence"} <= {o.stem for o in figures if o.scope == "patient"}


def test_workflow_overview_names_no_figure_count():
    """The report's overview lists the figures from the report itself (labels set by the registry)."""
    text = (ROOT / "workflow" / "report" / "workflow.rst").read_text()
    assert not re.search(r"\b(two|three|four|five|six|seven|eight) figures\b", text)
