"""Sample-level quality control of one prepared dataset: PCA, correlations, distributions, a
pre/post pair-identity check and outlier flags.

The QC matrix is DESeq2's blind varianceStabilizingTransformation of the counts (``prepost.de.vst``,
every gene in the dispersion trend; not ``vst()``'s 1,000-gene subset: on real GSE91061 the subset's
trend moves VST values by up to 2.6 log2 units and changes the outlier flags of 4 samples and the
pair-identity flags of 2 pairs, and the QC rules were validated on the full transform) or the
array log2 values as they are; genes with a missing value in any sample are left out (their number is returned).

Rules (documented here, stated in the output tables):

* PCA as DESeq2's ``plotPCA``: the ``N_TOP`` (500) genes with the largest variance across
  samples, centred per gene, not scaled; singular value decomposition; percent of variance =
  squared singular value / sum. Each component's sign is fixed so its largest-magnitude
  loading is positive (deterministic output).
* Outliers: robust distances on principal components of the samples and of the pairs'
  differences (prepost.qc.outliers), or the correlation rule below; pair identity, expressed
  sex and foreign reads: prepost.qc.identity; ``qc_flags`` sums every flag up in words.
* PC associations: which sample-sheet fields explain PC1-5 (``pc_associations``).
* The correlation rule: for each sample the median Pearson correlation with every other sample over all
  complete genes of the QC matrix (not centred); a sample is an outlier when its median is below
  Q1 - 3 IQR of the medians of all samples (Tukey's "far out" lower fence; quantiles as numpy
  "linear", R type 7). Needs at least 4 samples; with fewer no sample is flagged. Why 3 and not
  1.5 IQR: medians of correlations are tightly packed and skewed, so in simulated clean cohorts
  (tests/test_qc.py's generator, 8-60 samples, 40 cohorts each) the 1.5 IQR fence flagged
  14-23 samples per 40 cohorts, the 3 IQR fence 0-3; both flagged every sample given extra
  noise of SD 1 (vs patient-profile SD 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


from prepost.de.vst import vst
from prepost.prepare.pairing import complete_pairs
from prepost.qc import identity as idn
from prepost.qc import outliers as out_rules
from prepost.stats import count_values, size_factors
from prepost.vocabulary import COUNTS, LOG2

log = logging.getLogger(__name__)

N_TOP = 500
FENCE = 3.0
OUTLIER_RULE = ("outlier: robust distance of the sample or of its pair's post - pre difference (prepost.qc.outliers), or median correlation with the other samples < Q1 - 3 IQR")
SAMPLE_COLUMNS = [
    "sample", "patient", "timepoint", "response", "library_size", "qc_flags", "outlier",
    "distance_outlier", "pair_rule", "distance_reason", "score_distance", "sd_cutoff",
    "orthogonal_distance", "od_cutoff", "correlation_outlier", "median_correlation",
    "outlier_threshold", "pair_identity", "sex_expr", "sex_sheet", "sex_mismatch", "y_score",
    "xist", "foreign_share", "n_foreign_genes", "foreign_genes", "contamination", "PC1", "PC2",
    "rule",
]


@dataclass
class QcResult:
    matrix: pd.DataFrame  # QC values (VST or log2), complete genes x samples
    values: str
    scores: pd.DataFrame  # samples x PCs
    percent_var: np.ndarray
    pair_identity: pd.DataFrame
    samples: pd.DataFrame
    correlation: pd.DataFrame  # samples x samples, on the top variable genes (not centred)
    dropped_genes: int = 0
    info: dict = field(default_factory=dict)
    pair_rule: pd.DataFrame | None = None  # prepost.qc.outliers.pair_outliers
    associations: pd.DataFrame | None = None  # pc_associations


def qc_matrix(data: pd.DataFrame, values: str) -> tuple[pd.DataFrame, int]:
    """VST of counts or the log2 values; genes with any non-finite value dropped (and counted)."""
    if values == COUNTS:
        mat = vst(data)
    elif values == LOG2:
        mat = data.astype(float)
    else:
        raise ValueError(f"qc: values must be 'counts' or 'log2', got {values!r}")
    complete = np.isfinite(mat.to_numpy()).all(axis=1)
    if complete.sum() < 2:
        raise ValueError(
            f"qc: only {int(complete.sum())} gene(s) have a finite value in every sample; need >= 2"
        )
    return mat.loc[complete], int((~complete).sum())


def top_variable(mat: pd.DataFrame, n_top: int = N_TOP) -> pd.DataFrame:
    """The n_top rows with the largest sample variance (ties: first row first, as R's order)."""
    rv = mat.to_numpy().var(axis=1, ddof=1)
    order = np.argsort(-rv, kind="stable")[: min(n_top, len(rv))]
    return mat.iloc[order]


def pca(mat: pd.DataFrame, n_top: int = N_TOP) -> tuple[pd.DataFrame, np.ndarray]:
    """plotPCA's PCA: samples x components scores and the fraction of variance per component."""
    x = top_variable(mat, n_top).to_numpy().T  # samples x genes
    x = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(x.shape) - 1 if min(x.shape) > 1 else 1  # the last component of centred data is 0
    u, s, vt = u[:, :k], s[:k], vt[:k]
    sign = np.sign(vt[np.arange(k), np.argmax(np.abs(vt), axis=1)])
    sign[sign == 0] = 1
    scores = u * s * sign
    total = np.sum(s**2)
    frac = s**2 / total if total > 0 else np.zeros_like(s)
    cols = [f"PC{i + 1}" for i in range(k)]
    return pd.DataFrame(scores, index=mat.columns, columns=cols), frac


def _corr(x: np.ndarray) -> np.ndarray:
    """Pearson correlation between the columns of x (genes x samples)."""
    z = x - x.mean(axis=0)
    norm = np.sqrt(np.sum(z * z, axis=0))
    norm[norm == 0] = np.nan
    z = z / norm
    return z.T @ z


def correlation_outliers(mat: pd.DataFrame) -> pd.DataFrame:
    """Median correlation with the other samples and the Tukey lower-fence outlier flag."""
    c = _corr(mat.to_numpy())
    n = c.shape[0]
    off = c[~np.eye(n, dtype=bool)].reshape(n, n - 1) if n > 1 else np.full((n, 1), np.nan)
    med = np.median(off, axis=1)
    if n >= 4:
        q1, q3 = np.quantile(med, [0.25, 0.75])
        threshold = q1 - FENCE * (q3 - q1)
        flag = med < threshold
    else:
        threshold, flag = np.nan, np.zeros(n, dtype=bool)
    return pd.DataFrame(
        {"median_correlation": med, "outlier_threshold": threshold, "outlier": flag},
        index=mat.columns,
    )


def pc_associations(scores: pd.DataFrame, sheet: pd.DataFrame, n_pcs: int = 5) -> pd.DataFrame:
    """Which sample fields explain PC1-5: per field and PC, R² of a linear model (numeric field:
    squared Pearson correlation; categorical: one-way ANOVA, eta²) and its F-test p-value.
    Fields: sample sheet columns with 2..n-1 distinct non-missing values (numeric columns with
    >= 3 values taken as numbers), excluding ids, URLs and free text that is unique per sample."""
    from scipy import stats as st  # here, not at the top: scipy.stats costs 0.6 s of every job

    s = sheet.set_index("sample").reindex(scores.index)
    pcs = [c for c in scores.columns[:n_pcs]]
    rows = []
    skip = {"sample", "title", "geo_accession", "in_pair", "usable"}
    for col in s.columns:
        if col in skip or str(col).startswith("supplementary_file"):
            continue
        v = s[col]
        ok = v.notna() & (v.astype(str).str.strip() != "")
        nun = v[ok].astype(str).nunique()
        if ok.sum() < 4 or nun < 2 or (nun >= ok.sum() and not pd.api.types.is_numeric_dtype(v)):
            continue
        num = pd.to_numeric(v[ok], errors="coerce")
        numeric = num.notna().all() and nun >= 3
        for pc in pcs:
            y = scores.loc[ok.to_numpy(), pc].to_numpy(float)
            if numeric:
                r, p = st.pearsonr(num.to_numpy(float), y)
                r2, kind = r * r, "numeric"
            else:
                groups = [y[(v[ok].astype(str) == g).to_numpy()] for g in sorted(v[ok].astype(str).unique())]
                if len(groups) >= len(y):
                    continue
                ss_tot = np.sum((y - y.mean()) ** 2)
                ss_b = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in groups)
                r2 = ss_b / ss_tot if ss_tot > 0 else np.nan
                p = st.f_oneway(*groups).pvalue if all(len(g) > 0 for g in groups) else np.nan
                kind = f"categorical ({len(groups)} levels)"
            rows.append({"field": str(col), "pc": pc, "r2": float(r2), "pvalue": float(p),
                         "kind": kind, "n": int(ok.sum())})
    return pd.DataFrame(rows, columns=["field", "pc", "r2", "pvalue", "kind", "n"])


