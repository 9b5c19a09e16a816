"""Standardised effects per claim x dataset, and their random-effects pool across datasets.

Why a standardised effect: a log2 fold change from an array and one from RNA-seq are not on the
same scale (array compression, different noise), so the pool uses a unitless effect:

* paired contrasts (post_vs_pre and its per-response versions): the standardised mean change
  with change-score standardisation, d = mean(diff) / sd(diff) of the patients' post - pre log2
  differences, times Hedges' small-sample factor J(n - 1); sampling variance 1/n + g^2 / (2n)
  (metafor ``escalc(measure="SMCC")``);
* unpaired contrasts (responder_vs_non_responder_pre) and ``interaction`` (responders' changes
  vs non-responders' changes): Hedges' g = J(n1 + n2 - 2) (m1 - m2) / s_pooled, variance
  1/n1 + 1/n2 + g^2 / (2 (n1 + n2)) (metafor ``escalc(measure="SMD")``).

For expression datasets the effect comes from the per-sample values the DE used (log2 array
values; log2(count / size factor + 1) for counts, as the DE cross-checks) for the same samples
the contrast uses. A published DE table has no per-sample values: d = t / sqrt(n) (paired) or
t * sqrt(1/n1 + 1/n2) (two groups), which is exact for an ordinary t and approximate for a
moderated or Wald statistic; t comes from the table's statistic, else log2fc / se, else the CI
width, else the p-value with the sign of log2fc (see prepost.published).

Pooling is DerSimonian-Laird random effects (tau^2 by the method of moments, z-based interval and
p), as metafor ``rma(method="DL")``; tests/fixtures/meta holds metafor's numbers.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from scipy import special, stats

META_COLUMNS = [
    "claim", "statement", "citation", "contrast", "kind", "feature", "direction_expected", "k",
    "datasets", "effect", "se", "ci_low", "ci_high", "pvalue", "padj", "tau2", "i2", "q",
    "q_pvalue", "verdict", "reason",
]
PAIRED_CONTRASTS = {"post_vs_pre": None, "post_vs_pre_responder": "responder",
                    "post_vs_pre_non_responder": "non_responder"}
TWO_GROUP_CONTRASTS = {"responder_vs_non_responder_pre", "interaction"}


# --------------------------------------------------------------------------- effect sizes


def hedges_j(df) -> np.ndarray:
    """Exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981;
    metafor's default); ~ 1 - 3 / (4m - 1). NaN for m < 2."""
    m = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.exp(special.gammaln(m / 2) - 0.5 * np.log(m / 2) - special.gammaln((m - 1) / 2))
    return np.where(m >= 2, j, np.nan)


def smcc(d, n) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected standardised mean change and its variance from d = mean/sd of differences."""
    d, n = np.asarray(d, float), np.asarray(n, float)
    g = hedges_j(n - 1) * d
    return g, 1.0 / n + g**2 / (2.0 * n)


def smd(d, n1, n2) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g and its variance from d = (m1 - m2) / s_pooled."""
    d, n1, n2 = (np.asarray(x, float) for x in (d, n1, n2))
    g = hedges_j(n1 + n2 - 2) * d
    return g, 1.0 / n1 + 1.0 / n2 + g**2 / (2.0 * (n1 + n2))


