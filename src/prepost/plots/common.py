"""What every plot shares: colours, the headless deterministic canvas, atomic saving, and the
paired slope panels drawn for genes (plots.de) and for set scores (plots.enrich).

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas, never through
pyplot: no global backend is switched (so importing this module cannot disturb a session that
already uses pyplot with another backend), no figure is left open, and no display is needed.
Each figure is drawn inside matplotlib's ``default`` style so a user's matplotlibrc cannot change
the output, and saved without dates or software stamps (PNG ``Software``, SVG/PDF dates; SVG ids
from a fixed ``svg.hashsalt``), so a rerun that changes nothing changes no byte. Files are written
to a temporary name and renamed (``prepost.files.atomic_path``); the format follows the
destination's suffix (.png, .svg or .pdf).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections import OrderedDict
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from prepost.files import atomic_path


# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
UP, DOWN, NS = "#D55E00", "#0072B2", "#BBBBBB"


RESPONSE_COLOURS = {"responder": "#009E73", "non_responder": "#CC79A7", "unknown": "#999999"}


RESPONSE_LABELS = {"responder": "responder", "non_responder": "non-responder", "unknown": "unknown"}


DPI = 150
# Every axes title is placed at y = 1.0 explicitly: left to matplotlib (y None) the title is
# placed above whatever the axes shows over its top, which costs every tick of the axes at each
# save (a fifth of a 16-panel slope figure's time); no prepost axes draws ticks or labels above
# it, so matplotlib's own placement is y = 1.0 as well (measured: the demo's plots, same pixels).
TITLE_Y = 1.0


# Slope plot geometry, in inches (documented so a caller can predict the image size).
PANEL_W, PANEL_H, SLOPE_MAX_COLS = 2.4, 2.6, 4


SLOPE_EXTRA_W, SLOPE_EXTRA_H = 0.4, 1.0


# Fixed margins and gaps of the slope grid, in inches (a computed layout: matplotlib's
# constrained layout measured every tick label of every panel, most of the plot's time).
SLOPE_LEFT, SLOPE_RIGHT, SLOPE_TOP, SLOPE_BOTTOM = 0.75, 0.15, 0.7, 0.9


SLOPE_GAP_W, SLOPE_GAP_H = 0.5, 0.9


_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


def format_of(dest: str | os.PathLike) -> str:
    suffix = Path(dest).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(
            f"plot destination {str(dest)!r}: suffix {suffix or '(none)'!r} is not a supported "
            f"format; expected one of {', '.join(_FORMATS)}"
        )
    return _FORMATS[suffix]


def new_figure(width: float, height: float, dpi: int, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)  # explicit Agg canvas: no pyplot, no global backend switch
    return fig


# Margins of a one-axes plot, in inches (left: y tick labels and label; bottom: x tick labels
# and label; top: a title line).
AXES_LEFT, AXES_RIGHT, AXES_TOP, AXES_BOTTOM = 0.8, 0.2, 0.4, 0.6


def single_axes(width: float, height: float, dpi: int):
    """A figure with one axes at fixed margins (AXES_*): the layout the constrained engine
    found for these plots, without its measuring every tick label at each save (two thirds
    of a log-axes plot's time). Returns (figure, axes)."""
    fig = new_figure(width, height, dpi, layout=None)
    ax = fig.add_axes((AXES_LEFT / width, AXES_BOTTOM / height,
                       1 - (AXES_LEFT + AXES_RIGHT) / width, 1 - (AXES_TOP + AXES_BOTTOM) / height))
    return fig, ax


# zlib level of the PNGs: 3 encodes a third faster than Pillow's default 6 for 0-12% more
# bytes (measured on the demo's slope, volcano and running-score plots; the report re-encodes
# its inlined plots as WebP anyway)
PNG_COMPRESS_LEVEL = 3


def save(fig: Figure, dest: str | os.PathLike, dpi: int) -> None:
    """Save deterministically: explicit format, no timestamps, fixed SVG id salt, atomic rename.
    A PNG is drawn on the figure's canvas at ``dpi`` and written by _write_png."""
    fmt = format_of(dest)
    if fmt == "png":
        if fig.dpi != dpi:
            fig.set_dpi(dpi)  # as savefig(dpi=...) does for its draw
        fig.canvas.draw()
        _write_png(fig, dest, dpi)
        return
    with matplotlib.rc_context({"svg.hashsalt": "prepost", "pdf.compression": 6}):
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])


