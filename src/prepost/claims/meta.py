"""Random-effects pool of each claim's standardised effects across datasets (one per cohort).

Pooling is DerSimonian-Laird random effects (tau^2 by the method of moments, z-based interval and
p), as metafor ``rma(method="DL")``; tests/fixtures/meta holds metafor's numbers. The effects
themselves: prepost.claims.effects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost import files
from prepost.claims.verdicts import verdicts
from prepost.parallel import run_pieces
from prepost.plots.claims import forest_plot
from prepost.stats import bh_adjust
from prepost.vocabulary import ALPHA

META_COLUMNS = [
    "claim", "statement", "citation", "contrast", "kind", "feature", "direction_expected", "k",
    "datasets", "effect", "se", "ci_low", "ci_high", "pvalue", "padj", "tau2", "i2", "q",
    "q_pvalue", "verdict", "reason",
]


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
        q_p = float(D.chi2_sf(q, k - 1))
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
    else:
        q, tau2, q_p, i2 = np.nan, 0.0, np.nan, np.nan
    ws = 1.0 / (v + tau2)
    est = float(np.sum(ws * y) / np.sum(ws))
    se = float(np.sqrt(1.0 / np.sum(ws)))
    z = est / se
    crit = D.norm_ppf(0.975)
    return {"effect": est, "se": se, "ci_low": est - crit * se, "ci_high": est + crit * se,
            "z": z, "pvalue": float(2 * D.norm_sf(abs(z))), "tau2": tau2, "q": q,
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
    claims_table: pd.DataFrame, *, alpha: float = ALPHA, cohorts: dict[str, str] | None = None,
    published: set[str] | None = None,
) -> pd.DataFrame:
    """One row per claim x feature: the DL pool of the per-dataset standardised effects.

    Verdicts use the claims vocabulary: the pooled effect's sign against the expected
    direction, and BH-adjusted pooled p (over the pooled rows) < ``alpha``.
    """
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
    significant = out["padj"].to_numpy(dtype=float) < alpha
    _, out["verdict"] = verdicts(out["effect"], out["direction_expected"], significant, testable)
    out["reason"] = out["reason"].fillna("")
    return out[META_COLUMNS]


def run_meta(claims_path, dest, forest_dir, claim_ids, *, alpha=ALPHA, cohorts=None,
             published=None, threads: int = 1) -> pd.DataFrame:
    """Read claims.tsv, write the meta table and one forest plot per claim id; with
    ``threads`` > 1 the plots are drawn by that many forked workers (prepost.parallel)."""
    table = files.read_tsv(claims_path)
    table["reason"] = table["reason"].fillna("")
    meta = meta_analyse(table, alpha=alpha, cohorts=cohorts, published=set(published or ()))
    run_pieces([(lambda c=c: forest_plot(c, table, meta, Path(forest_dir) / f"{c}.png"))
                for c in claim_ids], threads)
    files.write_tsv(meta, dest)
    return meta
