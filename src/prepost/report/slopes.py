"""Per-claim paired slope plots for the report, drawn as small inline SVG.

Why SVG from the values rather than PNGs: a claim page shows its genes or set in every dataset,
which at 16 datasets is hundreds of small panels; as vector paths (one path per response group,
one segment per patient) each panel is 1-3 kB, crisp at any zoom, deterministic text, and needs
no plotting job. Values are those the claims use: log2 array values, log2(count / size factor +
1) for counts (size factors over the analysed samples; a panel's control genes), per-sample set
scores for gene-set claims (prepost.claims.effects does the same).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from prepost import files
from prepost.stats import control_genes_of, count_values, log2_scale, panel_size_factors, size_factors
from prepost.vocabulary import COUNTS, NON_RESPONDER, RESPONDER

COLOURS = {RESPONDER: "#0072B2", NON_RESPONDER: "#D55E00"}  # Okabe-Ito, as the PNG plots
OTHER = "#777777"
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 170, 150, 34, 8, 18, 22


def paired_values(expression_path, samples_path, summary: dict, set_scores_path, features: list[str]) -> pd.DataFrame:
    """Tidy pre/post values of ``features`` (genes or sets) for the patients with both samples in
    the analysed sheet: feature, patient, response, pre, post."""
    sheet = files.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    if "usable" in sheet:
        sheet = sheet[sheet["usable"].astype(str).str.lower() == "true"]
    sheet = sheet[sheet["timepoint"].isin(["pre", "post"])]
    both = sheet.groupby("patient")["timepoint"].nunique()
    sheet = sheet[sheet["patient"].isin(both.index[both == 2])].drop_duplicates(["patient", "timepoint"])
    if sheet.empty:
        return pd.DataFrame(columns=["feature", "patient", "response", "pre", "post"])
    wide = pd.DataFrame()
    data = pd.read_parquet(expression_path)
    samples = [s for s in sheet["sample"] if s in data.columns]
    genes = [f for f in features if f in data.index]
    if genes and samples:
        sub = data[samples]
        sf = None
        if summary.get("values") == COUNTS:  # factors from every gene, scaled: the genes drawn
            sf = panel_size_factors(sub, control_genes_of(summary))
            if sf is None:
                sf = size_factors(count_values(sub))
        wide = log2_scale(sub.loc[genes], summary.get("values"), sf)
    if set_scores_path:
        try:
            scores = files.read_tsv(set_scores_path, dtype={"sample": str})
        except (OSError, ValueError):
            scores = None
        if scores is not None and len(scores):
            sets = scores[scores["set"].isin(features)].pivot(index="set", columns="sample", values="score")
            wide = pd.concat([wide, sets.reindex(columns=samples)])
    if wide.empty:
        return pd.DataFrame(columns=["feature", "patient", "response", "pre", "post"])
    s = sheet.set_index("sample")
    long = wide.rename_axis("feature").reset_index().melt(id_vars="feature", var_name="sample", value_name="value")
    long = long[long["sample"].isin(s.index)]
    long["patient"] = long["sample"].map(s["patient"])
    long["timepoint"] = long["sample"].map(s["timepoint"])
    resp = s.drop_duplicates("patient").set_index("patient")["response"] if "response" in s else None
    out = long.pivot_table(index=["feature", "patient"], columns="timepoint", values="value").reset_index()
    out["response"] = out["patient"].map(resp).fillna("unknown") if resp is not None else "unknown"
    return out.dropna(subset=["pre", "post"])[["feature", "patient", "response", "pre", "post"]]


def _f(x: float) -> str:
    return f"{x:.1f}"


def slope_svg(values: pd.DataFrame, feature: str, direction: str, unit: str) -> str:
    """One panel: a segment pre -> post per patient, coloured by response, the median change
    in black; the title says how many patients moved in the claimed direction."""
    v = values[values["feature"] == feature]
    if v.empty:
        return ""
    lo = float(np.nanmin(v[["pre", "post"]].to_numpy()))
    hi = float(np.nanmax(v[["pre", "post"]].to_numpy()))
    if not hi > lo:
        hi = lo + 1.0
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    x0, x1 = PAD_L + 12, W - PAD_R - 12

    def y(val):
        return PAD_T + (H - PAD_T - PAD_B) * (hi - val) / (hi - lo)

    moved = int(((v["post"] < v["pre"]) if direction == "down" else (v["post"] > v["pre"])).sum())
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'role="img" aria-label="{html.escape(feature)}: {moved} of {len(v)} patients {direction}">',
             f'<text x="{W / 2:.0f}" y="12" font-size="11" text-anchor="middle">{html.escape(feature)}: '
             f'{moved}/{len(v)} {html.escape(direction)}</text>',
             f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#999"/>',
             f'<text x="{PAD_L - 3}" y="{_f(y(hi - pad) + 4)}" font-size="9" text-anchor="end">{hi - pad:.1f}</text>',
             f'<text x="{PAD_L - 3}" y="{_f(y(lo + pad))}" font-size="9" text-anchor="end">{lo + pad:.1f}</text>',
             f'<text x="{x0}" y="{H - 6}" font-size="10" text-anchor="middle">pre</text>',
             f'<text x="{x1}" y="{H - 6}" font-size="10" text-anchor="middle">post</text>']
    for group, colour in [*COLOURS.items(), ("other", OTHER)]:
        g = v[v["response"] == group] if group != "other" else v[~v["response"].isin(list(COLOURS))]
        if g.empty:
            continue
        d = " ".join(f"M{x0} {_f(y(a))}L{x1} {_f(y(b))}" for a, b in zip(g["pre"], g["post"]))
        parts.append(f'<path d="{d}" stroke="{colour}" stroke-opacity="0.55" fill="none"/>')
    med_pre, med_post = float(v["pre"].median()), float(v["post"].median())
    parts.append(f'<path d="M{x0} {_f(y(med_pre))}L{x1} {_f(y(med_post))}" stroke="#000" stroke-width="2.5"/>')
    parts.append(f'<text x="9" y="{H / 2:.0f}" font-size="9" text-anchor="middle" '
                 f'transform="rotate(-90 9 {H / 2:.0f})">{html.escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend_text() -> str:
    return "blue: responders, orange: non-responders, grey: response unknown; black: median change"