def _write_png(fig: Figure, dest, dpi: int) -> None:
    """The PNG of the pixels the canvas holds, written as savefig writes them (Pillow, the dpi
    in pHYs, no text chunk, PNG_COMPRESS_LEVEL) but as RGB when every pixel is opaque
    (prepost's figures are white): the same pixels with a fifth less to filter and compress
    than savefig's RGBA (2.26 -> 1.89 s for the demo's 109 plots, 11% fewer bytes)."""
    from PIL import Image, PngImagePlugin

    rgba = np.asarray(fig.canvas.buffer_rgba())
    image = Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1)
    if (rgba[..., 3] == 255).all():
        image = image.convert("RGB")
    with atomic_path(dest) as tmp:
        image.save(tmp, format="png", pnginfo=PngImagePlugin.PngInfo(), dpi=(dpi, dpi),
                   compress_level=PNG_COMPRESS_LEVEL)


def default_style(func):
    """Draw inside matplotlib's ``default`` style, so a user's matplotlibrc or an rc change made
    by the calling session cannot alter the bytes written (backend keys are not touched)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.style.context("default"):
            return func(*args, **kwargs)

    return wrapper


def fmt_p(p: float) -> str:
    return "NA" if not np.isfinite(p) else f"{p:.2g}"


def signed(x: float, fmt: str = "+.2f") -> str:
    return f"{x:{fmt}}".replace("-", "−")


def slope_panels(fig: Figure, names: list[str], labels: list[str], pre: np.ndarray,
                  post: np.ndarray, response: pd.Series, ylabel: str,
                  empty_text: str, title_size: float = 8.5) -> tuple[np.ndarray, np.ndarray]:
    """Draw slope panels (rows of ``pre``/``post`` = panels, columns = patients) in the style
    of ``slope_plot``; returns lines per panel and mean within-patient change."""
    ok = np.isfinite(pre) & np.isfinite(post)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore"):
        delta = np.where(ok, post - pre, 0.0)
        mean_change = np.where(n > 0, delta.sum(axis=1) / np.maximum(n, 1), np.nan)
        mean_pre = np.where(n > 0, np.where(ok, pre, 0).sum(axis=1) / np.maximum(n, 1), np.nan)
    mean_post = mean_pre + mean_change
    n_panels = max(len(names), 1)
    cols = min(n_panels, SLOPE_MAX_COLS)
    rows = math.ceil(n_panels / cols)
    width, height = SLOPE_EXTRA_W + PANEL_W * cols, SLOPE_EXTRA_H + PANEL_H * rows
    fig.set_size_inches(width, height)
    fig.set_layout_engine("none")
    ax_w = (width - SLOPE_LEFT - SLOPE_RIGHT - (cols - 1) * SLOPE_GAP_W) / cols
    ax_h = (height - SLOPE_TOP - SLOPE_BOTTOM - (rows - 1) * SLOPE_GAP_H) / rows
    colours = response.map(RESPONSE_COLOURS).to_numpy()
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={
        "left": SLOPE_LEFT / width, "right": 1 - SLOPE_RIGHT / width,
        "bottom": SLOPE_BOTTOM / height, "top": 1 - SLOPE_TOP / height,
        "wspace": SLOPE_GAP_W / ax_w, "hspace": SLOPE_GAP_H / ax_h})
    for k, ax in enumerate(axes.ravel()):
        if k >= len(names):
            ax.set_axis_off()
            continue
        j = np.flatnonzero(ok[k])
        segs = np.stack([np.zeros(j.size), pre[k, j], np.ones(j.size), post[k, j]], axis=1)
        ax.add_collection(LineCollection(segs.reshape(-1, 2, 2), colors=colours[j], lw=0.9,
                                         alpha=0.75, zorder=2), autolim=True)
        ax.scatter(np.repeat([0.0, 1.0], j.size), np.concatenate([pre[k, j], post[k, j]]),
                   c=np.concatenate([colours[j], colours[j]]), s=6, linewidths=0, zorder=2)
        if n[k]:
            ax.plot([0, 1], [mean_pre[k], mean_post[k]], color="black", lw=2.2, zorder=3)
        ax.set_xticks([0, 1], ["pre", "post"])
        ax.set_xlim(-0.25, 1.25)
        ax.set_title(labels[k], fontsize=title_size, fontweight="bold", y=TITLE_Y)
        ax.set_xlabel(f"mean post − pre {signed(mean_change[k])}  (n = {n[k]})", fontsize=7)
        ax.margins(y=0.08)
        ax.tick_params(labelsize=7)
        if k % cols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
    if not names:
        axes[0, 0].text(0.5, 0.5, empty_text, ha="center", va="center",
                        transform=axes[0, 0].transAxes, fontsize=9)
    shown = [r for r in RESPONSE_COLOURS if (response == r).any()]
    handles = [Line2D([], [], color=RESPONSE_COLOURS[r], lw=1.5, label=RESPONSE_LABELS[r]) for r in shown]
    handles.append(Line2D([], [], color="black", lw=2.2, label="mean"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.14 / height),
               ncols=len(handles), fontsize=7, frameon=False)
    return n, mean_change


# Slope grids drawn in this process, for the next figure with the same panels: a dataset's
# contrasts over the same pairs (post_vs_pre, the interaction, the pre-treatment comparison of
# complete pairs) draw the same genes of the same patients, and only the title differs. Key ->
# (figure with its title hidden, its title, the canvas without the title, lines, mean change);
# the oldest is dropped beyond SLOPE_REUSE figures (about 10 MB of pixels each at 16 panels).
_SLOPE_DRAWN: OrderedDict[str, tuple] = OrderedDict()
SLOPE_REUSE = 4


def _slope_key(names, labels, pre, post, pairs, ylabel, missing, missing_note, empty_text, dpi,
               title_size) -> str:
    """Everything a slope grid's pixels depend on except the title: the values bit for bit,
    the patients and their response, the texts, and matplotlib's settings at draw time."""
    h = hashlib.sha256()
    for part in (names, labels, pairs.index.astype(str).tolist(),
                 pairs["response"].astype(str).tolist(), ylabel, missing, missing_note,
                 empty_text, dpi, title_size, pre.shape, sorted(matplotlib.rcParams.items())):
        h.update(repr(part).encode())
        h.update(b"\0")
    for a in (pre, post):
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()


