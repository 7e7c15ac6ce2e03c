"""The frame of every static figure: a grid of panels with room, fixed in inches, for the title, the legend on
the right and the caption box below; and the files it is saved to.

Fixed margins instead of ``tight_layout`` or ``bbox_inches="tight"``: both draw the whole figure once more
just to measure it, which was most of the report's time. PNGs are saved with a 64-colour palette (quantised
by Pillow: about a quarter of the bytes, and faster to write than full colour); SVG only on request.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullLocator
from PIL import Image

DPI = 100
COLOURS = 64                # PNG palette: the lines' colours and their anti-aliased edges (no visible banding)
FONT_IN = 8 / 72            # one 8-point character is about 0.55 of this wide
LINE_IN = 0.16              # one 8-point text line
TITLE_IN = 0.75             # two-line title above the panels
LEFT_IN, BOTTOM_IN = 0.85, 0.6   # tick labels and axis labels
MAX_NOTE_LINES = 8


def legend_width(names: list[str], rows: int) -> tuple[float, int]:
    """(inches, columns) for a legend of ``names`` with at most ``rows`` entries per column."""
    if not names:
        return 0.0, 1
    cols = max(1, math.ceil(len(names) / max(rows, 1)))
    per_col = 0.55 * FONT_IN * max(len(n) for n in names) + 0.55
    return cols * per_col + 0.15, cols


def grid(rows: int, cols: int, *, panel: tuple[float, float] = (3.8, 3.0), legend: list[str] = (),
         notes: list[str] = (), sharex: bool | str = False, sharey: bool = True, gap: tuple[float, float] = (0.3, 0.9),
         left: float = LEFT_IN, legend_rows: int | None = None):
    """A figure of ``rows`` x ``cols`` panels of ``panel`` inches, with room for a legend holding ``legend`` and
    a caption box holding ``notes`` (``legend_rows``: entries per legend column, default as many as the grid
    is tall). Returns (figure, axes array, where the legend goes, caption text)."""
    grid_w = cols * panel[0] + (cols - 1) * gap[0]
    grid_h = rows * panel[1] + (rows - 1) * gap[1]
    leg_w, leg_cols = legend_width(list(legend), legend_rows or int(grid_h / LINE_IN / 1.3))
    width = left + grid_w + leg_w + 0.2
    caption = _wrap(list(notes), width)
    cap_h = (caption.count("\n") + 1) * LINE_IN + 0.25 if caption else 0.0
    height = TITLE_IN + grid_h + BOTTOM_IN + cap_h
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, sharex=sharex, sharey=sharey)
    fig.subplots_adjust(left=left / width, right=(left + grid_w) / width, top=1 - TITLE_IN / height,
                        bottom=(BOTTOM_IN + cap_h) / height, wspace=gap[0] / panel[0], hspace=gap[1] / panel[1])
    if caption:
        fig.text(0.1 / width, (cap_h - 0.1) / height, caption, ha="left", va="top", fontsize=8,
                 bbox={"boxstyle": "round,pad=0.4", "facecolor": "#f6f6f6", "edgecolor": "#cccccc"})
    anchor = ((left + grid_w + 0.1) / width, 1 - TITLE_IN / height)
    return fig, axes, {"loc": "upper left", "bbox_to_anchor": anchor, "ncol": leg_cols, "frameon": False,
                       "fontsize": 8, "borderaxespad": 0.0}


def _wrap(lines: list[str], width_in: float) -> str:
    if len(lines) > MAX_NOTE_LINES:
        lines = lines[: MAX_NOTE_LINES - 1] + [f"... and {len(lines) - MAX_NOTE_LINES + 1} more (see summary.md)"]
    chars = max(60, int((width_in - 0.4) / (0.55 * FONT_IN)))
    return "\n".join(textwrap.fill(line, chars, subsequent_indent="    ") for line in lines if line)


SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def power_label(value: float, _pos=None) -> str:
    """A log-axis tick as plain text: 10⁻⁸ (matplotlib's default labels are mathtext, whose parsing was a
    large part of drawing a figure); 1, 10, 100 and 1000 as numbers; 0 (a symlog axis's origin) as 0."""
    if value == 0:
        return "0"
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) > 1e-9:
        return f"{value:g}"
    e = int(round(exponent))
    return f"{value:.0f}" if 0 <= e <= 3 else ("-" if value < 0 else "") + "10" + str(e).translate(SUPERSCRIPT)


def log_axes(ax, x: bool = True, y: bool = True) -> None:
    """Major ticks only, labelled as plain text (``power_label``): minor ticks on log axes are most of the
    tick objects a figure builds and draws, and the grid is drawn at major ticks anyway."""
    for axis, on in ((ax.xaxis, x), (ax.yaxis, y)):
        if on:
            axis.set_minor_locator(NullLocator())
            axis.set_major_formatter(FuncFormatter(power_label))


def title(fig, text: str) -> None:
    fig.suptitle(text, fontsize=12, y=1 - 0.08 / fig.get_figheight(), va="top")


def hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)


def save(fig, stem: Path, svg: bool = False) -> list[Path]:
    """``stem``.png (``COLOURS`` colours) and, with ``svg``, ``stem``.svg; closes the figure."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.set_dpi(DPI)
    fig.canvas.draw()   # the Agg pixels themselves: no full-colour PNG to encode and decode again
    rgba = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    png = stem.with_suffix(".png")
    rgba.convert("RGB").quantize(COLOURS, method=Image.Quantize.FASTOCTREE).save(png, compress_level=6,
                                                                                  dpi=(DPI, DPI))
    paths = [png]
    if svg:
        fig.savefig(stem.with_suffix(".svg"))
        paths.append(stem.with_suffix(".svg"))
    plt.close(fig)
    return paths