def qc_dataset(data: pd.DataFrame, values: str, sheet: pd.DataFrame, n_top: int = N_TOP) -> QcResult:
    """All QC numbers of one dataset (no files): PCA, correlations, distance and correlation
    outliers (prepost.qc.outliers), expressed sex, pair identity and foreign reads
    (prepost.qc.identity), PC-field associations."""
    sheet = sheet.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    missing = [s for s in data.columns.astype(str) if s not in set(sheet["sample"])]
    if missing:
        raise ValueError(f"qc: expression sample(s) {missing[:5]} are not in the sample sheet")
    data = data.copy()
    data.columns = data.columns.astype(str)
    mat, dropped = qc_matrix(data, values)
    norm = None
    if values == COUNTS:
        raw = count_values(data)
        sf = size_factors(raw)
        norm = pd.DataFrame(raw / sf, index=data.index, columns=data.columns)
    scores, frac = pca(mat, n_top)
    pairs = complete_pairs(mat, sheet, "pair identity")
    dist, pair_rule = out_rules.sample_outliers(
        out_rules.expressed(mat, norm.mean(axis=1) if norm is not None else None), sheet, pairs
    )
    corr_out = correlation_outliers(mat)
    sex = idn.expressed_sex(mat, norm)
    ident = idn.pair_identity(mat, pairs, sex, norm)
    s = sheet.set_index("sample").reindex(mat.columns)
    samples = pd.DataFrame({
        "sample": mat.columns,
        "patient": s["patient"].to_numpy(),
        "timepoint": s["timepoint"].to_numpy(),
        "response": s["response"].to_numpy() if "response" in s else np.nan,
        "library_size": data.sum(axis=0).reindex(mat.columns).to_numpy() if values == COUNTS else np.nan,
    })
    samples = samples.join(corr_out.rename(columns={"outlier": "correlation_outlier"}), on="sample")
    samples = samples.join(dist.drop(columns=["patient"]), on="sample")
    samples["outlier"] = samples["correlation_outlier"] | samples["distance_outlier"]
    samples = samples.join(sex, on="sample")
    samples["sex_sheet"] = samples["sample"].map(idn.sheet_sex(sheet))
    called = samples["sex_expr"].isin(["male", "female"]) & samples["sex_sheet"].notna()
    samples["sex_mismatch"] = called & (samples["sex_expr"] != samples["sex_sheet"])
    if norm is not None:
        samples = samples.join(idn.foreign_reads(data.loc[:, mat.columns], norm.loc[:, mat.columns]), on="sample")
    else:
        samples["foreign_share"], samples["foreign_genes"] = np.nan, ""
        samples["n_foreign_genes"], samples["contamination"] = 0, False
    flagged_pairs = ident[ident["flag"]] if len(ident) else ident
    mismatch = set(flagged_pairs["post_sample"]) | set(flagged_pairs["own_pre_sample"])
    samples["pair_identity"] = samples["sample"].map(
        lambda x: "mismatch" if x in mismatch else ("ok" if x in set(pairs["pre"]) | set(pairs["post"]) else "")
    )
    samples["PC1"] = scores["PC1"].to_numpy()
    samples["PC2"] = scores["PC2"].to_numpy() if "PC2" in scores else np.nan
    samples["qc_flags"] = [_flags(r) for r in samples.itertuples()]
    samples["rule"] = OUTLIER_RULE
    top = top_variable(mat, n_top)
    corr = pd.DataFrame(_corr(top.to_numpy()), index=mat.columns, columns=mat.columns)
    info = {
        "samples": int(mat.shape[1]),
        "genes_used": int(mat.shape[0]),
        "genes_dropped_missing": dropped,
        "top_genes": int(len(top)),
        "outliers": samples.loc[samples["outlier"], "sample"].tolist(),
        "identity_mismatches": flagged_pairs["post_sample"].tolist() if len(ident) else [],
        "identity_basis": ident["basis"].iloc[0] if len(ident) else "",
        "flagged": samples.loc[samples["qc_flags"] != "", "sample"].tolist(),
    }
    return QcResult(mat, values, scores, frac, ident, samples[SAMPLE_COLUMNS], corr, dropped, info,
                    pair_rule, pc_associations(scores, sheet))


def _flags(r) -> str:
    """The sample's QC flags as one readable string ("" when none)."""
    out = []
    if r.distance_outlier:  # a patient-level deviation is in distance_reason, not a flag
        out.append(f"outlier: {r.distance_reason}")
    if r.correlation_outlier:
        out.append("outlier: median correlation below the Tukey far-out fence")
    if r.pair_identity == "mismatch":
        out.append("pair identity: pre and post may not be one patient's")
    if r.sex_mismatch:
        out.append(f"sex: expressed {r.sex_expr}, sample sheet {r.sex_sheet}")
    if r.contamination:
        out.append(f"foreign reads {100 * r.foreign_share:.1f}% ({r.foreign_genes})")
    return "; ".join(out)
