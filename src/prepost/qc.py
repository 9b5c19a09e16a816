"""Sample-level quality control of one prepared dataset: PCA, correlations, distributions, a
pre/post pair-identity check and outlier flags.

The QC matrix is DESeq2's blind VST of the counts (``prepost.de.vst``) or the array log2 values as
they are; genes with a missing value in any sample are left out (their number is returned).

Rules (documented here, stated in the output tables):

* PCA as DESeq2's ``plotPCA``: the ``N_TOP`` (500) genes with the largest variance across
  samples, centred per gene, not scaled; singular value decomposition; percent of variance =
  squared singular value / sum. Each component's sign is fixed so its largest-magnitude
  loading is positive (deterministic output).
* Pair identity: each post sample is compared with every pre sample by the Pearson correlation
  of gene-centred values over the same top-variable genes (centring removes the gene means that
  make every raw correlation ~0.99 and leaves the patient-specific deviations). The post sample
  should be most similar to its own patient's pre sample; ``flag`` is set when another
  patient's pre sample correlates better (own-pre rank > 1). Two swapped post labels flag both.
* Outliers: for each sample the median Pearson correlation with every other sample over all
  complete genes of the QC matrix (not centred); a sample is an outlier when its median is below
  Q1 - 3 IQR of the medians of all samples (Tukey's "far out" lower fence; quantiles as numpy
  "linear", R type 7). Needs at least 4 samples; with fewer no sample is flagged. Why 3 and not
  1.5 IQR: medians of correlations are tightly packed and skewed, so in simulated clean cohorts
  (tests/test_qc.py's generator, 8-60 samples, 40 cohorts each) the 1.5 IQR fence flagged
  14-23 samples per 40 cohorts, the 3 IQR fence 0-3; both flagged every sample given extra
  noise of SD 1 (vs patient-profile SD 1).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.style
import numpy as np
import pandas as pd

from prepost import io
from prepost.plots import DPI, RESPONSE_COLOURS, RESPONSE_LABELS, _complete_pairs, _new_figure, _save

log = logging.getLogger(__name__)

N_TOP = 500
FENCE = 3.0
OUTLIER_RULE = "median correlation with the other samples < Q1 - 3 IQR of all samples' medians"
IDENTITY_RULE = "own pre sample is not the best-correlated pre sample (gene-centred Pearson, top variable genes)"
PAIR_COLUMNS = [
    "post_sample", "patient", "best_pre_sample", "best_pre_patient", "own_pre_sample",
    "corr_own_pre", "corr_best", "own_pre_rank", "n_pre", "flag",
]
SAMPLE_COLUMNS = [
    "sample", "patient", "timepoint", "response", "library_size", "median_correlation",
    "outlier_threshold", "outlier", "pair_identity", "PC1", "PC2", "rule",
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


def qc_matrix(data: pd.DataFrame, values: str) -> tuple[pd.DataFrame, int]:
    """VST of counts or the log2 values; genes with any non-finite value dropped (and counted)."""
    if values == "counts":
        from prepost.de.vst import vst

        mat = vst(data)
    elif values == "log2":
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


def pair_identity(mat: pd.DataFrame, sheet: pd.DataFrame, n_top: int = N_TOP) -> pd.DataFrame:
    """For each paired post sample: its best-correlated pre sample and the rank of its own."""
    pairs = _complete_pairs(mat, sheet, "pair identity")
    if pairs.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    top = top_variable(mat, n_top)
    centred = top.sub(top.mean(axis=1), axis=0)
    pre = list(pairs["pre"])
    post = list(pairs["post"])
    c = _corr(centred[pre + post].to_numpy())[len(pre):, : len(pre)]  # post x pre
    c = np.nan_to_num(c, nan=-np.inf)
    best = np.argmax(c, axis=1)  # first maximum: the earlier patient in sorted order
    own = np.arange(len(post))
    rank = 1 + np.sum(c > c[own, own][:, None], axis=1)
    patients = list(pairs.index.astype(str))
    out = pd.DataFrame({
        "post_sample": post,
        "patient": patients,
        "best_pre_sample": [pre[i] for i in best],
        "best_pre_patient": [patients[i] for i in best],
        "own_pre_sample": pre,
        "corr_own_pre": c[own, own],
        "corr_best": c[own, best],
        "own_pre_rank": rank,
        "n_pre": len(pre),
        "flag": rank > 1,
    })
    return out[PAIR_COLUMNS]


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


def qc_dataset(data: pd.DataFrame, values: str, sheet: pd.DataFrame, n_top: int = N_TOP) -> QcResult:
    """All QC numbers of one dataset (no files)."""
    sheet = sheet.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    missing = [s for s in data.columns.astype(str) if s not in set(sheet["sample"])]
    if missing:
        raise ValueError(f"qc: expression sample(s) {missing[:5]} are not in the sample sheet")
    data = data.copy()
    data.columns = data.columns.astype(str)
    mat, dropped = qc_matrix(data, values)
    scores, frac = pca(mat, n_top)
    ident = pair_identity(mat, sheet, n_top)
    out = correlation_outliers(mat)
    s = sheet.set_index("sample").reindex(mat.columns)
    samples = pd.DataFrame({
        "sample": mat.columns,
        "patient": s["patient"].to_numpy(),
        "timepoint": s["timepoint"].to_numpy(),
        "response": s["response"].to_numpy() if "response" in s else np.nan,
        "library_size": data.sum(axis=0).reindex(mat.columns).to_numpy() if values == "counts" else np.nan,
    })
    samples = samples.join(out, on="sample")
    flag = ident.set_index("post_sample")["flag"] if len(ident) else pd.Series(dtype=bool)
    samples["pair_identity"] = samples["sample"].map(
        lambda x: ("mismatch" if flag[x] else "ok") if x in flag.index else ""
    )
    samples["PC1"] = scores["PC1"].to_numpy()
    samples["PC2"] = scores["PC2"].to_numpy() if "PC2" in scores else np.nan
    samples["rule"] = OUTLIER_RULE
    top = top_variable(mat, n_top)
    corr = pd.DataFrame(_corr(top.to_numpy()), index=mat.columns, columns=mat.columns)
    info = {
        "samples": int(mat.shape[1]),
        "genes_used": int(mat.shape[0]),
        "genes_dropped_missing": dropped,
        "top_genes": int(len(top)),
        "outliers": samples.loc[samples["outlier"], "sample"].tolist(),
        "identity_mismatches": ident.loc[ident["flag"], "post_sample"].tolist() if len(ident) else [],
    }
    return QcResult(mat, values, scores, frac, ident, samples[SAMPLE_COLUMNS], corr, dropped, info)


# ---------------------------------------------------------------------------------------------
# plots (deterministic: prepost.plots conventions)
# ---------------------------------------------------------------------------------------------
def _order(sheet: pd.DataFrame, samples: list[str]) -> list[str]:
    s = sheet.assign(sample=sheet["sample"].astype(str)).set_index("sample").reindex(samples)
    tp = s["timepoint"].map({"pre": 0, "post": 1}).fillna(2)
    key = pd.DataFrame({"patient": s["patient"].astype(str).to_numpy(), "tp": tp.to_numpy(),
                        "sample": samples})
    return list(key.sort_values(["patient", "tp", "sample"], kind="mergesort")["sample"])


def _labels(sheet: pd.DataFrame, samples: list[str]) -> list[str]:
    s = sheet.assign(sample=sheet["sample"].astype(str)).set_index("sample")
    return [f"{s.at[x, 'patient']} {s.at[x, 'timepoint']}" if x in s.index else x for x in samples]


def pca_plot(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """PC1 vs PC2; a grey line joins each patient's pre and post; flagged samples labelled."""
    with matplotlib.style.context("default"):
        fig = _new_figure(6.4, 5.2, dpi)
        ax = fig.add_subplot()
        sc = res.scores
        pc2 = sc["PC2"] if "PC2" in sc else pd.Series(0.0, index=sc.index)
        pairs = _complete_pairs(res.matrix, sheet, "PCA plot")
        for _, row in pairs.iterrows():
            ax.plot([sc.at[row["pre"], "PC1"], sc.at[row["post"], "PC1"]],
                    [pc2[row["pre"]], pc2[row["post"]]], color="0.6", lw=0.8, zorder=1)
        s = res.samples.set_index("sample")
        resp = s["response"].fillna("unknown").astype(str).where(
            lambda r: r.isin(list(RESPONSE_COLOURS)), "unknown")
        for tp, marker in (("pre", "o"), ("post", "^"), ("other", "s")):
            m = s["timepoint"].eq(tp) if tp != "other" else ~s["timepoint"].isin(["pre", "post"])
            for r in RESPONSE_COLOURS:
                mm = (m & resp.eq(r)).to_numpy()
                if mm.any():
                    ax.scatter(sc["PC1"].to_numpy()[mm], pc2.to_numpy()[mm], marker=marker, s=36,
                               c=RESPONSE_COLOURS[r], edgecolors="black", linewidths=0.4, zorder=2,
                               label=f"{tp}, {RESPONSE_LABELS[r]}")
        flagged = s.index[s["outlier"] | s["pair_identity"].eq("mismatch")]
        for x in flagged:
            ax.annotate(x, (sc.at[x, "PC1"], pc2[x]), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color="#D55E00")
        v = res.percent_var
        ax.set_xlabel(f"PC1 ({100 * v[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * v[1]:.1f}% of variance)" if len(v) > 1 else "PC2")
        ax.set_title(f"{title}\nPCA, top {res.info['top_genes']} variable genes; lines join a patient's samples",
                     fontsize=9)
        ax.legend(fontsize=7, loc="best", frameon=True, framealpha=0.9)
        _save(fig, dest, dpi)
    return {"samples": int(len(sc)), "pairs": int(len(pairs)), "labelled": list(flagged)}


