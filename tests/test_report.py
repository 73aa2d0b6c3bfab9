"""The workflow's figures and tables on a small simulated cohort, and the self-contained HTML report,
rendered in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from readme_env import readme_python

from tcrtrack import registry
from tcrtrack.io import read_tsv
from tcrtrack.plots import COHORT_FIGURES, PATIENT_FIGURES
from tcrtrack.simulate import simulate_cohort

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
PATIENTS = ("P01", "P02")


def find_or_install_chromium() -> str | None:
    """The chromium binary; when missing and running as root in CI (``CI`` set), install Debian's package
    with apt-get first. ``None`` when it cannot be had (the browser test then skips, saying why)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not os.environ.get("CI") or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=1200).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=1200)
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A two-patient cohort run through `tcrtrack run` (deployed: from a folder that is not the repository),
    then `snakemake --report`."""
    base = tmp_path_factory.mktemp("report")
    simulate_cohort(
        base / "data",
        n_patients=2,
        n_clones=1500,
        blood_depth=5000,
        tumor_depth=3000,
        n_planted=(5, 3, 3),
        replicate_patients=(0,),
        seed=3,
        sheet=base / "samples.tsv",
    )
    # report.pdf on (off by default): every figure as PDF too
    (base / "run.yaml").write_text(
        f"samples: {base / 'samples.tsv'}\ndiversity:\n  depth: 1500\nreport:\n  pdf: true\n"
    )
    workdir = base / "work"
    done = subprocess.run(
        [
            str(readme_python()),
            "-m",
            "tcrtrack.cli",
            "run",
            "--configfile",
            str(base / "run.yaml"),
            "--outdir",
            str(workdir),
            "--cores",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = subprocess.run(
        [
            str(readme_python()),
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(base / "run.yaml"),
            "--report",
            "results/report.html",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    (workdir / "report.log").write_text(report.stdout + report.stderr)
    return workdir


def non_blank_png(path: Path) -> bool:
    import matplotlib.image

    return matplotlib.image.imread(str(path)).std() > 0.02


def test_every_figure_exists_as_png_and_pdf(run):
    folders = [run / "results" / "patients" / p / "figures" for p in PATIENTS]
    expected = [(f, stem) for f in folders for stem in PATIENT_FIGURES]
    expected += [(run / "results" / "cohort" / "figures", stem) for stem in COHORT_FIGURES]
    for folder, stem in expected:
        assert non_blank_png(folder / f"{stem}.png"), folder / stem
        assert (folder / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"


def test_overlap_tables(run):
    sheet = pl.read_csv(run.parent / "samples.tsv", separator="\t")
    for patient in PATIENTS:
        n = sheet.filter(pl.col("patient") == patient).height
        overlap = read_tsv(run / "results" / "patients" / patient / "overlap.tsv")
        assert overlap.height == n * (n - 1) // 2
        for metric in ("morisita_horn", "jaccard", "overlap_coefficient"):
            assert overlap[metric].is_between(0, 1).all()
        replicates = overlap.filter(
            (pl.col("compartment_a") == pl.col("compartment_b")) & (pl.col("day_a") == pl.col("day_b"))
        )
        blood_tumour = overlap.filter(pl.col("compartment_a") != pl.col("compartment_b"))
        if replicates.height:  # technical replicates share far more than blood and tumour
            assert replicates["morisita_horn"].min() > blood_tumour["morisita_horn"].max()
    cohort = read_tsv(run / "results" / "cohort" / "overlap.tsv")
    assert sorted(cohort["patient"].unique()) == list(PATIENTS)
    public = read_tsv(run / "results" / "cohort" / "public_clones.tsv")
    assert public.columns[:4] == ["junction_aa", "v_gene", "j_gene", "n_patients"]
    assert (public["n_patients"] >= 2).all()


def test_report_is_self_contained_with_every_figure_and_caption(run):
    log = (run / "report.log").read_text()
    assert "(ERROR/" not in log and "(WARNING/" not in log, log[-2000:]  # docutils problems in captions
    html = (run / "results" / "report.html").read_text()
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?://", html)
    for patient in PATIENTS:
        for stem in PATIENT_FIGURES:
            assert f"results/patients/{patient}/figures/{stem}.png" in html
        assert f"results/patients/{patient}/overlap.tsv" in html
    for stem in COHORT_FIGURES:
        assert f"results/cohort/figures/{stem}.png" in html
    for table in ("qc.tsv", "diversity.tsv", "expansion_summary.tsv", "public_clones.tsv", "overlap.tsv"):
        assert f"results/cohort/{table}" in html
    assert html.count("How to read it") >= len(PATIENTS) * len(PATIENT_FIGURES) + len(COHORT_FIGURES)
    assert "Configuration of this run" in html
    # every figure embedded in the page itself (a data URI), none linked: the figures of every rule
    figures = registry.select(kind="figure")
    assert html.count('"data_uri": "data:image/png;') == (
        len(PATIENTS) * sum(o.scope == "patient" for o in figures) + sum(o.scope == "cohort" for o in figures)
    )


def test_cohort_analyses_are_built_and_in_the_report(run):
    """Issue 16's stages (clone origin, gene usage, diversity curves, association) on the two-patient run."""
    results = run / "results"
    html = (results / "report.html").read_text()
    for entry in registry.OUTPUTS:
        if entry.stage in ("clone origin", "gene usage", "association") or entry.rule.startswith("diversity_curves"):
            for path in entry.format(PATIENTS[0] if entry.scope == "patient" else None, pdf=True):
                assert (run / path).is_file(), path
            if entry.label is not None:
                assert entry.format(PATIENTS[0])[0] in html if entry.scope == "patient" else entry.path in html
    association = read_tsv(results / "cohort" / "association.tsv")
    assert set(association["grouping"]) == {"response"}
    assert {"flagged", "blood_turnover", "origin_adjusted_new_template_share"} <= set(association["metric"])
    for row in association.iter_rows(named=True):  # one patient per group: each counted, none dropped
        assert sum(int(n) for n in row["n_per_group"].split("|")) + row["n_missing"] == 2, row
    origin = read_tsv(results / "patients" / "P01" / "clone_origin.tsv")
    assert origin.height % 4 == 0 and origin.height > 0
    for _, biopsy in origin.group_by("biopsy_day"):
        assert abs(biopsy["clone_share"].sum() - 1) < 1e-9 and abs(biopsy["template_share"].sum() - 1) < 1e-9
    usage = read_tsv(results / "patients" / "P01" / "gene_usage.tsv")
    sums = usage.group_by("sample", "segment", "weight").agg(pl.col("share").sum())["share"]
    assert ((sums - 1).abs() < 1e-9).all()
    curves = read_tsv(results / "patients" / "P01" / "diversity_curves.tsv")
    observed = curves.filter((pl.col("method") == "observed") & (pl.col("q") == 0))
    clonotypes = {
        s: pl.read_parquet(results / "clonotypes" / "P01" / f"{s}.parquet").height for s in observed["sample"]
    }
    assert all(round(e) == clonotypes[s] for s, e in observed.select("sample", "estimate").iter_rows())
    assert "exact" in html or "Mann" in html  # the test named with the p-values (flagged_by_group caption)