def paired_effect(diffs: np.ndarray) -> pd.DataFrame:
    """Per row of post - pre differences (NaN = missing pair): smd, smd_se, smd_n."""
    diffs = np.atleast_2d(np.asarray(diffs, float))
    ok = np.isfinite(diffs)
    n = ok.sum(axis=1).astype(float)
    x = np.where(ok, diffs, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=1) / n
        sd = np.sqrt(np.where(ok, (diffs - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
        d = np.where((n >= 3) & (sd > 0), mean / sd, np.nan)
    g, v = smcc(d, n)
    return pd.DataFrame({"smd": g, "smd_se": np.sqrt(v), "smd_n": n})


def two_group_effect(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Per row, group a vs group b (columns = samples/patients, NaN = missing): Hedges' g."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))

    def moments(x):
        ok = np.isfinite(x)
        n = ok.sum(axis=1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(ok, x, 0.0).sum(axis=1) / n
            ss = np.where(ok, (x - m[:, None]) ** 2, 0.0).sum(axis=1)
        return n, m, ss

    n1, m1, ss1 = moments(a)
    n2, m2, ss2 = moments(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        sp = np.sqrt((ss1 + ss2) / (n1 + n2 - 2))
        d = np.where((n1 >= 2) & (n2 >= 2) & (sp > 0), (m1 - m2) / sp, np.nan)
    g, v = smd(d, n1, n2)
    return pd.DataFrame({"smd": g, "smd_se": np.sqrt(v), "smd_n": n1 + n2})


def effect_from_t(t, n=None, n1=None, n2=None) -> pd.DataFrame:
    """Standardised effect from a t statistic: paired (``n`` pairs) or two groups (n1, n2)."""
    t = np.asarray(t, float)
    if n is not None:
        n = np.broadcast_to(np.asarray(n, float), t.shape)
        g, v = smcc(t / np.sqrt(n), n)
        size = n
    else:
        n1 = np.broadcast_to(np.asarray(n1, float), t.shape)
        n2 = np.broadcast_to(np.asarray(n2, float), t.shape)
        g, v = smd(t * np.sqrt(1.0 / n1 + 1.0 / n2), n1, n2)
        size = n1 + n2
    return pd.DataFrame({"smd": g, "smd_se": np.sqrt(v), "smd_n": size})


# --------------------------------------------------------------------------- per dataset


def _log_values(expr: pd.DataFrame, values: str) -> pd.DataFrame:
    """The log-scale values the DE cross-checks use: log2 as is; counts -> log2(count/sf + 1)
    with DESeq2 median-of-ratios size factors over the contrast's samples."""
    if values != "counts":
        return expr.astype(float)
    from prepost.stats import count_values, size_factors

    counts = count_values(expr)
    sf = np.asarray(size_factors(counts), dtype=float)
    return np.log2(expr.astype(float) / sf + 1)


def dataset_effects(
    features: pd.DataFrame, expr: pd.DataFrame, values: str, sheet: pd.DataFrame, dataset: str,
    set_scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Standardised effect of each (contrast, kind, feature) row in one expression dataset.

    ``features``: columns contrast, kind (gene_change | gene_set_change), feature. Genes are
    taken from ``expr`` (genes x samples), sets from ``set_scores`` (tidy sample, set, score).
    The samples of each contrast are those of prepost.contrasts.build_contrast, so the effect
    is computed on exactly the samples the DE used. Rows that cannot be computed get NaN.
    """
    from prepost.de import contrasts as ct

    out = features[["contrast", "kind", "feature"]].drop_duplicates().reset_index(drop=True)
    out[["smd", "smd_se", "smd_n"]] = np.nan
    wide_sets = (
        set_scores.pivot(index="set", columns="sample", values="score")
        if set_scores is not None and len(set_scores) else pd.DataFrame()
    )
    for contrast, idx in out.groupby("contrast").groups.items():
        try:
            spec = ct.build_contrast(sheet, contrast, dataset, available=expr.columns)
        except ct.ContrastError:
            continue
        rows = out.loc[idx]
        samples = spec.samples
        logv = _log_values(expr[list(samples.index)], values)  # size factors as the DE's
        is_gene = rows["kind"].eq("gene_change").to_numpy()
        mat = pd.concat([
            logv.reindex(rows["feature"][is_gene]),
            wide_sets.reindex(index=rows["feature"][~is_gene], columns=logv.columns),
        ]).reindex(rows["feature"])
        mat.index = rows.index
        if contrast == "responder_vs_non_responder_pre":
            a = mat[list(samples.index[samples["response"] == "responder"])].to_numpy(float)
            b = mat[list(samples.index[samples["response"] == "non_responder"])].to_numpy(float)
            eff = two_group_effect(a, b)
        else:
            pairs = spec.pairs
            if pairs is None:  # the spec keeps pairs for paired contrasts; rebuild from samples
                pairs = samples.reset_index().pivot(index="patient", columns="timepoint",
                                                    values=samples.index.name or "index")
            diffs = mat[list(pairs["post"])].to_numpy(float) - mat[list(pairs["pre"])].to_numpy(float)
            if contrast == "interaction":
                resp = samples.drop_duplicates("patient").set_index("patient")["response"]
                r = resp.reindex(pairs.index).to_numpy()
                eff = two_group_effect(diffs[:, r == "responder"], diffs[:, r == "non_responder"])
            else:
                eff = paired_effect(diffs)
        out.loc[idx, ["smd", "smd_se", "smd_n"]] = eff.to_numpy()
    return out


# --------------------------------------------------------------------------- pooling


def dersimonian_laird(y, v) -> dict:
    """Random-effects pool (DerSimonian & Laird 1986) of estimates ``y`` with variances ``v``.

    Returns effect, se, ci_low, ci_high (95%, normal), z, pvalue, tau2, q, q_pvalue, i2 (%),
    k. One study: its own estimate, tau2 = 0, Q and I^2 undefined (NaN).
    """
    y, v = np.asarray(y, float), np.asarray(v, float)
    if y.size == 0 or np.any(~np.isfinite(y)) or np.any(~(v > 0)):
        raise ValueError("dersimonian_laird: need >= 1 finite estimate with variance > 0")
    k = y.size
    w = 1.0 / v
    fixed = np.sum(w * y) / np.sum(w)
    if k > 1:
        q = float(np.sum(w * (y - fixed) ** 2))
        c = np.sum(w) - np.sum(w**2) / np.sum(w)
        tau2 = max(0.0, (q - (k - 1)) / c)
        q_p = float(stats.chi2.sf(q, k - 1))
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
    else:
        q, tau2, q_p, i2 = np.nan, 0.0, np.nan, np.nan
    ws = 1.0 / (v + tau2)
    est = float(np.sum(ws * y) / np.sum(ws))
    se = float(np.sqrt(1.0 / np.sum(ws)))
    z = est / se
    crit = stats.norm.ppf(0.975)
    return {"effect": est, "se": se, "ci_low": est - crit * se, "ci_high": est + crit * se,
            "z": z, "pvalue": float(2 * stats.norm.sf(abs(z))), "tau2": tau2, "q": q,
            "q_pvalue": q_p, "i2": i2, "k": k}


def _pool_choice(group: pd.DataFrame, cohorts: dict[str, str], published: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """Testable rows with an effect, one per cohort (datasets sharing a ``cohort`` label hold
    the same patients; the per-sample dataset is preferred to a published table, then by name)."""
    ok = group[(group["reason"].fillna("") == "") & np.isfinite(group["smd"].astype(float))
               & (group["smd_se"].astype(float) > 0)].copy()
    ok["_cohort"] = ok["dataset"].map(lambda d: cohorts.get(d) or d)
    ok["_pub"] = ok["dataset"].isin(published)
    ok = ok.sort_values(["_cohort", "_pub", "dataset"])
    dropped = ok[ok.duplicated("_cohort")]
    notes = [f"{d} left out (same patients as {c})" for d, c in zip(dropped["dataset"], dropped["_cohort"])]
    return ok.drop_duplicates("_cohort").drop(columns=["_cohort", "_pub"]), notes


def meta_analyse(
    claims_table: pd.DataFrame, *, alpha: float = 0.05, cohorts: dict[str, str] | None = None,
    published: set[str] | None = None,
) -> pd.DataFrame:
    """One row per claim x feature: the DL pool of the per-dataset standardised effects.

    Verdicts use the claims vocabulary: the pooled effect's sign against the expected
    direction, and BH-adjusted pooled p (over the pooled rows) < ``alpha``.
    """
    from prepost import claims as cl
    from prepost.stats import bh_adjust

    cohorts, published = cohorts or {}, published or set()
    records = []
    keys = ["claim", "feature"]
    for (claim, feature), group in claims_table.groupby(keys, sort=False):
        first = group.iloc[0]
        rec = {c: first[c] for c in ("claim", "statement", "citation", "contrast", "kind",
                                     "feature", "direction_expected")}
        chosen, notes = _pool_choice(group, cohorts, published)
        rec["k"] = len(chosen)
        rec["datasets"] = ",".join(chosen["dataset"])
        if len(chosen) == 0:
            reasons = sorted(set(group["reason"].fillna("").replace("", "no standardised effect")))
            rec["reason"] = "fewer than 1 testable dataset (" + "; ".join(reasons) + ")"
        else:
            fit = dersimonian_laird(chosen["smd"].astype(float), chosen["smd_se"].astype(float) ** 2)
            rec.update({k: fit[k] for k in ("effect", "se", "ci_low", "ci_high", "pvalue", "tau2",
                                            "i2", "q", "q_pvalue")})
            rec["reason"] = "; ".join(notes)
        records.append(rec)
    out = pd.DataFrame(records).reindex(columns=META_COLUMNS)
    testable = out["k"].to_numpy() > 0
    out["padj"] = bh_adjust(out["pvalue"].to_numpy(dtype=float))
    observed = np.sign(out["effect"].to_numpy(dtype=float))
    direction = np.select([observed > 0, observed < 0], ["up", "down"], "none")
    same = direction == out["direction_expected"].to_numpy()
    significant = out["padj"].to_numpy(dtype=float) < alpha
    out["verdict"] = np.select(
        [~testable, same & significant, same, significant],
        [cl.NOT_TESTABLE, cl.REPRODUCED, cl.SAME_NS, cl.CONTRADICTED], cl.OPPOSITE_NS,
    )
    out["reason"] = out["reason"].fillna("")
    return out[META_COLUMNS]


# --------------------------------------------------------------------------- forest plot


def forest_plot(claim: str, claims_table: pd.DataFrame, meta: pd.DataFrame, dest: str | os.PathLike,
                *, dpi: int | None = None) -> dict:
    """Forest plot of one claim: per feature, each dataset's standardised effect with its 95%
    interval, and the DL pooled diamond. Datasets without an effect are listed with their
    reason; a dataset left out of the pool (same cohort as another) is drawn grey, "(not
    pooled)". Deterministic PNG through prepost.plots' figure helpers."""
    from matplotlib.patches import Polygon

    from prepost import plots

    dpi = dpi or plots.DPI
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
            lines.append(("  pooled", np.nan, np.nan, np.nan, "missing", "not testable"))
    n = len(lines)
    fig = plots._new_figure(7.5, 1.2 + 0.28 * n, dpi)
    with plots.matplotlib.style.context("default"):
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
                colour = plots.DOWN if est < 0 else plots.UP
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
        ax.set_title(claim, fontsize=9)
    plots._save(fig, dest, dpi)
    return {"claim": claim, "rows": n, "pooled": int((pooled["k"] > 0).sum()) if len(pooled) else 0}


def run_meta(claims_path, dest, forest_dir, claim_ids, *, alpha=0.05, cohorts=None,
             published=None) -> pd.DataFrame:
    """Read claims.tsv, write the meta table and one forest plot per claim id."""
    from pathlib import Path

    from prepost import io

    table = io.read_tsv(claims_path)
    table["reason"] = table["reason"].fillna("")
    meta = meta_analyse(table, alpha=alpha, cohorts=cohorts, published=set(published or ()))
    for claim in claim_ids:
        forest_plot(claim, table, meta, Path(forest_dir) / f"{claim}.png")
    io.write_tsv(meta, dest)
    return meta
