"""Standardised effects per claim x dataset: the unitless scale the meta-analysis pools.

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
values; log2(count / size factor + 1) for counts, prepost.stats, as the DE cross-checks) for the
same samples the contrast uses. A published DE table has no per-sample values: d = t / sqrt(n)
(paired) or t * sqrt(1/n1 + 1/n2) (two groups), which is exact for an ordinary t and
approximate for a moderated or Wald statistic; t comes from the table's statistic, else
log2fc / se, else the CI width, else the p-value with the sign of log2fc (see
prepost.claims.published).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from prepost.de import contrasts as ct
from prepost.stats import log2_scale, panel_size_factors
from prepost.vocabulary import COUNTS, NON_RESPONDER, RESPONDER


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


def dataset_effects(
    features: pd.DataFrame, expr: pd.DataFrame, values: str, sheet: pd.DataFrame, dataset: str,
    set_scores: pd.DataFrame | None = None, control_genes: list[str] | None = None,
) -> pd.DataFrame:
    """Standardised effect of each (contrast, kind, feature) row in one expression dataset.

    ``features``: columns contrast, kind (gene_change | gene_set_change), feature. Genes are
    taken from ``expr`` (genes x samples), sets from ``set_scores`` (tidy sample, set, score).
    The samples of each contrast are those of prepost.de.contrasts.build_contrast, so the effect
    is computed on exactly the samples the DE used. Rows that cannot be computed get NaN.
    """
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
        sub = expr[list(samples.index)]
        sf = panel_size_factors(sub, control_genes) if values == COUNTS else None
        logv = log2_scale(sub, values, sf)  # size factors as the DE's (a panel: control genes)
        is_gene = rows["kind"].eq("gene_change").to_numpy()
        mat = pd.concat([
            logv.reindex(rows["feature"][is_gene]),
            wide_sets.reindex(index=rows["feature"][~is_gene], columns=logv.columns),
        ]).reindex(rows["feature"])
        mat.index = rows.index
        if spec.kind == "two_group":
            a = mat[list(samples.index[samples["response"] == RESPONDER])].to_numpy(float)
            b = mat[list(samples.index[samples["response"] == NON_RESPONDER])].to_numpy(float)
            eff = two_group_effect(a, b)
        else:
            pairs = spec.pairs
            if pairs is None:  # the spec keeps pairs for paired contrasts; rebuild from samples
                pairs = samples.reset_index().pivot(index="patient", columns="timepoint",
                                                    values=samples.index.name or "index")
            diffs = mat[list(pairs["post"])].to_numpy(float) - mat[list(pairs["pre"])].to_numpy(float)
            if spec.kind == "interaction":
                resp = samples.drop_duplicates("patient").set_index("patient")["response"]
                r = resp.reindex(pairs.index).to_numpy()
                eff = two_group_effect(diffs[:, r == RESPONDER], diffs[:, r == NON_RESPONDER])
            else:
                eff = paired_effect(diffs)
        out.loc[idx, ["smd", "smd_se", "smd_n"]] = eff.to_numpy()
    return out
