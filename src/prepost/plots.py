"""Volcano, MA and paired slope plots, rendered headless and byte-identical run to run.

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas, never through
pyplot: no global backend is switched (so importing this module cannot disturb a session that
already uses pyplot with another backend), no figure is left open, and no display is needed.
Each figure is drawn inside matplotlib's ``default`` style so a user's matplotlibrc cannot change
the output, and saved without dates or software stamps (PNG ``Software``, SVG/PDF dates; SVG ids
from a fixed ``svg.hashsalt``), so a rerun that changes nothing changes no byte. Files are written
to a temporary name and renamed (``prepost.io.atomic_path``); the format follows the
destination's suffix (.png, .svg or .pdf).

Every function returns a small summary dict (counts, labelled or missing genes) so a rule can log
what was drawn and tests can check it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from prepost.io import atomic_path

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
UP, DOWN, NS = "#D55E00", "#0072B2", "#BBBBBB"
RESPONSE_COLOURS = {"responder": "#009E73", "non_responder": "#CC79A7", "unknown": "#999999"}
RESPONSE_LABELS = {"responder": "responder", "non_responder": "non-responder", "unknown": "unknown"}
DPI = 150
# Slope plot geometry, in inches (documented so a caller can predict the image size).
PANEL_W, PANEL_H, SLOPE_MAX_COLS = 2.4, 2.6, 4
SLOPE_EXTRA_W, SLOPE_EXTRA_H = 0.4, 1.0

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}
DE_REQUIRED = ("gene", "log2fc", "pvalue", "padj")


def _format_of(dest: str | os.PathLike) -> str:
    suffix = Path(dest).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(
            f"plot destination {str(dest)!r}: suffix {suffix or '(none)'!r} is not a supported "
            f"format; expected one of {', '.join(_FORMATS)}"
        )
    return _FORMATS[suffix]


def _new_figure(width: float, height: float, dpi: int) -> Figure:
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # explicit Agg canvas: no pyplot, no global backend switch
    return fig


def _save(fig: Figure, dest: str | os.PathLike, dpi: int) -> None:
    """Save deterministically: explicit format, no timestamps, fixed SVG id salt, atomic rename."""
    fmt = _format_of(dest)
    with matplotlib.rc_context({"svg.hashsalt": "prepost", "pdf.compression": 6}):
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])


def _check_de(de: pd.DataFrame, required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in de.columns]
    if missing:
        raise ValueError(
            f"{what}: DE table lacks column(s) {', '.join(missing)}; expected the columns "
            f"gene, mean_expr, log2fc, lfc_se, stat, pvalue, padj (found {', '.join(map(str, de.columns))})"
        )


def _classify(de: pd.DataFrame, alpha: float) -> pd.Series:
    """'up' / 'down' / 'ns': significant means padj < alpha (NaN padj, e.g. filtered, is ns)."""
    sig = de["padj"].astype(float).lt(alpha)
    lfc = de["log2fc"].astype(float)
    return pd.Series(
        np.select([sig & (lfc > 0), sig & (lfc < 0)], ["up", "down"], "ns"), index=de.index
    )


def _scatter_classes(ax, x, y, cls: pd.Series, alpha: float, highlight: pd.Series) -> None:
    """Grey background first, significant points on top; counts in the legend."""
    many = len(cls) > 5000  # rasterise big clouds so SVG/PDF stay small (PNG unaffected)
    style = {
        "ns": (NS, "not significant", 6, 0),
        "down": (DOWN, "down", 10, 1),
        "up": (UP, "up", 10, 2),
    }
    for key in ("ns", "down", "up"):
        colour, name, size, z = style[key]
        m = (cls == key).to_numpy()
        ax.scatter(
            x[m], y[m], s=size, c=colour, linewidths=0, alpha=0.8 if key != "ns" else 0.6,
            label=f"{name} ({int(m.sum())})", zorder=z + 1, rasterized=many,
        )
    h = highlight.to_numpy()
    if h.any():
        ax.scatter(
            x[h], y[h], s=28, facecolors="none", edgecolors="black", linewidths=0.8, zorder=5,
            label="genes of interest",
        )
    ax.legend(
        title=f"padj < {alpha:g}", loc="best", fontsize=7, title_fontsize=7, frameon=True,
        framealpha=0.9, markerscale=1.5,
    )


def _label_points(fig: Figure, ax, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    """Label a few points without overlapping labels: text sits beside its point, towards the
    plot's centre, and a label that would cover one placed before it (top-down) moves below it,
    with a thin leader line (a small deterministic repel over measured text boxes, no extra
    dependency)."""
    if not names:
        return
    fig.draw_without_rendering()  # settle the constrained layout to know the axes' size
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    fx = (x - x0) / (x1 - x0)
    fy = (y - y0) / (y1 - y0)
    dx = np.where(fx < 0.5, 0.03, -0.03)
    texts = [
        ax.annotate(
            name, xy=(fx[i], fy[i]), xycoords="axes fraction", xytext=(fx[i] + dx[i], fy[i]),
            textcoords="axes fraction", fontsize=6.5, ha="left" if dx[i] > 0 else "right",
            va="center", zorder=6,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.7},
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.3", "shrinkA": 0, "shrinkB": 2},
        )
        for i, name in enumerate(names)
    ]
    renderer = fig.canvas.get_renderer()
    to_axes = ax.transAxes.inverted()
    boxes = np.array([to_axes.transform(t.get_window_extent(renderer)).ravel() for t in texts])
    left, right = boxes[:, 0], boxes[:, 2]
    height = (boxes[:, 3] - boxes[:, 1]) * 1.1
    placed: list[tuple[float, float, float, float]] = []
    for i in np.argsort(-fy, kind="stable"):
        top = min(fy[i] + height[i] / 2, 1.0)
        moved = True
        while moved:  # slide down past every placed label this one would overlap
            moved = False
            for l, r, b, t in placed:
                if left[i] < r and right[i] > l and top > b and top - height[i] < t:
                    top, moved = b, True
        top = max(top, height[i])  # never below the axes (may then overlap: rare, tolerated)
        placed.append((left[i], right[i], top - height[i], top))
        texts[i].set_position((fx[i] + dx[i], top - height[i] / 2))


def _labels_for(de: pd.DataFrame, label_genes, top_n: int) -> tuple[pd.Series, list[str]]:
    """Rows to label: the top_n by p value plus any requested gene present; and the absent ones."""
    wanted = list(dict.fromkeys(label_genes or []))
    genes = de["gene"].astype(str)
    present = genes.isin(wanted)
    order = de["pvalue"].astype(float).rank(method="first", na_option="bottom")
    top = order.le(top_n) & de["pvalue"].notna()
    missing = [g for g in wanted if g not in set(genes)]
    return top | present, missing


def _prepare_de(de: pd.DataFrame, cols: tuple[str, ...], what: str) -> pd.DataFrame:
    _check_de(de, cols, what)
    keep = de.dropna(subset=[c for c in cols if c != "padj"]).reset_index(drop=True)
    return keep


def volcano(
    de: pd.DataFrame,
    dest: str | os.PathLike,
    title: str,
    alpha: float = 0.05,
    label_genes: Iterable[str] | None = None,
    top_n: int = 10,
    *,
    dpi: int = DPI,
) -> dict:
    """Volcano plot: log2 fold change against -log10 p, coloured by padj < alpha and direction.

    Labels the ``top_n`` genes by p value and every gene of ``label_genes`` present (ringed).
    Genes with NaN log2fc or p (e.g. all-zero counts) are not drawn; p = 0 is drawn at the
    smallest positive p of the table (count in the summary as ``n_p_zero``). The dashed line is
    the largest p value still significant after BH adjustment. Image: 6 x 5 in at ``dpi``.
    """
    what = f"volcano {str(dest)!r}"
    _format_of(dest)
    d = _prepare_de(de, DE_REQUIRED, what)
    cls = _classify(d, alpha)
    p = d["pvalue"].astype(float).to_numpy()
    positive = p[p > 0]
    floor = positive.min() if positive.size else 1e-300
    n_zero = int((p <= 0).sum())
    x = d["log2fc"].astype(float).to_numpy()
    y = -np.log10(np.maximum(p, floor))
    label_mask, missing = _labels_for(d, label_genes, top_n)
    highlight = d["gene"].astype(str).isin(list(label_genes or []))

    fig = _new_figure(6, 5, dpi)
    ax = fig.add_subplot()
    _scatter_classes(ax, x, y, cls, alpha, highlight)
    sig = (cls != "ns").to_numpy()
    if sig.any():
        ax.axhline(y[sig].min(), ls="--", lw=0.6, color="0.4", zorder=0)
        ax.annotate(f"padj = {alpha:g}", xy=(1, y[sig].min()), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize=6, color="0.3")
    ax.axvline(0, lw=0.6, color="0.6", zorder=0)
    lim = max(float(np.abs(x).max()) if x.size else 1.0, 0.5) * 1.08
    ax.set_xlim(-lim, lim)
    ax.set_ylim(0, (float(y.max()) if y.size else 1.0) * 1.06 + 0.1)
    ax.set_xlabel("log2 fold change")
    ax.set_ylabel("-log10 p value")
    ax.set_title(title, fontsize=10)
    if n_zero:
        ax.text(0.01, 0.99, f"{n_zero} gene(s) with p = 0 drawn at the top", transform=ax.transAxes,
                fontsize=6, va="top", color="0.3")
    lm = label_mask.to_numpy()
    names = d["gene"].astype(str).to_numpy()[lm].tolist()
    _label_points(fig, ax, x[lm], y[lm], names)
    _save(fig, dest, dpi)
    return {
        "n_up": int((cls == "up").sum()), "n_down": int((cls == "down").sum()),
        "n_ns": int((cls == "ns").sum()), "n_dropped": int(len(de) - len(d)),
        "n_p_zero": n_zero, "labelled": names, "missing_label_genes": missing,
    }


def ma_plot(
    de: pd.DataFrame,
    dest: str | os.PathLike,
    title: str,
    alpha: float = 0.05,
    log_x: bool = False,
    label_genes: Iterable[str] | None = None,
    top_n: int = 0,
    *,
    dpi: int = DPI,
) -> dict:
    """MA plot: log2 fold change against mean expression, coloured as the volcano.

    ``log_x=True`` for counts: x is log10(baseMean + 1) (baseMean spans orders of magnitude);
    ``log_x=False`` for arrays, whose AveExpr is already log2. Image: 6 x 5 in at ``dpi``.
    """
    what = f"MA plot {str(dest)!r}"
    _format_of(dest)
    d = _prepare_de(de, ("gene", "mean_expr", "log2fc", "pvalue", "padj"), what)
    cls = _classify(d, alpha)
    m = d["mean_expr"].astype(float).to_numpy()
    if log_x:
        if (m < 0).any():
            raise ValueError(f"{what}: log_x=True needs mean_expr >= 0 (baseMean of counts); "
                             f"found {m.min():g}")
        x = np.log10(m + 1)
        xlabel = "log10(baseMean + 1)"
    else:
        x = m
        xlabel = "mean expression (log2)"
    y = d["log2fc"].astype(float).to_numpy()
    label_mask, missing = _labels_for(d, label_genes, top_n)
    highlight = d["gene"].astype(str).isin(list(label_genes or []))

    fig = _new_figure(6, 5, dpi)
    ax = fig.add_subplot()
    _scatter_classes(ax, x, y, cls, alpha, highlight)
    ax.axhline(0, lw=0.6, color="0.4", zorder=0)
    lim = max(float(np.abs(y).max()) if y.size else 1.0, 0.5) * 1.08
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("log2 fold change")
    ax.set_title(title, fontsize=10)
    lm = label_mask.to_numpy()
    names = d["gene"].astype(str).to_numpy()[lm].tolist()
    _label_points(fig, ax, x[lm], y[lm], names)
    _save(fig, dest, dpi)
    return {
        "n_up": int((cls == "up").sum()), "n_down": int((cls == "down").sum()),
        "n_ns": int((cls == "ns").sum()), "n_dropped": int(len(de) - len(d)),
        "labelled": names, "missing_label_genes": missing,
    }


def _complete_pairs(expr: pd.DataFrame, sheet: pd.DataFrame, what: str) -> pd.DataFrame:
    """One row per patient with both a pre and a post sample present in ``expr``:
    columns pre, post (sample ids) and response. ``in_pair`` (bool or "True"/"False") is honoured."""
    s = sheet.copy()
    if "sample" in s.columns:
        s = s.set_index("sample")
    need = [c for c in ("patient", "timepoint") if c not in s.columns]
    if need:
        raise ValueError(f"{what}: sample sheet lacks column(s) {', '.join(need)}; expected "
                         "sample, patient, timepoint, response, in_pair")
    s.index = s.index.astype(str)
    if "in_pair" in s.columns:
        s = s[s["in_pair"].astype(str).str.lower().isin(["true", "1"])]
    s = s[s["timepoint"].isin(["pre", "post"]) & s.index.isin(expr.columns.astype(str))]
    dup = s.duplicated(["patient", "timepoint"], keep=False)
    if dup.any():
        bad = s[dup].sort_values(["patient", "timepoint"])
        raise ValueError(
            f"{what}: patient(s) {', '.join(sorted(bad['patient'].astype(str).unique()))} have "
            "more than one pre or post sample; expected one of each (see pairs.tsv)"
        )
    wide = s.reset_index().pivot(index="patient", columns="timepoint", values=s.index.name or "index")
    wide = wide.reindex(columns=["pre", "post"]).dropna()
    resp = s["response"] if "response" in s.columns else pd.Series(pd.NA, index=s.index)
    per_patient = (
        pd.DataFrame({"patient": s["patient"], "response": resp})
        .dropna().groupby("patient")["response"].first()
    )
    wide["response"] = (
        wide.index.to_series().map(per_patient).fillna("unknown").astype(str)
        .where(lambda r: r.isin(list(RESPONSE_COLOURS)), "unknown")
    )
    return wide.sort_index()


def _normalised_log2(expr: pd.DataFrame, samples: list[str], size_factors, what: str) -> pd.DataFrame:
    """log2(normalised count + 1). Size factors: the given Series (e.g. DESeq2's median of ratios),
    else library size (column total over all genes) divided by the geometric mean of the library
    sizes of the samples drawn, which keeps normalised counts on a raw-count scale."""
    counts = expr[samples].astype(float)
    if size_factors is not None:
        sf = pd.Series(size_factors, dtype=float)
        sf.index = sf.index.astype(str)
        lacking = [s for s in samples if s not in sf.index]
        if lacking:
            raise ValueError(f"{what}: size_factors lack sample(s) {', '.join(lacking)}")
        sf = sf.reindex(samples)
    else:
        lib = counts.sum(axis=0)
        if (lib <= 0).any():
            raise ValueError(f"{what}: sample(s) {', '.join(lib.index[lib <= 0])} have no counts")
        sf = lib / np.exp(np.log(lib).mean())
    if not (np.isfinite(sf) & (sf > 0)).all():
        raise ValueError(f"{what}: size factors must be finite and > 0")
    return np.log2(counts / sf + 1)


def slope_plot(
    expr: pd.DataFrame,
    sheet: pd.DataFrame,
    genes: Iterable[str],
    dest: str | os.PathLike,
    title: str,
    values: str = "log2",
    size_factors: pd.Series | None = None,
    *,
    dpi: int = DPI,
) -> dict:
    """Paired slope plots: one panel per gene, one line per patient from pre to post.

    Only patients with both a pre and a post sample in ``expr`` (and ``in_pair`` true) are drawn;
    a patient with NaN for a gene is left out of that panel. Lines are coloured by response
    (responder / non-responder / unknown); the thick black line joins the mean pre and mean post,
    and each panel states the mean within-patient change (post - pre) and n.
    ``values="log2"`` draws ``expr`` as is (array log2 intensities); ``values="counts"`` draws
    log2(normalised count + 1), with ``size_factors`` if given, else library-size factors
    (see ``_normalised_log2``). Genes absent from ``expr`` are skipped, named in the figure and
    returned as ``missing``. Image: (0.4 + 2.4 * cols) x (1.0 + 2.6 * rows) in, at most 4 columns.
    """
    what = f"slope plot {str(dest)!r}"
    _format_of(dest)
    if values not in ("log2", "counts"):
        raise ValueError(f"{what}: values must be 'log2' or 'counts', got {values!r}")
    genes = list(dict.fromkeys(str(g) for g in genes))
    expr = expr.copy()
    expr.columns = expr.columns.astype(str)
    expr.index = expr.index.astype(str)
    pairs = _complete_pairs(expr, sheet, what)
    present = [g for g in genes if g in expr.index]
    missing = [g for g in genes if g not in expr.index]
    samples = pairs["pre"].tolist() + pairs["post"].tolist()
    if values == "counts":
        mat = _normalised_log2(expr, samples, size_factors, what).loc[present]
        ylabel = "log2(normalised count + 1)"
    else:
        mat = expr.loc[present, samples].astype(float)
        ylabel = "log2 expression"
    pre = mat[pairs["pre"].tolist()].to_numpy()  # genes x patients
    post = mat[pairs["post"].tolist()].to_numpy()
    fig = _new_figure(1.0, 1.0, dpi)  # _slope_panels sets the size from the panel count
    fig.suptitle(title, fontsize=10)
    n, mean_change = _slope_panels(fig, present, present, pre, post, pairs["response"], ylabel,
                                   "none of the genes\nis in the data", title_size=9)
    if missing:
        fig.text(0.01, 0.005, "not in data: " + ", ".join(missing), fontsize=6.5, color="0.3",
                 ha="left", va="bottom")
    _save(fig, dest, dpi)
    return {
        "genes": present,
        "missing": missing,
        "n_pairs": int(len(pairs)),
        "lines": {g: int(n[k]) for k, g in enumerate(present)},
        "mean_change": {g: float(mean_change[k]) for k, g in enumerate(present)},
        "patients": pairs.index.astype(str).tolist(),
    }


# --------------------------------------------------------------------------------------------
# Enrichment views: GSEA dot plot, running enrichment score, per-sample set-score slopes.
# --------------------------------------------------------------------------------------------

GSEA_PLOT_REQUIRED = ("set", "n_found", "nes", "padj")
SET_LABEL_CHARS = 40
# GSEA dot plot: (DOT_W) x (DOT_EXTRA_H + DOT_ROW_H * max(rows, 3)) in.
DOT_W, DOT_EXTRA_H, DOT_ROW_H = 7.0, 1.6, 0.3
# Running-score panels, in inches, at most RUN_MAX_COLS per row.
RUN_PANEL_W, RUN_PANEL_H, RUN_MAX_COLS = 4.4, 3.8, 2
RUN_EXTRA_W, RUN_EXTRA_H = 0.2, 0.5


def _default_style(func):
    """Draw inside matplotlib's ``default`` style, so a user's matplotlibrc or an rc change made
    by the calling session cannot alter the bytes written (backend keys are not touched)."""
    import functools

    import matplotlib.style

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.style.context("default"):
            return func(*args, **kwargs)

    return wrapper


def _short_set_names(names: list[str], max_chars: int = SET_LABEL_CHARS) -> tuple[list[str], str]:
    """Readable labels for gene-set names: a first token shared by all of several names (a
    collection prefix such as ``HALLMARK_`` or ``PREPOST_``) is dropped and returned, underscores
    become spaces, and labels longer than ``max_chars`` are cut with an ellipsis. Any label that
    would then be ambiguous falls back to the full name."""
    names = [str(n) for n in names]
    prefix = ""
    heads = {n.split("_", 1)[0] for n in names}
    if len(names) >= 2 and len(heads) == 1 and all("_" in n and n.split("_", 1)[1] for n in names):
        prefix = heads.pop() + "_"
    labels = []
    for n in names:
        lab = n[len(prefix):].replace("_", " ")
        if len(lab) > max_chars:
            lab = lab[: max_chars - 1].rstrip() + "…"
        labels.append(lab)
    counts = pd.Series(labels).value_counts()
    labels = [n if counts[lab] > 1 else lab for n, lab in zip(names, labels)]
    return labels, prefix


def _fmt_p(p: float) -> str:
    return "NA" if not np.isfinite(p) else f"{p:.2g}"


def _signed(x: float, fmt: str = "+.2f") -> str:
    return f"{x:{fmt}}".replace("-", "−")


@_default_style
def gsea_dotplot(
    gsea: pd.DataFrame,
    dest: str | os.PathLike,
    title: str,
    top_n: int = 20,
    alpha: float = 0.05,
    *,
    dpi: int = DPI,
) -> dict:
    """Dot plot of prerank GSEA: the ``top_n`` sets by padj, placed by NES.

    Ranking is by padj, then p value, then |NES| (then name, so ties are stable); the drawn rows
    are ordered by NES, most up at the top. Dot area grows with ``n_found`` (genes of the set in
    the ranking), colour is -log10 padj (colour bar; its tick line marks ``alpha``), and sets with
    padj < ``alpha`` are ringed in black and labelled in black (others grey). Rows with NaN NES or
    padj (untestable sets) are not drawn (``n_dropped``); padj = 0 is drawn at the smallest
    positive padj. Labels drop a shared collection prefix (named on the axis) and are cut at
    40 characters. Image: 7 x (1.6 + 0.3 * max(rows, 3)) in at ``dpi``.
    """
    what = f"GSEA dot plot {str(dest)!r}"
    _format_of(dest)
    missing = [c for c in GSEA_PLOT_REQUIRED if c not in gsea.columns]
    if missing:
        raise ValueError(
            f"{what}: GSEA table lacks column(s) {', '.join(missing)}; expected collection, set, "
            f"size, n_found, es, nes, pvalue, padj, leading_edge (found {', '.join(map(str, gsea.columns))})"
        )
    if top_n < 1:
        raise ValueError(f"{what}: top_n must be >= 1, got {top_n}")
    d = gsea.dropna(subset=["nes", "padj"]).copy()
    d["set"] = d["set"].astype(str)
    d["_abs_nes"] = -d["nes"].astype(float).abs()
    d["_p"] = d["pvalue"].astype(float) if "pvalue" in d.columns else d["padj"].astype(float)
    top = d.sort_values(["padj", "_p", "_abs_nes", "set"], kind="mergesort").head(top_n)
    top = top.sort_values(["nes", "set"], ascending=[True, True], kind="mergesort")  # bottom -> top

    padj = top["padj"].astype(float).to_numpy()
    positive = d["padj"].astype(float).to_numpy()
    positive = positive[positive > 0]
    floor = positive.min() if positive.size else 1e-300
    colour = -np.log10(np.maximum(padj, floor))
    nes = top["nes"].astype(float).to_numpy()
    n_found = top["n_found"].astype(float).to_numpy()
    sig = padj < alpha
    labels, prefix = _short_set_names(top["set"].tolist())
    y = np.arange(len(top), dtype=float)

    n_rows = max(len(top), 3)
    fig = _new_figure(DOT_W, DOT_EXTRA_H + DOT_ROW_H * n_rows, dpi)
    ax = fig.add_subplot()
    size_max = max(float(n_found.max()) if n_found.size else 1.0, 1.0)
    area = lambda n: 15.0 + 185.0 * np.asarray(n, dtype=float) / size_max  # noqa: E731
    vmax = max(float(colour.max()) if colour.size else 0.0, -math.log10(alpha), 1.0)
    from matplotlib.colors import Normalize

    norm = Normalize(0.0, vmax)
    cmap = matplotlib.colormaps["viridis_r"]
    sc = ax.scatter(nes, y, s=area(n_found), c=colour, cmap=cmap, norm=norm, zorder=3,
                    edgecolors=np.where(sig, "black", "none").tolist(), linewidths=1.1)
    ax.axvline(0, lw=0.7, color="0.5", zorder=1)
    ax.grid(axis="y", lw=0.4, color="0.9", zorder=0)
    lim = max(float(np.abs(nes).max()) if nes.size else 1.0, 1.0) * 1.15
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-0.7, n_rows - 0.3 if len(top) >= 3 else len(top) - 0.3 + (3 - len(top)) / 2)
    ax.set_yticks(y, labels, fontsize=8)
    for tick, s in zip(ax.get_yticklabels(), sig):
        tick.set_color("black" if s else "0.45")
    ax.set_xlabel("normalised enrichment score (NES)")
    ax.set_ylabel("gene set" + (f"  ({prefix} omitted)" if prefix else ""), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    if not len(top):
        ax.text(0.5, 0.5, "no set with an NES and padj", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
    cbar = fig.colorbar(sc, ax=ax, pad=0.01, fraction=0.05)
    cbar.set_label("−log10 padj", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    cbar.ax.axhline(-math.log10(alpha), color="black", lw=1.0)
    # size key: three round values spanning the drawn sizes, and the meaning of the ring
    lo = float(n_found.min()) if n_found.size else 1.0
    keys = sorted({int(v) for v in np.unique(np.round([lo, (lo + size_max) / 2, size_max]))})
    handles = [Line2D([], [], ls="", marker="o", color="0.55", markeredgecolor="none",
                      markersize=math.sqrt(float(area(k))), label=f"{k} genes") for k in keys]
    handles.append(Line2D([], [], ls="", marker="o", color="white", markeredgecolor="black",
                          markeredgewidth=1.1, markersize=math.sqrt(float(area(lo))),
                          label=f"padj < {alpha:g}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7,
               frameon=False)
    _save(fig, dest, dpi)
    order = top["set"].tolist()[::-1]  # as read, top to bottom
    return {
        "sets": order,
        "labels": dict(zip(top["set"], labels)),
        "nes": {s: float(v) for s, v in zip(top["set"], nes)},
        "n_significant": int(sig.sum()),
        "n_tested": int(len(gsea)),
        "n_dropped": int(len(gsea) - len(d)),
        "n_padj_zero": int((padj <= 0).sum()),
        "omitted_prefix": prefix,
    }


def running_enrichment_score(
    ranked_stat: np.ndarray, hits: np.ndarray, weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GSEA's running sum over a ranking sorted in decreasing order (Subramanian et al. 2005).

    A hit (set gene) steps up by |stat|^weight / sum of that over the set's hits; a miss steps
    down by 1 / (N - hits), so the walk ends at 0. ES is the deviation of largest absolute value
    (the negative one on an exact tie, as gseapy). Vectorised over sets: ``hits`` is a bool
    (sets x N) matrix (or one row). Returns (running sums sets x N, ES per set, 0-based rank of
    the peak per set); a set without hits, or whose hits all have stat 0, gives NaN.
    """
    stat = np.asarray(ranked_stat, dtype=float)
    h = np.atleast_2d(np.asarray(hits, dtype=bool))
    if h.shape[1] != stat.size:
        raise ValueError(f"hits has {h.shape[1]} columns but the ranking has {stat.size} genes")
    w = np.ones_like(stat) if weight == 0 else np.abs(stat) ** weight
    hw = np.where(h, w, 0.0)
    norm_hit = hw.sum(axis=1, keepdims=True)
    n_miss = stat.size - h.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(h, hw / norm_hit, -1.0 / n_miss)
    res = np.cumsum(step, axis=1)
    bad = (norm_hit[:, 0] <= 0) | ~h.any(axis=1)
    res[bad] = np.nan
    hi, lo = res.argmax(axis=1), res.argmin(axis=1)
    rows = np.arange(res.shape[0])
    use_hi = np.abs(res[rows, hi]) > np.abs(res[rows, lo])
    peak = np.where(use_hi, hi, lo)
    es = np.where(bad, np.nan, res[rows, peak])
    return res, es, peak


def _ranked(de: pd.DataFrame, stat: str, what: str) -> pd.DataFrame:
    """The DE ranking as GSEA walks it: genes with a statistic, decreasing, ties by gene name."""
    missing = [c for c in ("gene", stat) if c not in de.columns]
    if missing:
        raise ValueError(f"{what}: DE table lacks column(s) {', '.join(missing)} (ranking "
                         f"statistic {stat!r}; found {', '.join(map(str, de.columns))})")
    r = de[["gene", stat]].dropna().rename(columns={stat: "stat"})
    r["gene"] = r["gene"].astype(str)
    r["stat"] = r["stat"].astype(float)
    key = r["gene"].str.upper()
    if key.duplicated().any():
        raise ValueError(f"{what}: DE table has duplicated gene(s) (case-insensitive), e.g. "
                         f"{r['gene'][key.duplicated(keep=False)].head(4).tolist()}; one row per gene expected")
    order = np.lexsort((r["gene"].to_numpy(), -r["stat"].to_numpy()))
    return r.iloc[order].reset_index(drop=True)


@_default_style
def running_score_plot(
    de: pd.DataFrame,
    sets: pd.DataFrame,
    set_names: Iterable[str],
    dest: str | os.PathLike,
    title: str,
    stat: str = "stat",
    gsea: pd.DataFrame | None = None,
    *,
    weight: float = 1.0,
    dpi: int = DPI,
) -> dict:
    """GSEA enrichment plots: per set, the running enrichment score along the ranked list.

    The ranking is ``de[stat]`` in decreasing order (genes without a statistic dropped; ties
    broken by gene name); set genes are matched exactly, as ``enrich.prerank`` matches them, so
    pass the sets harmonised to the data (``enrich_run.load_sets``) and ES equals prerank's for
    the same ranking and weight (classic weighted KS, weight 1).
    Each panel stacks the running score (peak marked, leading edge shaded), a tick per set gene,
    and the ranked statistic (zero crossing dotted). With ``gsea`` (the gsea.tsv table) the
    panel title gives that set's NES and padj. Sets not in ``sets`` or without a gene in the
    ranking are skipped and returned as ``missing``. Image: (0.2 + 4.4 * cols) x
    (0.5 + 3.8 * rows) in, at most 2 columns.
    """
    what = f"running score plot {str(dest)!r}"
    _format_of(dest)
    for c in ("set", "gene"):
        if c not in sets.columns:
            raise ValueError(f"{what}: gene-set table lacks column {c!r}; expected columns set, gene")
    if gsea is not None:
        lack = [c for c in ("set", "nes", "padj") if c not in gsea.columns]
        if lack:
            raise ValueError(f"{what}: GSEA table lacks column(s) {', '.join(lack)}")
    r = _ranked(de, stat, what)
    n = len(r)
    wanted = list(dict.fromkeys(str(s) for s in set_names))
    members = sets.assign(set=sets["set"].astype(str), key=sets["gene"].astype(str))
    members = members[members["set"].isin(wanted)]
    key = r["gene"]
    hits = np.stack([key.isin(members.loc[members["set"] == s, "key"]).to_numpy() for s in wanted]) \
        if wanted else np.zeros((0, n), dtype=bool)
    drawn = [s for s, h in zip(wanted, hits) if h.any()]
    missing = [s for s, h in zip(wanted, hits) if not h.any()]
    hits = hits[[s in drawn for s in wanted]] if wanted else hits
    stat_v = r["stat"].to_numpy()
    res, es, peak = running_enrichment_score(stat_v, hits, weight) if drawn else (
        np.zeros((0, n)), np.zeros(0), np.zeros(0, dtype=int))
    row = (gsea.assign(set=gsea["set"].astype(str)).drop_duplicates("set").set_index("set")
           if gsea is not None else None)
    labels, prefix = _short_set_names(drawn, max_chars=48)

    n_panels = max(len(drawn), 1)
    cols = min(n_panels, RUN_MAX_COLS)
    rows = math.ceil(n_panels / cols)
    fig = _new_figure(RUN_EXTRA_W + RUN_PANEL_W * cols, RUN_EXTRA_H + RUN_PANEL_H * rows, dpi)
    note = f"\nnot drawn (no gene in the ranking): {', '.join(missing)}" if missing else ""
    fig.suptitle(title + (f"  (sets {prefix}…)" if prefix else "") + note, fontsize=10)
    subfigs = np.atleast_1d(fig.subfigures(rows, cols, squeeze=False).ravel())
    x = np.arange(1, n + 1)
    many = n > 5000
    # the ranked statistic is monotone: an even subsample of <= 2000 ranks draws it faithfully
    sub = np.unique(np.linspace(0, n - 1, min(n, 2000)).round().astype(int)) if n else np.zeros(0, int)
    zero_cross = int(np.searchsorted(-stat_v, 0.0)) if n else 0
    leading = {}
    for k, sf in enumerate(subfigs):
        if k >= len(drawn):
            if not drawn:
                ax = sf.add_subplot()
                ax.set_axis_off()
                ax.text(0.5, 0.5, "none of the sets\nhas a gene in the ranking", ha="center",
                        va="center", fontsize=9, transform=ax.transAxes)
            continue
        s = drawn[k]
        colour = UP if es[k] > 0 else DOWN
        a_es, a_hit, a_stat = sf.subplots(3, 1, sharex=True,
                                          gridspec_kw={"height_ratios": [3.0, 0.5, 1.4]})
        pk = int(peak[k])
        span = (0.5, pk + 1.5) if es[k] > 0 else (pk + 0.5, n + 0.5)
        a_es.axvspan(*span, color=colour, alpha=0.08, lw=0, zorder=0)
        a_es.plot(x, res[k], color=colour, lw=1.1, zorder=2, rasterized=many)
        a_es.axhline(0, color="0.5", lw=0.6, zorder=1)
        a_es.axvline(pk + 1, color="0.3", lw=0.7, ls="--", zorder=1)
        # ES in the corner the walk is farthest from: opposite the peak, on the peak's side of 0
        right = pk < n / 2
        a_es.text(0.97 if right else 0.03, 0.95 if es[k] > 0 else 0.05,
                  f"ES = {_signed(es[k], '+.3f')}\npeak at rank {pk + 1}", fontsize=7,
                  ha="right" if right else "left", va="top" if es[k] > 0 else "bottom",
                  transform=a_es.transAxes)
        a_es.set_ylabel("running ES", fontsize=8)
        a_es.margins(y=0.1)
        pos = np.flatnonzero(hits[k]) + 1
        a_hit.vlines(pos, 0, 1, color="black", lw=0.5)
        a_hit.set_ylim(0, 1)
        a_hit.set_yticks([])
        a_stat.fill_between(x[sub], np.clip(stat_v[sub], 0, None), 0, color=UP, alpha=0.55, lw=0)
        a_stat.fill_between(x[sub], np.clip(stat_v[sub], None, 0), 0, color=DOWN, alpha=0.55, lw=0)
        if 0 < zero_cross < n:
            a_stat.axvline(zero_cross + 0.5, color="0.3", lw=0.6, ls=":")
        a_stat.set_ylabel(stat, fontsize=8)
        a_stat.set_xlim(0.5, n + 0.5)
        a_stat.set_xlabel(f"rank in the ordered gene list (n = {n})", fontsize=8)
        for a in (a_es, a_hit, a_stat):
            a.tick_params(labelsize=7)
        a_es.tick_params(labelbottom=False)
        a_hit.tick_params(labelbottom=False, bottom=False)
        if row is not None and s in row.index:
            stats_line = (f"NES {_signed(float(row.at[s, 'nes']))}, "
                          f"padj {_fmt_p(float(row.at[s, 'padj']))}")
        else:
            stats_line = f"ES {_signed(es[k], '+.3f')}"
        sf.suptitle(f"{labels[k]}\n{stats_line}  ({int(hits[k].sum())} genes in ranking)",
                    fontsize=8.5)
        le = hits[k, : pk + 1] if es[k] > 0 else hits[k, pk:]
        genes_le = r["gene"].to_numpy()[: pk + 1][le] if es[k] > 0 else r["gene"].to_numpy()[pk:][le]
        leading[s] = genes_le.tolist()
    _save(fig, dest, dpi)
    return {
        "sets": drawn,
        "missing": missing,
        "n_ranked": int(n),
        "es": {s: float(v) for s, v in zip(drawn, es)},
        "peak_rank": {s: int(p) + 1 for s, p in zip(drawn, peak)},
        "n_hits": {s: int(h.sum()) for s, h in zip(drawn, hits)},
        "leading_edge": leading,
    }


def _slope_panels(fig: Figure, names: list[str], labels: list[str], pre: np.ndarray,
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
    fig.set_size_inches(SLOPE_EXTRA_W + PANEL_W * cols, SLOPE_EXTRA_H + PANEL_H * rows)
    colours = response.map(RESPONSE_COLOURS).to_numpy()
    axes = fig.subplots(rows, cols, squeeze=False)
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
        ax.set_title(labels[k], fontsize=title_size, fontweight="bold")
        ax.set_xlabel(f"mean post − pre {_signed(mean_change[k])}  (n = {n[k]})", fontsize=7)
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
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7,
               frameon=False)
    return n, mean_change


@_default_style
def set_slope_plot(
    scores: pd.DataFrame,
    sheet: pd.DataFrame,
    set_names: Iterable[str],
    dest: str | os.PathLike,
    title: str,
    ylabel: str = "set score",
    *,
    dpi: int = DPI,
) -> dict:
    """Paired slope plots of per-sample gene-set scores (set_scores.tsv): one panel per set,
    one line per patient from pre to post, coloured by response, thick black line through the
    means, the mean within-patient change and n under each panel (as ``slope_plot`` for genes).

    ``scores`` is long (sample, set, score); pairs come from ``sheet`` exactly as for
    ``slope_plot`` (complete pre/post pairs, ``in_pair`` honoured). Panel titles drop a
    collection prefix shared by all sets (it is named in the figure title). Sets absent from
    ``scores`` are skipped and returned as ``missing``. Image: as ``slope_plot``.
    """
    what = f"set slope plot {str(dest)!r}"
    _format_of(dest)
    lack = [c for c in ("sample", "set", "score") if c not in scores.columns]
    if lack:
        raise ValueError(f"{what}: set-score table lacks column(s) {', '.join(lack)}; expected "
                         f"sample, set, score, n_genes (found {', '.join(map(str, scores.columns))})")
    s = scores.assign(sample=scores["sample"].astype(str), set=scores["set"].astype(str))
    dup = s.duplicated(["sample", "set"])
    if dup.any():
        first = s[dup].iloc[0]
        raise ValueError(f"{what}: set-score table has more than one score for sample "
                         f"{first['sample']!r}, set {first['set']!r}; expected one per sample and set")
    wide = s.pivot(index="set", columns="sample", values="score").astype(float)
    pairs = _complete_pairs(wide, sheet, what)
    wanted = list(dict.fromkeys(str(x) for x in set_names))
    present = [x for x in wanted if x in wide.index]
    missing = [x for x in wanted if x not in wide.index]
    pre = wide.loc[present, pairs["pre"].tolist()].to_numpy()
    post = wide.loc[present, pairs["post"].tolist()].to_numpy()
    labels, prefix = _short_set_names(present, max_chars=26)

    fig = _new_figure(1, 1, dpi)  # sized by _slope_panels
    fig.suptitle(title + (f"  (sets {prefix}…)" if prefix else ""), fontsize=10)
    n, mean_change = _slope_panels(fig, present, labels, pre, post, pairs["response"], ylabel,
                                   "none of the sets\nis in the scores")
    if missing:
        fig.text(0.01, 0.005, "not scored: " + ", ".join(missing), fontsize=6.5, color="0.3",
                 ha="left", va="bottom")
    _save(fig, dest, dpi)
    return {
        "sets": present,
        "missing": missing,
        "n_pairs": int(len(pairs)),
        "lines": {x: int(n[k]) for k, x in enumerate(present)},
        "mean_change": {x: float(mean_change[k]) for k, x in enumerate(present)},
        "patients": pairs.index.astype(str).tolist(),
    }
