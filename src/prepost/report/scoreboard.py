"""The report's first screen: one row per claim, one cell per dataset plus the pooled cell.

Why a separate module: the claims table has one row per claim x dataset x feature (a claim may
name five genes), which is what a statistician wants and what a clinician cannot read. Here the
rows are folded into cells (``claim_cells``: a claim's verdict in a dataset, from its features'
verdicts by ``prepost.claims.verdicts.claim_verdict``) and each claim gets one generated sentence
(``claim_sentence``). Functions take and return DataFrames / plain dicts; the template only
lays them out.
"""

from __future__ import annotations

import math

import pandas as pd

from prepost.claims.verdicts import claim_verdict
from prepost.vocabulary import (
    CONTRADICTED, MIXED, NOT_TESTABLE, NS_UNREPORTED, OPPOSITE_NS, REPRODUCED, SAME_NS,
)

# Readable without colour: a mark and the word travel together.
MARK = {REPRODUCED: "\u2714", SAME_NS: "\u2197", CONTRADICTED: "\u2718", OPPOSITE_NS: "\u2198",
        NOT_TESTABLE: "\u2013", MIXED: "\u00b1", NS_UNREPORTED: "\u2218"}
CSS = {REPRODUCED: "v-rep", SAME_NS: "v-same", CONTRADICTED: "v-contra", OPPOSITE_NS: "v-opp",
       NOT_TESTABLE: "v-nt", MIXED: "v-mixed", NS_UNREPORTED: "v-nt"}
# Compact cells (many datasets): a mark and a short word, spelled out in the legend.
SHORT = {REPRODUCED: "repro.", SAME_NS: "same", CONTRADICTED: "contra.", OPPOSITE_NS: "opp.",
         NOT_TESTABLE: "n.t.", MIXED: "mixed", NS_UNREPORTED: "n.s."}
UNIT_SHORT = {"log2fc": "log2FC", "set score change (mean z), post - pre": "\u0394 set score",
              "NES (prerank)": "NES"}


def num(x, digits: int = 2) -> str:
    """A number for a cell: fixed decimals for effects, '' when missing; a real minus sign."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(x):
        return ""
    return f"{x:.{digits}f}".replace("-", "\u2212")


def pval(x) -> str:
    """p-values to 2 significant digits, small ones in e-notation."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(x):
        return ""
    return (f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}").replace("-", "\u2212")


def effect_text(effect, lo, hi, unit: str = "") -> str:
    """'log2FC −1.35 [−1.59, −1.10]' (the CI only when both ends are known)."""
    e = num(effect)
    if not e:
        return ""
    ci = f" [{num(lo)}, {num(hi)}]" if num(lo) and num(hi) else ""
    u = UNIT_SHORT.get(unit, unit)
    return f"{u} {e}{ci}".strip()


def _moved(n_moved, n_pairs, direction: str) -> str:
    try:
        m, n = int(float(n_moved)), int(float(n_pairs))
    except (TypeError, ValueError):
        return ""
    return f"{m}/{n} patients {direction}"


def _short_reason(reasons: list[str]) -> str:
    uniq = list(dict.fromkeys(r for r in reasons if r))
    return "; ".join(uniq)


NEEDED = ["claim", "dataset", "contrast", "kind", "feature", "statement", "citation", "doi",
          "published_p", "direction_expected", "effect", "effect_unit", "ci_low", "ci_high", "pvalue",
          "claim_padj", "n_pairs", "n_moved", "verdict", "reason", "smd"]