def test_report_with_a_custom_stylesheet_is_still_self_contained(run, tmp_path):
    """README: `snakemake --report results/report.html --report-stylesheet my.css` embeds the stylesheet."""
    css = tmp_path / "my.css"
    css.write_text("/* tcrtrack custom style */ body { font-family: serif; }\n")
    out = tmp_path / "styled.html"
    done = subprocess.run(
        [
            str(readme_python()),
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(run.parent / "run.yaml"),
            "--report",
            str(out),
            "--report-stylesheet",
            str(css),
        ],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    html = out.read_text()
    assert html.count("/* tcrtrack custom style */") == 1
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?://", html)


def chromium_args(binary: str, profile: Path) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=15000",
    ]


def visible_text(dom: str) -> str:
    """The text of a DOM outside scripts and styles (what the app rendered, not its embedded data)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_report_renders_in_headless_chromium(run, tmp_path):
    binary = find_or_install_chromium()
    if binary is None:
        pytest.skip(
            "chromium not found: install it (apt-get install -y --no-install-recommends chromium); "
            "with CI set and as root this test installs it itself"
        )
    html = (run / "results" / "report.html").read_text()
    figure = "results/patients/P01/figures/expansion_scatter.png"
    # Navigate as a reader would: open patient P01's results, then the expansion figure's caption.
    navigate = (
        "<script>window.addEventListener('load', function () { setTimeout(function () {"
        "app.setView({navbarMode: 'subcategory', category: 'Patients', subcategory: 'P01'});"
        "%s }, 300); });</script>"
    )
    pages = {
        "listing": navigate % "",
        "caption": navigate % f"setTimeout(function () {{ app.showResultInfo({json.dumps(figure)}); }}, 300);",
    }
    texts = {}
    for name, script in pages.items():
        page = tmp_path / f"{name}.html"
        end = html.rfind("</body>")  # the page's own closing tag (embedded scripts may contain the string)
        page.write_text(html[:end] + script + html[end:] if end >= 0 else html + script)
        done = subprocess.run(
            [*chromium_args(binary, tmp_path / f"profile-{name}"), "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Uncaught" not in done.stderr, [line for line in done.stderr.splitlines() if "Uncaught" in line]
        assert ":ERROR:CONSOLE" not in done.stderr
        texts[name] = visible_text(done.stdout)
    # the patient's results are listed by their labels (workflow/rules/figures.smk, overlap.smk, expansion.smk)
    for label in (
        "clone overlap heatmap",
        "expansion scatter",
        "clone tracking",
        "diversity over time",
        "noise model",
        "flagged clones",
        "sample overlap",
    ):
        assert label in texts["listing"], label
    assert "How to read it" in texts["caption"] and "Blood clone frequencies of patient P01" in texts["caption"]
    screenshot = tmp_path / "report.png"
    done = subprocess.run(
        [
            *chromium_args(binary, tmp_path / "profile-shot"),
            "--window-size=1400,900",
            f"--screenshot={screenshot}",
            (run / "results" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and "Uncaught" not in done.stderr, done.stderr[-2000:]
    assert non_blank_png(screenshot)


def test_report_with_a_stylesheet_renders_offline_with_the_style_applied(run, tmp_path):
    """README: `--report-stylesheet my.css` restyles the report, which still opens offline: every host is
    unresolvable in this browser (chromium_args), the app renders without errors and the stylesheet's rule is
    in effect (the body's computed colour, written into the page by a script after load)."""
    binary = find_or_install_chromium()
    if binary is None:
        pytest.skip(
            "chromium not found: install it (apt-get install -y --no-install-recommends chromium); "
            "with CI set and as root this test installs it itself"
        )
    css = tmp_path / "my.css"
    css.write_text("body { background-color: rgb(1, 2, 3) !important; }\n")
    styled = tmp_path / "styled.html"
    done = subprocess.run(
        [
            str(readme_python()),
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(run.parent / "run.yaml"),
            "--report",
            str(styled),
            "--report-stylesheet",
            str(css),
        ],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    html = styled.read_text()
    probe = (
        "<script>window.addEventListener('load', function () { setTimeout(function () {"
        "document.body.setAttribute('data-probe', getComputedStyle(document.body).backgroundColor);"
        "}, 300); });</script>"
    )
    end = html.rfind("</body>")
    page = tmp_path / "probe.html"
    page.write_text(html[:end] + probe + html[end:])
    shown = subprocess.run(
        [*chromium_args(binary, tmp_path / "profile"), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "Uncaught" not in shown.stderr and ":ERROR:CONSOLE" not in shown.stderr
    assert 'data-probe="rgb(1, 2, 3)"' in shown.stdout
    assert "Patients" in visible_text(shown.stdout)


def test_tcrtrack_run_passes_report_to_snakemake(run, tmp_path):
    """README: without a checkout (or without retyping the run's options), `tcrtrack run -- --report FILE` builds
    the report of the run folder with the run's own Snakefile, config and sheet."""
    out = tmp_path / "via_tcrtrack.html"
    done = subprocess.run(
        [
            str(readme_python()),
            "-m",
            "tcrtrack.cli",
            "run",
            "--configfile",
            str(run.parent / "run.yaml"),
            "--outdir",
            str(run),
            "--",
            "--report",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    html = out.read_text()
    assert "results/patients/P01/figures/expansion_scatter.png" in html and "P02" in html