def correlation_heatmap(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Sample-sample Pearson correlation (top variable genes), samples ordered by patient."""
    order = _order(sheet, list(res.correlation.index))
    c = res.correlation.loc[order, order].to_numpy()
    n = len(order)
    size = min(3.0 + 0.18 * n, 16.0)
    with matplotlib.style.context("default"):
        fig = _new_figure(size + 1.2, size, dpi)
        ax = fig.add_subplot()
        im = ax.imshow(c, cmap="viridis", interpolation="nearest", aspect="equal")
        if n <= 80:
            labels = _labels(sheet, order)
            fs = 7 if n <= 40 else 5
            ax.set_xticks(range(n), labels, rotation=90, fontsize=fs)
            ax.set_yticks(range(n), labels, fontsize=fs)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson correlation")
        ax.set_title(f"{title}\nsample correlation, top {res.info['top_genes']} variable genes", fontsize=9)
        _save(fig, dest, dpi)
    return {"samples": n}


def distribution_plot(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Boxplot of each sample's QC values (VST or log2); whiskers at 1.5 IQR, no fliers."""
    order = _order(sheet, list(res.matrix.columns))
    n = len(order)
    with matplotlib.style.context("default"):
        fig = _new_figure(min(3.0 + 0.25 * n, 24.0), 4.0, dpi)
        ax = fig.add_subplot()
        ax.boxplot([res.matrix[x].to_numpy() for x in order], showfliers=False, widths=0.6,
                   medianprops={"color": "#D55E00"})
        ax.set_xticks(range(1, n + 1), _labels(sheet, order) if n <= 120 else [""] * n,
                      rotation=90, fontsize=6 if n > 40 else 7)
        ax.set_ylabel("VST (log2 scale)" if res.values == "counts" else "log2 expression")
        ax.set_title(f"{title}\nper-sample distribution ({res.info['genes_used']} genes)", fontsize=9)
        _save(fig, dest, dpi)
    return {"samples": n}


def library_size_plot(data: pd.DataFrame, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Total counts per sample, in millions."""
    data = data.copy()
    data.columns = data.columns.astype(str)
    order = _order(sheet, list(data.columns))
    lib = data[order].sum(axis=0) / 1e6
    n = len(order)
    with matplotlib.style.context("default"):
        fig = _new_figure(min(3.0 + 0.25 * n, 24.0), 3.6, dpi)
        ax = fig.add_subplot()
        ax.bar(range(n), lib.to_numpy(), color="#0072B2", width=0.7)
        ax.set_xticks(range(n), _labels(sheet, order) if n <= 120 else [""] * n,
                      rotation=90, fontsize=6 if n > 40 else 7)
        ax.set_ylabel("library size (million counts)")
        ax.set_title(f"{title}\nlibrary sizes", fontsize=9)
        _save(fig, dest, dpi)
    return {"samples": n, "min": float(lib.min()), "max": float(lib.max())}


def run_qc(expression_path, samples_path, summary_path, title: str, *, samples_qc, pair_identity_out,
           pca_png, correlation_png, distribution_png, library_size_png=None) -> dict:
    """Read a prepared dataset, write the QC tables and plots; returns QcResult.info."""
    summary = json.loads(Path(summary_path).read_text())
    values = summary.get("values")
    data = pd.read_parquet(expression_path)
    sheet = io.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    res = qc_dataset(data, values, sheet)
    ident = res.pair_identity.copy()
    io.write_tsv(ident, pair_identity_out)
    io.write_tsv(res.samples, samples_qc)
    pca_plot(res, sheet, pca_png, title)
    correlation_heatmap(res, sheet, correlation_png, title)
    distribution_plot(res, sheet, distribution_png, title)
    if library_size_png:
        if values != "counts":
            raise ValueError(f"{summary_path}: library sizes need counts; this dataset has {values!r}")
        library_size_plot(data, sheet, library_size_png, title)
    log.info("qc %s: %s", title, res.info)
    return res.info


def run_library_size(expression_path, samples_path, summary_path, title: str, dest) -> dict:
    """Library-size bar plot of a prepared count dataset."""
    values = json.loads(Path(summary_path).read_text()).get("values")
    if values != "counts":
        raise ValueError(f"{summary_path}: library sizes need counts; this dataset has {values!r}")
    data = pd.read_parquet(expression_path)
    sheet = io.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    return library_size_plot(data, sheet, dest, title)
