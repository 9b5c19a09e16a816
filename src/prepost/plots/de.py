"""Volcano, MA and paired slope plots of one contrast (deterministic canvas: plots.common).

Every function returns a small summary dict (counts, labelled or missing genes) so a rule can log
what was drawn and tests can check it.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prepost.stats import normalised_log2
from prepost.prepare.pairing import complete_pairs
from prepost.plots.common import (
    DOWN, DPI, NS, TITLE_Y, UP, format_of, save, single_axes, slope_figure,
)

DE_REQUIRED = ("gene", "log2fc", "pvalue", "padj")


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
    if fig.get_layout_engine() is not None:
        fig.draw_without_rendering()  # settle the constrained layout to know the axes' size
        fig.set_layout_engine("none")  # and keep it: the labels sit inside the axes
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    fx = (x - x0) / (x1 - x0)
    fy = (y - y0) / (y1 - y0)
    dx = np.where(fx < 0.5, 0.03, -0.03)
    # the leader line starts at the label's edge facing its point (relpos), so it needs no
    # clipping against the label's box (patchA=None: that clipping was most of the draw time)
    texts = [
        ax.annotate(
            name, xy=(fx[i], fy[i]), xycoords="axes fraction", xytext=(fx[i] + dx[i], fy[i]),
            textcoords="axes fraction", fontsize=6.5, ha="left" if dx[i] > 0 else "right",
            va="center", zorder=6,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.7},
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.3", "shrinkA": 0, "shrinkB": 2,
                        "patchA": None, "relpos": (0.0, 0.5) if dx[i] > 0 else (1.0, 0.5)},
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


def _label_and_save(fig: Figure, ax, d: pd.DataFrame, x: np.ndarray, y: np.ndarray, cls: pd.Series,
                    label_mask: pd.Series, dest, dpi: int) -> dict:
    """The tail volcano and MA plots share: label the chosen genes, save, count the classes."""
    lm = label_mask.to_numpy()
    names = d["gene"].astype(str).to_numpy()[lm].tolist()
    _label_points(fig, ax, x[lm], y[lm], names)
    save(fig, dest, dpi)
    return {"n_up": int((cls == "up").sum()), "n_down": int((cls == "down").sum()),
            "n_ns": int((cls == "ns").sum()), "labelled": names}


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
    format_of(dest)
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

    fig, ax = single_axes(6, 5, dpi)
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
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    if n_zero:
        ax.text(0.01, 0.99, f"{n_zero} gene(s) with p = 0 drawn at the top", transform=ax.transAxes,
                fontsize=6, va="top", color="0.3")
    return {**_label_and_save(fig, ax, d, x, y, cls, label_mask, dest, dpi),
            "n_dropped": int(len(de) - len(d)), "n_p_zero": n_zero, "missing_label_genes": missing}


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
    format_of(dest)
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

    fig, ax = single_axes(6, 5, dpi)
    _scatter_classes(ax, x, y, cls, alpha, highlight)
    ax.axhline(0, lw=0.6, color="0.4", zorder=0)
    lim = max(float(np.abs(y).max()) if y.size else 1.0, 0.5) * 1.08
    ax.set_ylim(-lim, lim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("log2 fold change")
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    return {**_label_and_save(fig, ax, d, x, y, cls, label_mask, dest, dpi),
            "n_dropped": int(len(de) - len(d)), "missing_label_genes": missing}


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
    log2(normalised count + 1) (prepost.stats.normalised_log2) with ``size_factors`` (a Series
    over the samples; pass the DE's, i.e. median of ratios over the contrast's samples), else
    median-of-ratios factors of the samples drawn. Genes absent from ``expr`` are skipped, named in the figure and
    returned as ``missing``. Image: (0.4 + 2.4 * cols) x (1.0 + 2.6 * rows) in, at most 4 columns.
    """
    what = f"slope plot {str(dest)!r}"
    format_of(dest)
    if values not in ("log2", "counts"):
        raise ValueError(f"{what}: values must be 'log2' or 'counts', got {values!r}")
    genes = list(dict.fromkeys(str(g) for g in genes))
    expr = expr.copy()
    expr.columns = expr.columns.astype(str)
    expr.index = expr.index.astype(str)
    pairs = complete_pairs(expr, sheet, what)
    present = [g for g in genes if g in expr.index]
    missing = [g for g in genes if g not in expr.index]
    samples = pairs["pre"].tolist() + pairs["post"].tolist()
    if values == "counts":
        try:
            mat = normalised_log2(expr[samples], size_factors).loc[present]
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
        ylabel = "log2(normalised count + 1)"
    else:
        mat = expr.loc[present, samples].astype(float)
        ylabel = "log2 expression"
    pre = mat[pairs["pre"].tolist()].to_numpy()  # genes x patients
    post = mat[pairs["post"].tolist()].to_numpy()
    return slope_figure(dest, title, present, present, pre, post, pairs, ylabel, kind="genes",
                        missing=missing, missing_note="not in data",
                        empty_text="none of the genes\nis in the data", dpi=dpi, title_size=9)