def slope_figure(dest, title: str, names: list[str], labels: list[str], pre: np.ndarray,
                 post: np.ndarray, pairs: pd.DataFrame, ylabel: str, *, kind: str,
                 missing: list[str], missing_note: str, empty_text: str, dpi: int,
                 title_size: float = 8.5) -> dict:
    """A whole paired slope figure (genes or set scores): panels, the note naming what is not
    drawn, the deterministic save, and the summary both callers return (``kind`` names its
    first key: "genes" or "sets").

    A PNG whose panels this process drew before (same values, patients and texts: see
    _slope_key) is not drawn again: the kept canvas without its title gets the new title drawn
    on it, which gives the pixels of a full draw (the title overlaps no other artist; tested
    byte for byte against a full draw). 4 of the demo's 12 slope plots are such repeats."""
    key = None
    if format_of(dest) == "png":
        key = _slope_key(names, labels, pre, post, pairs, ylabel, missing, missing_note,
                         empty_text, dpi, title_size)
    drawn = _SLOPE_DRAWN.get(key) if key else None
    if drawn is None:
        fig = new_figure(1.0, 1.0, dpi, layout=None)  # slope_panels sets the size and the layout
        head = fig.suptitle(title, fontsize=10)
        n, mean_change = slope_panels(fig, names, labels, pre, post, pairs["response"], ylabel,
                                      empty_text, title_size=title_size)
        if missing:
            fig.text(0.01, 0.005, f"{missing_note}: " + ", ".join(missing), fontsize=6.5,
                     color="0.3", ha="left", va="bottom")
        if key is None:
            save(fig, dest, dpi)
        else:
            head.set_visible(False)
            fig.canvas.draw()
            drawn = (fig, head, fig.canvas.copy_from_bbox(fig.bbox), n, mean_change)
            _SLOPE_DRAWN[key] = drawn
            while len(_SLOPE_DRAWN) > SLOPE_REUSE:
                _SLOPE_DRAWN.popitem(last=False)
    if drawn is not None:
        fig, head, background, n, mean_change = drawn
        _SLOPE_DRAWN.move_to_end(key)
        fig.canvas.restore_region(background)
        head.set_text(title)
        head.set_visible(True)
        fig.draw_artist(head)
        head.set_visible(False)
        _write_png(fig, dest, dpi)
    return {
        kind: names,
        "missing": missing,
        "n_pairs": int(len(pairs)),
        "lines": {x: int(n[k]) for k, x in enumerate(names)},
        "mean_change": {x: float(mean_change[k]) for k, x in enumerate(names)},
        "patients": pairs.index.astype(str).tolist(),
    }
