"""Enrichment views: GSEA dot plot, running enrichment score, per-sample set-score slopes."""

from __future__ import annotations

import math
import os
from typing import Iterable

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from prepost.prepare.pairing import complete_pairs
from prepost.plots.common import (
    DOWN, DPI, TITLE_Y, UP, default_style, fmt_p, format_of, new_figure, save, signed,
    slope_figure,
)


GSEA_PLOT_REQUIRED = ("set", "n_found", "nes", "padj")


SET_LABEL_CHARS = 40


# GSEA dot plot: (DOT_W) x (DOT_EXTRA_H + DOT_ROW_H * max(rows, 3)) in.
DOT_W, DOT_EXTRA_H, DOT_ROW_H = 7.0, 1.6, 0.3


# Running-score panels, in inches, at most RUN_MAX_COLS per row.
RUN_PANEL_W, RUN_PANEL_H, RUN_MAX_COLS = 4.4, 3.8, 2


RUN_EXTRA_W, RUN_EXTRA_H = 0.2, 0.5


# Inside a running-score panel, in inches: title above, y labels left, x label below (a fixed
# layout: the constrained one measured every tick label of every subfigure, most of the time).
RUN_TOP, RUN_LEFT, RUN_RIGHT, RUN_BOTTOM, RUN_GAP = 0.55, 0.7, 0.15, 0.55, 0.06


RUN_RATIOS = (3.0, 0.5, 1.4)


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


@default_style
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
    format_of(dest)
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
    fig = new_figure(DOT_W, DOT_EXTRA_H + DOT_ROW_H * n_rows, dpi)
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
    ax.set_title(title, fontsize=10, y=TITLE_Y)
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
    save(fig, dest, dpi)
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


@default_style
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
    format_of(dest)
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
    width, height = RUN_EXTRA_W + RUN_PANEL_W * cols, RUN_EXTRA_H + RUN_PANEL_H * rows
    fig = new_figure(width, height, dpi, layout=None)
    note = f"\nnot drawn (no gene in the ranking): {', '.join(missing)}" if missing else ""
    fig.suptitle(title + (f"  (sets {prefix}…)" if prefix else "") + note, fontsize=10,
                 y=1 - 0.08 / height, va="top")

    def panel_axes(k: int) -> list:
        """The three stacked axes of panel k (score, hits, statistic), placed in inches."""
        left = RUN_EXTRA_W / 2 + (k % cols) * RUN_PANEL_W + RUN_LEFT
        top = height - RUN_EXTRA_H - (k // cols) * RUN_PANEL_H - RUN_TOP
        w = RUN_PANEL_W - RUN_LEFT - RUN_RIGHT
        h_all = RUN_PANEL_H - RUN_TOP - RUN_BOTTOM - 2 * RUN_GAP
        axes = []
        for ratio in RUN_RATIOS:
            h = h_all * ratio / sum(RUN_RATIOS)
            axes.append(fig.add_axes((left / width, (top - h) / height, w / width, h / height)))
            top -= h + RUN_GAP
        return axes

    def panel_title(k: int, text: str) -> None:
        x = (RUN_EXTRA_W / 2 + (k % cols + 0.5) * RUN_PANEL_W) / width
        y = (height - RUN_EXTRA_H - (k // cols) * RUN_PANEL_H - 0.06) / height
        fig.text(x, y, text, ha="center", va="top", fontsize=8.5)

    x = np.arange(1, n + 1)
    many = n > 5000
    # the ranked statistic is monotone: an even subsample of <= 2000 ranks draws it faithfully
    sub = np.unique(np.linspace(0, n - 1, min(n, 2000)).round().astype(int)) if n else np.zeros(0, int)
    zero_cross = int(np.searchsorted(-stat_v, 0.0)) if n else 0
    leading = {}
    for k in range(rows * cols):
        if k >= len(drawn):
            if not drawn:
                ax = fig.add_axes((0.1, 0.1, 0.8, 0.7))
                ax.set_axis_off()
                ax.text(0.5, 0.5, "none of the sets\nhas a gene in the ranking", ha="center",
                        va="center", fontsize=9, transform=ax.transAxes)
            continue
        s = drawn[k]
        colour = UP if es[k] > 0 else DOWN
        a_es, a_hit, a_stat = panel_axes(k)
        pk = int(peak[k])
        span = (0.5, pk + 1.5) if es[k] > 0 else (pk + 0.5, n + 0.5)
        a_es.axvspan(*span, color=colour, alpha=0.08, lw=0, zorder=0)
        a_es.plot(x, res[k], color=colour, lw=1.1, zorder=2, rasterized=many)
        a_es.axhline(0, color="0.5", lw=0.6, zorder=1)
        a_es.axvline(pk + 1, color="0.3", lw=0.7, ls="--", zorder=1)
        # ES in the corner the walk is farthest from: opposite the peak, on the peak's side of 0
        right = pk < n / 2
        a_es.text(0.97 if right else 0.03, 0.95 if es[k] > 0 else 0.05,
                  f"ES = {signed(es[k], '+.3f')}\npeak at rank {pk + 1}", fontsize=7,
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
        # one x range for the three; only the statistic's axis has x ticks (the upper two
        # had hidden labels: their ticks cost a third of the plot's time)
        for a in (a_es, a_hit):
            a.set_xlim(0.5, n + 0.5)
            a.xaxis.set_major_locator(NullLocator())
        for a in (a_es, a_hit, a_stat):
            a.tick_params(labelsize=7)
        if row is not None and s in row.index:
            stats_line = (f"NES {signed(float(row.at[s, 'nes']))}, "
                          f"padj {fmt_p(float(row.at[s, 'padj']))}")
        else:
            stats_line = f"ES {signed(es[k], '+.3f')}"
        panel_title(k, f"{labels[k]}\n{stats_line}  ({int(hits[k].sum())} genes in ranking)")
        le = hits[k, : pk + 1] if es[k] > 0 else hits[k, pk:]
        genes_le = r["gene"].to_numpy()[: pk + 1][le] if es[k] > 0 else r["gene"].to_numpy()[pk:][le]
        leading[s] = genes_le.tolist()
    save(fig, dest, dpi)
    return {
        "sets": drawn,
        "missing": missing,
        "n_ranked": int(n),
        "es": {s: float(v) for s, v in zip(drawn, es)},
        "peak_rank": {s: int(p) + 1 for s, p in zip(drawn, peak)},
        "n_hits": {s: int(h.sum()) for s, h in zip(drawn, hits)},
        "leading_edge": leading,
    }


@default_style
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
    format_of(dest)
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
    pairs = complete_pairs(wide, sheet, what)
    wanted = list(dict.fromkeys(str(x) for x in set_names))
    present = [x for x in wanted if x in wide.index]
    missing = [x for x in wanted if x not in wide.index]
    pre = wide.loc[present, pairs["pre"].tolist()].to_numpy()
    post = wide.loc[present, pairs["post"].tolist()].to_numpy()
    labels, prefix = _short_set_names(present, max_chars=26)

    return slope_figure(dest, title + (f"  (sets {prefix}…)" if prefix else ""), present, labels,
                        pre, post, pairs, ylabel, kind="sets", missing=missing,
                        missing_note="not scored", empty_text="none of the sets\nis in the scores",
                        dpi=dpi)
