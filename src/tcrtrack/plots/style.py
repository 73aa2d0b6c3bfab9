"""Shared look of every figure: colour-blind-safe palettes, labels, log axes with a zero band, and
deterministic atomic PNG (+ PDF on request) output."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting is chatty at INFO

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: E402

from tcrtrack.io import atomic_write  # noqa: E402

# Okabe & Ito (2008) colour-universal-design palette (Wong 2011, Nat Methods 8:441).
OKABE_ITO: dict[str, str] = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
COMPARTMENT_COLOURS: dict[str, str] = {
    "blood": OKABE_ITO["vermillion"],
    "tumor": OKABE_ITO["blue"],
    "product": OKABE_ITO["green"],
}
# Colour families per compartment, so several fits of blood and of tumour are told apart at a glance.
FIT_FAMILIES: dict[str, tuple[str, ...]] = {
    "blood": (OKABE_ITO["vermillion"], OKABE_ITO["orange"], OKABE_ITO["purple"], "#882255"),
    "tumor": (OKABE_ITO["blue"], OKABE_ITO["sky_blue"], OKABE_ITO["green"], "#332288"),
}
COMPARTMENT_NAMES: dict[str, str] = {"blood": "blood", "tumor": "tumour", "product": "infused product"}
# Distinct colours for individual clones or groups, in order (Okabe-Ito without black and yellow, then
# Tol's muted scheme; Tol 2021, SRON/EPS/TN/09-002).
QUALITATIVE: tuple[str, ...] = (
    "#D55E00",
    "#0072B2",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#332288",
    "#117733",
    "#882255",
    "#999933",
    "#AA4499",
    "#44AA99",
)
GREY = "#9A9A9A"
LIGHT_GREY = "#C8C8C8"
ZERO_BAND = "#EFEFEF"
SEQUENTIAL_CMAP = "viridis"  # perceptually uniform, colour-blind safe (van der Walt & Smith 2015)

RC = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "pdf.fonttype": 42,
    "svg.hashsalt": "tcrtrack",
    "font.family": "DejaVu Sans",
    "axes.titlelocation": "left",
}
ZERO_GAP = 0.9  # decades between the zero band and the smallest positive value
PDF_METADATA = {"Creator": "tcrtrack", "Producer": None, "CreationDate": None}
PNG_METADATA = {"Software": None}


def new_figure(width: float, height: float, **subplots: object) -> tuple[Figure, np.ndarray]:
    """A figure with the house style and a 2-D array of axes (``plt.subplots(..., squeeze=False)``)."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(figsize=(width, height), squeeze=False, **subplots)
    fig.set_layout_engine("constrained")
    for ax in axes.flat:
        _apply_axes_style(ax)
    return fig, axes


def _apply_axes_style(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.title.set_fontsize(RC["axes.titlesize"])
    ax.xaxis.label.set_fontsize(RC["axes.labelsize"])
    ax.yaxis.label.set_fontsize(RC["axes.labelsize"])
    ax.tick_params(labelsize=RC["xtick.labelsize"])


def save_figure(fig: Figure, png: Path | str, *, pdf: bool | None = None) -> tuple[Path, Path | None]:
    """Write ``fig`` to ``png`` (150 dpi) and, with ``pdf``, to the PDF next to it, atomically and reproducibly
    (no timestamps: the same data give byte-identical files); closes the figure.

    Parameters
    ----------
    fig
        The figure.
    png
        Path of the PNG; the PDF is the same path with ``.pdf``.
    pdf
        Also write the PDF; ``None``: :data:`tcrtrack.plots.WRITE_PDF` (a workflow job: its rule declares one,
        config ``report.pdf``).

    Returns
    -------
    tuple
        The PNG's path and the PDF's (``None`` when not written).
    """
    from tcrtrack import plots

    png = Path(png)
    pdf_path = png.with_suffix(".pdf") if (plots.WRITE_PDF if pdf is None else pdf) else None
    with plt.rc_context(RC):
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=RC["savefig.dpi"], metadata=PNG_METADATA))
        if pdf_path is not None:
            atomic_write(pdf_path, lambda tmp: fig.savefig(tmp, format="pdf", metadata=PDF_METADATA))
    plt.close(fig)
    return png, pdf_path