def _complete(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table with every column the scoreboard reads (older tables lack some)."""
    out = claims.copy()
    for col in NEEDED:
        if col not in out.columns:
            out[col] = "" if col in ("effect_unit", "reason", "citation", "doi", "kind") else float("nan")
    out["reason"] = out["reason"].fillna("")
    out["effect_unit"] = out["effect_unit"].fillna("")
    return out


def claim_cells(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim x dataset: the claim's verdict there and what the cell shows.

    Columns: claim, dataset, verdict, n_features, n_testable, counts (verdict -> features),
    lines (per feature: feature, effect text, moved text, verdict), reason (why not testable).
    """
    records = []
    claims = _complete(claims)
    for (claim, ds), g in claims.groupby(["claim", "dataset"], sort=False):
        verdict = claim_verdict(g["verdict"].astype(str).tolist())
        lines = [
            {"feature": r.feature, "verdict": str(r.verdict), "mark": MARK.get(str(r.verdict), ""),
             "effect": effect_text(r.effect, r.ci_low, r.ci_high, str(r.effect_unit or "")),
             "moved": _moved(r.n_moved, r.n_pairs, str(r.direction_expected)),
             "reason": str(r.reason or "")}
            for r in g.fillna({"reason": "", "effect_unit": ""}).itertuples(index=False)
        ]
        testable = [ln for ln in lines if ln["verdict"] != NOT_TESTABLE]
        records.append({
            "claim": claim, "dataset": ds, "verdict": verdict, "n_features": len(lines),
            "n_testable": len(testable),
            "n_reproduced": sum(ln["verdict"] == REPRODUCED for ln in lines),
            "lines": lines,
            "reason": _short_reason([ln["reason"] for ln in lines if ln["verdict"] in (NOT_TESTABLE, NS_UNREPORTED)]),
        })
    return pd.DataFrame(records)


def pooled_cells(meta: pd.DataFrame | None) -> dict[str, dict]:
    """claim -> the pooled cell (verdict and, per feature, d [CI], I², k)."""
    out: dict[str, dict] = {}
    if meta is None or meta.empty:
        return out
    for claim, g in meta.groupby("claim", sort=False):
        lines = []
        for r in g.fillna({"reason": ""}).itertuples(index=False):
            i2 = f", I\u00b2 {r.i2:.0f} %" if isinstance(r.i2, float) and math.isfinite(r.i2) else ""
            lines.append({
                "feature": r.feature, "verdict": str(r.verdict), "mark": MARK.get(str(r.verdict), ""),
                "effect": (f"d {num(r.effect)} [{num(r.ci_low)}, {num(r.ci_high)}]" if num(r.effect) else ""),
                "extra": f"k = {int(r.k)}{i2}" if r.k else "",
                "d": float(r.effect) if num(r.effect) else float("nan"),
                "reason": str(r.reason or ""),
            })
        out[claim] = {"verdict": claim_verdict([ln["verdict"] for ln in lines]), "lines": lines,
                      "n_features": len(lines)}
    return out


def claim_sentence(cells: pd.DataFrame, pooled: dict | None) -> str:
    """'Reproduced in 2 of 3 datasets (1 not testable); pooled d = −0.91 [−1.20, −0.60], I² = 21 %.'"""
    testable = cells[cells["n_testable"] > 0]
    n_rep = int((testable["verdict"] == REPRODUCED).sum())
    nt = len(cells) - len(testable)
    if len(testable) == 0:
        head = f"Not testable in any of {len(cells)} dataset{'s' if len(cells) != 1 else ''}"
    else:
        head = f"Reproduced in {n_rep} of {len(testable)} testable dataset{'s' if len(testable) != 1 else ''}"
        others = testable.loc[testable["verdict"] != REPRODUCED, "verdict"].value_counts()
        if len(others):
            head += " (" + ", ".join(f"{k}: {v}" for k, v in others.items()) + ")"
        if nt:
            head += f"; not testable in {nt}"
    parts = [head]
    pooled_lines = [ln for ln in (pooled or {}).get("lines", []) if ln["effect"]]
    if len(pooled_lines) == 1:
        ln = pooled_lines[0]
        extra = ln["extra"].replace("I\u00b2 ", "I\u00b2 = ")
        parts.append(f"pooled {ln['effect'].replace('d ', 'd = ', 1)}, {extra}, {ln['verdict']}")
    elif pooled_lines:
        n_rep = sum(ln["verdict"] == REPRODUCED for ln in pooled_lines)
        d = [ln["d"] for ln in pooled_lines]
        parts.append(f"pooled, {n_rep} of {len(pooled_lines)} genes reproduced "
                     f"(d from {num(min(d))} to {num(max(d))})")
    return "; ".join(parts) + "."


def scoreboard(claims: pd.DataFrame, meta: pd.DataFrame | None, catalogue: list[dict] | None = None) -> dict:
    """The scoreboard for the template: datasets (columns), and per claim its statement,
    citation, contrast, cells by dataset, pooled cell and sentence."""
    claims = _complete(claims)
    datasets = sorted(claims["dataset"].astype(str).unique())
    cells = claim_cells(claims)
    pooled = pooled_cells(meta)
    cat = {c["id"]: c for c in (catalogue or [])}
    rows = []
    for claim, g in claims.groupby("claim", sort=False):
        first = g.iloc[0]
        cc = cells[cells["claim"] == claim]
        by_ds = {r["dataset"]: dict(r, css=CSS.get(r["verdict"], ""), mark=MARK.get(r["verdict"], ""),
                                    short=SHORT.get(r["verdict"], r["verdict"]))
                 for r in cc.to_dict("records")}
        pool = pooled.get(claim)
        if pool:
            pool = dict(pool, css=CSS.get(pool["verdict"], ""), mark=MARK.get(pool["verdict"], ""),
                        short=SHORT.get(pool["verdict"], pool["verdict"]))
        doi = str(first.get("doi") or "")
        rows.append({
            "claim": claim, "statement": str(first["statement"]), "citation": str(first.get("citation") or ""),
            "doi": "" if doi in ("", "nan") else doi, "contrast": str(first["contrast"]),
            "kind": str(first["kind"]), "direction": str(first["direction_expected"]),
            "published_p": pval(first.get("published_p")),
            "features": list(dict.fromkeys(g["feature"].astype(str))),
            "cells": [by_ds.get(ds) for ds in datasets], "pooled": pool,
            "sentence": claim_sentence(cc, pool),
            "anchor": "claim-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in claim),
            "overall": _overall(cc, pool),
        })
    order = [REPRODUCED, SAME_NS, OPPOSITE_NS, CONTRADICTED, MIXED, NS_UNREPORTED, NOT_TESTABLE]
    overall = [r["overall"] for r in rows]
    tally = [(v, overall.count(v)) for v in order if v in overall]
    return {"datasets": datasets, "rows": rows, "tally": tally, "legend": [
        (v, MARK[v], CSS[v], SHORT[v]) for v in (REPRODUCED, SAME_NS, OPPOSITE_NS, CONTRADICTED, MIXED,
                                       NS_UNREPORTED, NOT_TESTABLE)]}


def _overall(cells: pd.DataFrame, pooled: dict | None) -> str:
    """The claim's headline: the pooled verdict when pooled, else its datasets' verdicts folded."""
    if pooled and pooled["verdict"] != NOT_TESTABLE:
        return pooled["verdict"]
    return claim_verdict(cells["verdict"].tolist())


def evidence_rows(claims: pd.DataFrame, claim: str) -> dict:
    """A claim's per-dataset evidence as table rows (no repeated statement)."""
    g = _complete(claims[claims["claim"] == claim])
    cols = ["dataset", "feature", "effect", "95% CI", "p", "claim padj", "patients moved",
            "d (SMD)", "verdict", "why"]
    rows, classes = [], []
    for r in g.itertuples(index=False):
        unit = UNIT_SHORT.get(str(r.effect_unit or ""), str(r.effect_unit or ""))
        rows.append([
            r.dataset, r.feature, f"{unit} {num(r.effect)}".strip() if num(r.effect) else "",
            f"[{num(r.ci_low)}, {num(r.ci_high)}]" if num(r.ci_low) else "",
            pval(r.pvalue), pval(r.claim_padj), _moved(r.n_moved, r.n_pairs, str(r.direction_expected)),
            num(r.smd), f"{MARK.get(str(r.verdict), '')} {r.verdict}", str(r.reason or "") if str(r.reason) != "nan" else "",
        ])
        classes.append(CSS.get(str(r.verdict), ""))
    return {"columns": cols, "rows": rows, "classes": classes}

