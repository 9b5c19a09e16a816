"""Model diagnostics of one contrast (deterministic canvas: plots.common): the p-value
histogram, dispersion estimates vs mean for counts (DESeq2's plotDispEsts), residual SD vs
average log-expression for arrays (limma's plotSA) and PC1/PC2 coloured by each hidden factor
(unwanted_factors).

Each ``*_points`` function returns exactly what its plot draws (tests compare it with the
model's values); each plot function returns a small summary dict for the rule's log.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from prepost.plots.common import (
    DOWN, DPI, TITLE_Y, UP, default_style, format_of, new_figure, save, single_axes,
)

P_BINS = 20  # width 0.05, as the usual DESeq2/limma p-value histograms
PCA_GENES = 500  # most variable genes for the factor PCA (DESeq2's plotPCA ntop)
DISP_COLUMNS = ("gene", "mean_expr", "disp_gene", "disp_trend", "dispersion", "disp_outlier")
SA_COLUMNS = ("gene", "mean_expr", "sigma")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(value: float, _pos=None) -> str:
    """A log axis' tick label as plain text, "10⁻³" (superscript digits of the axis font):
    matplotlib's own labels are mathtext, parsed again on every new figure (its parse cache
    belongs to a renderer): a third of a dispersion plot's time (0.12 -> 0.085 s). Ticks
    between decades (an axis spanning less than one) get their value, "%g"."""
    if not (value > 0 and math.isfinite(value)):
        return ""
    e = round(math.log10(value))
    if abs(math.log10(value) - e) > 1e-9:
        return f"{value:g}"
    return "10" + str(e).translate(_SUPERSCRIPT)


def _need(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what}: table lacks column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}"
        )


def pvalue_counts(de: pd.DataFrame, bins: int = P_BINS) -> tuple[np.ndarray, np.ndarray, int]:
    """(bin edges, counts per bin, genes tested) of the DE table's finite p-values."""
    p = de["pvalue"].astype(float).to_numpy()
    p = p[np.isfinite(p)]
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(p, bins=edges)
    return edges, counts, int(p.size)