def compartment_name(compartment: str) -> str:
    return COMPARTMENT_NAMES.get(compartment, compartment)


def day_label(day: int) -> str:
    """``day 14``, ``day −7`` (with a true minus sign)."""
    return f"day {day}".replace("-", "\u2212")


def days_text(days: Iterable[int]) -> str:
    return ", ".join(str(d).replace("-", "\u2212") for d in sorted(set(days)))


def sample_label(compartment: str, day: int, replicate: int, *, n_replicates: int = 1) -> str:
    """``blood d0 r2`` (the replicate only when the timepoint has several)."""
    text = f"{compartment_name(compartment)} d{day}".replace("-", "\u2212")
    return f"{text} r{replicate}" if n_replicates > 1 else text


def decade_formatter(zero_at: float | None) -> FuncFormatter:
    """Tick labels ``10⁻⁴`` at integer decades, ``0`` at the zero band."""

    def label(value: float, _pos: int) -> str:
        if zero_at is not None and abs(value - zero_at) < 1e-9:
            return "0"
        if abs(value - round(value)) < 1e-9:
            return f"$10^{{{int(round(value))}}}$"
        return ""

    return FuncFormatter(label)


def log_limits(values: Sequence[float] | np.ndarray, *, pad: float = 0.15) -> tuple[int, int]:
    """Integer decades bracketing the positive ``values`` (``-5, -1`` for 1e-5..0.05)."""
    positive = np.asarray(values, dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if positive.size == 0:
        return -5, 0
    low = math.floor(math.log10(positive.min()) - pad)
    high = math.ceil(math.log10(positive.max()) + pad)
    return low, max(high, low + 1)


def to_log_position(values: np.ndarray, *, zero_at: float) -> np.ndarray:
    """``log10(value)``, with zeros (and negatives) placed at ``zero_at`` (the zero band)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(values)
    out[~(values > 0)] = zero_at
    return out


def log_zero_axis(
    ax: Axes, *, axis: str, low: int, high: int, zero_band: bool = True, label: str | None = None
) -> float | None:
    """Make ``axis`` (``"x"`` or ``"y"``) a log10 axis drawn in log units from ``10**low`` to ``10**high``,
    with a shaded band below it where zeros are drawn (labelled ``0``) and a break mark. Returns the
    position of the zero band (``None`` without one)."""
    zero_at = low - ZERO_GAP if zero_band else None
    start = (zero_at - 0.45) if zero_band else low
    ticks = list(range(low, high + 1))
    minor = [
        d + math.log10(m) for d in range(low - 1, high + 1) for m in range(2, 10) if low <= d + math.log10(m) <= high
    ]
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xlim if axis == "x" else ax.set_ylim)(start, high)
    target.set_major_locator(FixedLocator(([zero_at] if zero_band else []) + ticks))
    target.set_minor_locator(FixedLocator(minor))
    target.set_major_formatter(decade_formatter(zero_at))
    if zero_band:
        span = (start, zero_at + 0.45)
        (ax.axvspan if axis == "x" else ax.axhspan)(*span, color=ZERO_BAND, zorder=0, lw=0)
        brk = zero_at + 0.45
        kw = {
            "transform": ax.get_xaxis_transform() if axis == "x" else ax.get_yaxis_transform(),
            "color": "#666666",
            "lw": 0.8,
            "clip_on": False,
            "zorder": 5,
        }
        if axis == "x":
            for dx in (-0.05, 0.05):
                ax.plot([brk + dx - 0.06, brk + dx + 0.06], [-0.02, 0.02], **kw)
        else:
            for dy in (-0.05, 0.05):
                ax.plot([-0.02, 0.02], [brk + dy - 0.06, brk + dy + 0.06], **kw)
    if label:
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)
    return zero_at


def colour_cycle(n: int) -> list[str]:
    """``n`` distinct colour-blind-safe colours (cycled beyond 12)."""
    return [QUALITATIVE[i % len(QUALITATIVE)] for i in range(n)]


def message_axes(ax: Axes, text: str) -> None:
    """An empty panel that says why (``no flagged clones``)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
