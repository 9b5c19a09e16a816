"""Outlier samples: robust distances on principal components, for a lone sample or a cluster.

Why not the correlation rule alone: a group of 5-10 % of samples from another tissue or degraded
libraries pulls the quartiles of the median correlations with it, so a fence on them misses the
group (tests/test_qc_rules.py shows it). The rule here is ROBPCA's outlier map (Hubert,
Rousseeuw & Vanden Branden 2005, Technometrics 47:64; R rrcov::PcaHubert's diagnostic plot),
computed on two kinds of units:

* **pairs**: the post - pre difference of each complete pair. The patient block removes what is
  constant within a patient (subtype, germline, most of the tumour's composition), so a defect
  in one of the two samples stands out far more than in the raw data. A flagged pair is
  attributed to the sample farther from the cohort along the pair's deviation (robust z of every
  sample's projection on it); the partner is not flagged.
* **samples**: every sample, raw. It covers samples without a partner. When both samples of a
  patient are flagged by this rule only, the deviation is patient-level (biology shared by both
  biopsies, absorbed by the patient block of every paired model) and is reported, not flagged.

On each, PCA of the centred QC matrix over the expressed genes (counts: mean normalised
count >= 50; arrays: every complete gene), K = 5 components (fewer when there are fewer than
15 units). Score distance: squared Mahalanobis distance of the K scores under the minimum
covariance determinant estimate (scikit-learn MinCovDet, 75 % support, fixed random_state),
flagged above SD_FACTOR x the chi-square(K) 0.999 quantile. Orthogonal distance (the part of a
unit off the K-component plane): flagged above (median + OD_Z x MAD) of OD^(2/3), to the power
3/2 (ROBPCA's Wilson-Hilferty cutoff). Thresholds were chosen on tests' and benchmarks/qc's
simulations (prepost.qc.simulate: clean cohorts with subtypes and tumour-composition
programmes), never on real data; benchmarks/qc/rates.py reports the rates they give.
Needs at least MIN_UNITS (20) units: on clean simulated cohorts of 10-15 pairs the pair rule
flagged 3-5 % of samples (MCD on so few units is unstable), at 20 pairs 0.2 %; with fewer units
nothing is flagged by that kind and the correlation rule alone remains.

The correlation rule of prepost.qc.samples (median correlation below Q1 - 3 IQR) is kept
beside it for a lone noisy library.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from prepost import distributions as D

K_MAX = 5
MIN_UNITS = 20
SUPPORT = 0.75
SD_QUANTILE = 0.999
SD_FACTOR = 5.0
OD_Z = 8.0
MIN_MEAN_COUNT = 50.0

PAIR_COLUMNS = ["patient", "pre", "post", "score_distance", "sd_cutoff", "orthogonal_distance",
                "od_cutoff", "flag", "attributed_to", "attribution_z"]


def expressed(mat: pd.DataFrame, norm_mean: pd.Series | None) -> pd.DataFrame:
    """The genes the distances use: normalised mean count >= MIN_MEAN_COUNT when counts."""
    if norm_mean is None:
        return mat
    keep = norm_mean.reindex(mat.index).fillna(0).to_numpy() >= MIN_MEAN_COUNT
    return mat.loc[keep] if keep.sum() >= 2 * K_MAX else mat


def _mad(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def robust_distances(x: np.ndarray, k_max: int = K_MAX) -> pd.DataFrame:
    """Score and orthogonal distances of the rows of x (units x genes) and their cutoffs."""
    n = x.shape[0]
    out = pd.DataFrame({"score_distance": np.nan, "sd_cutoff": np.nan,
                        "orthogonal_distance": np.nan, "od_cutoff": np.nan,
                        "flag": False}, index=range(n))
    if n < MIN_UNITS:
        return out
    k = int(min(k_max, max(1, (n - 1) // 3)))
    xc = x - np.median(x, axis=0)  # robust centre per gene
    u, s, vt = np.linalg.svd(xc - xc.mean(axis=0), full_matrices=False)
    scores = xc @ vt[:k].T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MinCovDet warns on singular subsets of tiny cohorts
        from sklearn.covariance import MinCovDet  # here: 0.3 s of import for the QC job only

        mcd = MinCovDet(support_fraction=SUPPORT, random_state=0).fit(scores)
    sd2 = mcd.mahalanobis(scores)
    sd_cut = SD_FACTOR * D.chi2_ppf(SD_QUANTILE, k)
    resid = xc - scores @ vt[:k]
    resid -= np.median(resid, axis=0)
    od = np.sqrt(np.sum(resid**2, axis=1))
    t = od ** (2 / 3)
    od_cut = (np.median(t) + OD_Z * _mad(t)) ** 1.5
    out["score_distance"] = sd2
    out["sd_cutoff"] = sd_cut
    out["orthogonal_distance"] = od
    out["od_cutoff"] = od_cut
    out["flag"] = (sd2 > sd_cut) | (od > od_cut)
    return out


def pair_outliers(mat: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Robust distances of the pairs' post - pre differences; a flagged pair's defect attributed
    to the sample whose projection on the pair's deviation is farther from all samples'."""
    if len(pairs) < MIN_UNITS:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    x = mat.to_numpy(float)
    col = {s: i for i, s in enumerate(mat.columns)}
    pre = np.array([col[s] for s in pairs["pre"]])
    post = np.array([col[s] for s in pairs["post"]])
    diff = (x[:, post] - x[:, pre]).T
    rd = robust_distances(diff)
    dev = diff - np.median(diff, axis=0)
    norm = np.linalg.norm(dev, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    proj = (x.T - np.median(x, axis=1)) @ (dev / norm).T  # samples x pairs
    z = (proj - np.median(proj, axis=0)) / np.maximum([_mad(proj[:, j]) for j in range(proj.shape[1])], 1e-12)
    idx = np.arange(len(pairs))
    z_pre, z_post = np.abs(z[pre, idx]), np.abs(z[post, idx])
    attributed = np.where(z_post >= z_pre, pairs["post"].to_numpy(), pairs["pre"].to_numpy())
    return pd.DataFrame({
        "patient": pairs.index.astype(str),
        "pre": pairs["pre"].to_numpy(),
        "post": pairs["post"].to_numpy(),
        "score_distance": rd["score_distance"].to_numpy(),
        "sd_cutoff": rd["sd_cutoff"].to_numpy(),
        "orthogonal_distance": rd["orthogonal_distance"].to_numpy(),
        "od_cutoff": rd["od_cutoff"].to_numpy(),
        "flag": rd["flag"].to_numpy(),
        "attributed_to": np.where(rd["flag"], attributed, ""),
        "attribution_z": np.maximum(z_pre, z_post),
    })[PAIR_COLUMNS]


def sample_outliers(mat: pd.DataFrame, sheet: pd.DataFrame,
                    pairs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per sample: raw robust distances, the pair rule's attribution, and the outlier flag with
    its reason (see the module docstring)."""
    raw = robust_distances(mat.to_numpy(float).T)
    raw.index = mat.columns
    pr = pair_outliers(mat, pairs)
    by_pair = set(pr.loc[pr["flag"], "attributed_to"]) if len(pr) else set()
    s = sheet.set_index("sample").reindex(mat.columns)
    partner = {}
    for _, row in pairs.iterrows():
        partner[row["pre"]], partner[row["post"]] = row["post"], row["pre"]
    raw_flag = raw["flag"]
    reasons, flags = [], []
    for smp in mat.columns:
        why = []
        if smp in by_pair:
            why.append("pair difference far from the other pairs (robust distance)")
        if raw_flag[smp]:
            mate = partner.get(smp)
            if mate is not None and raw_flag.get(mate, False) and smp not in by_pair:
                why.append("patient-level: both samples of the patient deviate (not flagged)")
            else:
                why.append("far from the other samples (robust distance)")
        flag = any(not w.startswith("patient-level") for w in why)
        flags.append(flag)
        reasons.append("; ".join(why))
    return pd.DataFrame({
        "score_distance": raw["score_distance"].to_numpy(),
        "sd_cutoff": raw["sd_cutoff"].to_numpy(),
        "orthogonal_distance": raw["orthogonal_distance"].to_numpy(),
        "od_cutoff": raw["od_cutoff"].to_numpy(),
        "pair_rule": [smp in by_pair for smp in mat.columns],
        "distance_outlier": flags,
        "distance_reason": reasons,
        "patient": s["patient"].astype(str).to_numpy(),
    }, index=mat.columns), pr