@default_style
def pvalue_histogram(de: pd.DataFrame, dest: str | os.PathLike, title: str, *, bins: int = P_BINS,
                     dpi: int = DPI) -> dict:
    """Histogram of the contrast's p-values (20 bins) with the uniform expectation (genes tested
    / bins: what a contrast without any effect gives) and the number of genes tested. A
    well-behaved test: flat at the expectation with a peak near 0; a slope or a bump towards
    1 points at a miscalibrated model (e.g. a missing covariate or hidden factor)."""
    format_of(dest)
    _need(de, ("pvalue",), f"p-value histogram {str(dest)!r}")
    edges, counts, n = pvalue_counts(de, bins)
    fig, ax = single_axes(5, 3.8, dpi)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=DOWN, alpha=0.75,
           edgecolor="white", linewidth=0.5, label="genes")
    expected = n / bins
    ax.axhline(expected, color=UP, lw=1.2, ls="--", label=f"uniform ({expected:.0f} per bin)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("p-value")
    ax.set_ylabel("genes")
    ax.set_title(f"{title}\n{n} genes tested", fontsize=10, y=TITLE_Y)
    ax.legend(fontsize=7, loc="upper right")
    save(fig, dest, dpi)
    return {"genes_tested": n, "expected_per_bin": expected, "first_bin": int(counts[0]) if n else 0}


def dispersion_points(model: pd.DataFrame) -> pd.DataFrame:
    """What plotDispEsts draws: the genes with a positive mean and a gene-wise dispersion
    (DESeq2 drops all-zero genes), with y_gene = the gene-wise estimate raised to ``ymin``
    (10^(floor(log10(smallest positive estimate)) - 0.1)) and ``below_min`` marking those
    raised (DESeq2 draws them as triangles at the bottom)."""
    _need(model, DISP_COLUMNS, "dispersion plot")
    d = model[list(DISP_COLUMNS)].copy()
    d = d[(d["mean_expr"].astype(float) > 0) & np.isfinite(d["disp_gene"].astype(float))]
    d = d.reset_index(drop=True)
    gene = d["disp_gene"].astype(float).to_numpy()
    pos = gene[gene > 0]
    ymin = 10 ** (np.floor(np.log10(pos.min()) - 0.1)) if pos.size else 1e-8
    d["below_min"] = gene < ymin
    d["y_gene"] = np.maximum(gene, ymin)
    d["disp_outlier"] = d["disp_outlier"].astype(str).str.lower().isin(["true", "1"])
    d.attrs["ymin"] = float(ymin)
    return d


@default_style
def dispersion_plot(model: pd.DataFrame, dest: str | os.PathLike, title: str, *,
                    fit: dict | None = None, dpi: int = DPI) -> dict:
    """DESeq2's plotDispEsts: gene-wise dispersion estimates (black; below the axis minimum as
    triangles), the fitted trend (red), the final (MAP) dispersions (blue) and the dispersion
    outliers, which keep their gene-wise value (blue circles), against the mean of normalised
    counts, log-log axes. ``fit``: the fit record, to name the trend."""
    format_of(dest)
    d = dispersion_points(model)
    x = d["mean_expr"].to_numpy(float)
    fig, ax = single_axes(6, 5, dpi)
    low = d["below_min"].to_numpy()
    many = len(d) > 5000
    ax.scatter(x[~low], d["y_gene"].to_numpy()[~low], s=3, c="black", linewidths=0,
               label="gene-wise estimate", rasterized=many, zorder=1)
    if low.any():
        ax.scatter(x[low], d["y_gene"].to_numpy()[low], s=10, marker="v", c="black",
                   linewidths=0, label="gene-wise, below axis", zorder=1)
    ax.scatter(x, d["dispersion"].to_numpy(float), s=3, c="#1E90FF", linewidths=0, alpha=0.7,
               label="final (MAP)", rasterized=many, zorder=2)
    out = d["disp_outlier"].to_numpy()
    if out.any():
        ax.scatter(x[out], d["dispersion"].to_numpy(float)[out], s=30, facecolors="none",
                   edgecolors="#1E90FF", linewidths=1.0, label=f"outlier ({int(out.sum())})",
                   zorder=3)
    order = np.argsort(x, kind="stable")
    trend = (fit or {}).get("dispersion_trend") or "fitted"
    ax.plot(x[order], d["disp_trend"].to_numpy(float)[order], color="red", lw=1.4,
            label=f"{trend} trend", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.minorticks_off()  # as plotDispEsts; dispersions span up to 12 decades (100+ minor ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(decade_label))
    ax.yaxis.set_major_formatter(FuncFormatter(decade_label))
    ax.set_xlabel("mean of normalized counts")
    ax.set_ylabel("dispersion")
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    ax.legend(fontsize=7, loc="lower left", markerscale=2)
    save(fig, dest, dpi)
    return {"genes": int(len(d)), "outliers": int(out.sum()), "below_min": int(low.sum())}


def sa_points(model: pd.DataFrame, fit: dict) -> tuple[pd.DataFrame, float]:
    """What limma's plotSA draws: x = average log-expression (Amean), y = sqrt(sigma) (the
    residual SD's square root) of the genes with residual df, and the prior line
    sqrt(s0) = s2_prior^(1/4)."""
    _need(model, SA_COLUMNS, "SA plot")
    d = model[list(SA_COLUMNS)].copy()
    d = d[np.isfinite(d["sigma"].astype(float)) & np.isfinite(d["mean_expr"].astype(float))]
    d = d.reset_index(drop=True)
    d["y"] = np.sqrt(d["sigma"].astype(float))
    s2 = (fit or {}).get("s2_prior")
    if s2 is None:
        raise ValueError("SA plot: the fit record has no s2_prior (limma's prior variance)")
    return d, float(np.sqrt(np.sqrt(float(s2))))


@default_style
def sa_plot(model: pd.DataFrame, dest: str | os.PathLike, title: str, *, fit: dict,
            dpi: int = DPI) -> dict:
    """limma's plotSA: sqrt(residual SD) of each gene against its average log2 expression,
    with the empirical-Bayes prior (sqrt(s0), a constant: eBayes without trend) as a line; the
    prior df (d0) in the legend."""
    format_of(dest)
    d, line = sa_points(model, fit)
    fig, ax = single_axes(6, 5, dpi)
    ax.scatter(d["mean_expr"].to_numpy(float), d["y"].to_numpy(), s=3, c="black", linewidths=0,
               alpha=0.6, label="genes", rasterized=len(d) > 5000)
    d0 = fit.get("df_prior")
    d0_text = f" (d0 = {float(d0):.3g})" if d0 is not None else ""  # "Inf" in the JSON record
    ax.axhline(line, color=DOWN, lw=1.4, label=f"prior sqrt(s0) = {line:.3g}{d0_text}")
    ax.set_xlabel("average log2 expression")
    ax.set_ylabel("sqrt(sigma)")
    ax.set_title(title, fontsize=10, y=TITLE_Y)
    ax.legend(fontsize=7, loc="upper right")
    save(fig, dest, dpi)
    return {"genes": int(len(d)), "prior_line": line}


def factor_pcs(logv: pd.DataFrame, ntop: int = PCA_GENES) -> pd.DataFrame:
    """PC1 and PC2 scores of the samples (columns of ``logv``, log2 scale) over the ``ntop``
    most variable genes with finite values, centred (as DESeq2's plotPCA), and the
    percentages of variance they explain (``attrs["percent"]``)."""
    vals = logv.to_numpy(float)
    vals = vals[np.isfinite(vals).all(axis=1)]
    var = vals.var(axis=1, ddof=1)
    top = vals[np.argsort(-var, kind="stable")[: min(ntop, len(vals))]]
    centred = top.T - top.T.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    scores = u[:, :2] * s[:2]
    for j in range(scores.shape[1]):  # deterministic sign: largest |score| positive
        i = np.argmax(np.abs(scores[:, j]))
        scores[:, j] *= np.sign(scores[i, j]) or 1.0
    out = pd.DataFrame(scores, index=logv.columns.astype(str), columns=["PC1", "PC2"][: scores.shape[1]])
    out.attrs["percent"] = (100 * s[:2] ** 2 / np.sum(s**2)).tolist()
    return out


@default_style
def factor_plot(logv: pd.DataFrame | None, factors: pd.DataFrame, dest: str | os.PathLike,
                title: str, *, dpi: int = DPI) -> dict:
    """PC1/PC2 of the contrast's samples, one panel per hidden factor (sv1..svk of the de
    rule's factors table: sample, patient, timepoint, sv...) coloured by the factor's value,
    pre samples as circles and post as triangles. Without factors (unwanted_factors 0): a
    note saying so."""
    format_of(dest)
    names = [c for c in factors.columns if str(c).startswith("sv")]
    if not names or logv is None:
        fig = new_figure(5, 1.6, dpi)
        fig.text(0.5, 0.5, f"{title}\nno hidden factors (unwanted_factors: 0)", ha="center",
                 va="center", fontsize=10)
        save(fig, dest, dpi)
        return {"factors": 0}
    f = factors.set_index(factors["sample"].astype(str))
    pcs = factor_pcs(logv[list(f.index)])
    cols = min(len(names), 3)
    rows = int(np.ceil(len(names) / cols))
    fig = new_figure(3.6 * cols + 0.6, 3.4 * rows + 0.5, dpi)
    pct = pcs.attrs["percent"]
    post = (f["timepoint"].astype(str) == "post").to_numpy()
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        v = f[name].astype(float).to_numpy()
        lim = float(np.abs(v).max()) or 1.0
        for mask, marker, lab in ((~post, "o", "pre"), (post, "^", "post")):
            sc = ax.scatter(pcs["PC1"].to_numpy()[mask], pcs["PC2"].to_numpy()[mask], c=v[mask],
                            cmap="coolwarm", vmin=-lim, vmax=lim, marker=marker, s=30,
                            edgecolors="0.3", linewidths=0.4, label=lab)
        fig.colorbar(sc, ax=ax, shrink=0.8, label=name)
        ax.set_xlabel(f"PC1 ({pct[0]:.0f}%)")
        ax.set_ylabel(f"PC2 ({pct[1]:.0f}%)" if len(pct) > 1 else "PC2")
        ax.set_title(name, fontsize=9, y=TITLE_Y)
        if i == 0:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: PC1/PC2 by hidden factor", fontsize=10)
    save(fig, dest, dpi)
    return {"factors": len(names), "samples": int(len(f))}


__all__ = [
    "dispersion_plot", "dispersion_points", "factor_pcs", "factor_plot", "pvalue_counts",
    "pvalue_histogram", "sa_plot", "sa_points",
]
