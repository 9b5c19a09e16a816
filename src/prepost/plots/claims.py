"""Forest plot of one claim: each dataset's standardised effect and the pooled diamond."""

from __future__ import annotations

import os

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.patches import Polygon

from prepost.plots.common import DOWN, DPI, TITLE_Y, UP, new_figure, save
from prepost.vocabulary import NOT_TESTABLE


def forest_plot(claim: str, claims_table: pd.DataFrame, meta: pd.DataFrame, dest: str | os.PathLike,
                *, dpi: int | None = None) -> dict:
    """Forest plot of one claim: per feature, each dataset's standardised effect with its 95%
    interval, and the DL pooled diamond. Datasets without an effect are listed with their
    reason; a dataset left out of the pool (same cohort as another) is drawn grey, "(not
    pooled)". Deterministic PNG through prepost.plots.common."""
    dpi = dpi or DPI
    rows = claims_table[claims_table["claim"] == claim]
    pooled = meta[meta["claim"] == claim].set_index("feature")
    if rows.empty:
        raise ValueError(f"forest plot: claim {claim!r} is not in the claims table")
    lines = []  # (label, est, lo, hi, kind, note)
    for feature, g in rows.groupby("feature", sort=False):
        lines.append((f"{feature}", np.nan, np.nan, np.nan, "header", ""))
        in_pool = set()
        if feature in pooled.index and isinstance(pooled.loc[feature, "datasets"], str):
            in_pool = set(pooled.loc[feature, "datasets"].split(","))
        for r in g.itertuples(index=False):
            est, se = float(r.smd), float(r.smd_se)
            if r.reason == "" and np.isfinite(est) and se > 0:
                pooled_here = r.dataset in in_pool
                lines.append((f"  {r.dataset}" + ("" if pooled_here else " (not pooled)"), est,
                              est - 1.96 * se, est + 1.96 * se, "study" if pooled_here else "unpooled", ""))
            else:
                note = r.reason if isinstance(r.reason, str) and r.reason else "no effect"
                lines.append((f"  {r.dataset}", np.nan, np.nan, np.nan, "missing", note))
        p = pooled.loc[feature] if feature in pooled.index else None
        if p is not None and p["k"] > 0:
            lines.append((f"  pooled (k={int(p['k'])}, I²={p['i2']:.0f}%)" if np.isfinite(p["i2"])
                          else f"  pooled (k={int(p['k'])})",
                          p["effect"], p["ci_low"], p["ci_high"], "pooled", p["verdict"]))
        else:
            lines.append(("  pooled", np.nan, np.nan, np.nan, "missing", NOT_TESTABLE))
    n = len(lines)
    fig = new_figure(7.5, 1.2 + 0.28 * n, dpi)
    with matplotlib.style.context("default"):
        ax = fig.add_subplot(1, 1, 1)
        ypos = np.arange(n)[::-1]
        finite = [x for ln in lines for x in ln[2:4] if np.isfinite(x)]
        lo, hi = (min(finite + [0.0]), max(finite + [0.0])) if finite else (-1.0, 1.0)
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        for y, (label, est, l, h, kind, note) in zip(ypos, lines):
            if kind in ("study", "unpooled"):
                colour = "black" if kind == "study" else "#999999"
                ax.plot([l, h], [y, y], color=colour, lw=1)
                ax.plot([est], [y], marker="s", color=colour, ms=5)
            elif kind == "pooled":
                colour = DOWN if est < 0 else UP
                ax.add_patch(Polygon([[l, y], [est, y + 0.3], [h, y], [est, y - 0.3]], closed=True,
                                     facecolor=colour, edgecolor="black"))
                ax.text(hi + pad, y, f" {note}", va="center", ha="left", fontsize=7)
            elif kind == "missing":
                ax.text(lo - pad, y, f" {note}", va="center", ha="left", fontsize=7, color="#666666")
        ax.axvline(0.0, color="#888888", lw=0.8, ls="--")
        ax.set_yticks(ypos, [ln[0] for ln in lines], fontsize=8)
        for tick, ln in zip(ax.get_yticklabels(), lines):
            if ln[4] == "header":
                tick.set_fontweight("bold")
        ax.set_ylim(-0.7, n - 0.3)
        first = rows.iloc[0]
        ax.set_xlabel(f"standardised effect (Hedges-corrected), {first['contrast']}; "
                      f"expected {first['direction_expected']}", fontsize=8)
        ax.set_title(claim, fontsize=9, y=TITLE_Y)
    save(fig, dest, dpi)
    return {"claim": claim, "rows": n, "pooled": int((pooled["k"] > 0).sum()) if len(pooled) else 0}
