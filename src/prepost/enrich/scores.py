"""Per-sample gene-set scores and their paired test (post - pre within each patient).

Counts are scored on log2(count / size factor + 1) (prepost.stats: DESeq2's median-of-ratios
factors, preferred to CPM: with strong treatment shifts CPM moves every other gene the opposite
way, which shows up as spurious set changes).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost.enrich import genesets as gs
from prepost.stats import bh_adjust as bh


PAIRED_COLUMNS = [
    "set", "group", "n_pairs", "mean_pre", "mean_post", "mean_diff", "sd_diff", "t",
    "p_ttest", "p_wilcoxon", "padj_ttest", "n_up", "n_down",
]  # fmt: skip


def set_scores(
    expr: pd.DataFrame, sets: pd.DataFrame, *, method: str = "zmean", min_size: int = 5, threads: int = 1
) -> pd.DataFrame:
    """Per-sample set score, tidy: sample, set, score, n_genes.

    ``zmean``: each gene is z-scored across samples (so highly expressed genes do not dominate),
    then averaged over the set's genes present in that sample (a missing value leaves out only
    that cell; constant genes are left out). Sets with < ``min_size`` scored genes are dropped.
    ``ssgsea``: gseapy's single-sample GSEA NES (rank-normalised). ``expr`` must be log-scale
    (log2 array values; for counts use ``prepost.stats.normalised_log2`` or a VST).
    """
    expr = expr.astype(float)
    if method == "zmean":
        mu = expr.mean(axis=1)
        sd = expr.std(axis=1, ddof=1)
        z = expr.sub(mu, axis=0).div(sd.where(sd > 0), axis=0)
        z = z[z.notna().any(axis=1)]  # constant genes carry no information
        names, mat = gs.membership(sets, z.index)
        n = mat.sum(axis=1)
        keep = n >= min_size
        w = mat[keep].astype(float)
        present = z.notna().to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):  # a missing value drops only that cell
            scores = (w @ z.fillna(0.0).to_numpy()) / (w @ present)
        wide = pd.DataFrame(scores, index=names[keep], columns=expr.columns)
        n_genes = pd.Series(n[keep], index=names[keep])
    elif method == "ssgsea":
        import gseapy

        logging.getLogger("gseapy").setLevel(logging.WARNING)
        # genes with a missing value are dropped: gseapy would fill NA with 0, a real log2 value
        res = gseapy.ssgsea(
            data=expr.dropna(), gene_sets=gs.to_dict(sets), outdir=None, min_size=min_size,
            threads=threads, no_plot=True, verbose=False,
        )  # fmt: skip
        wide = res.res2d.pivot(index="Term", columns="Name", values="NES").astype(float)
        wide = wide.reindex(columns=expr.columns)
        n_genes = (
            sets[sets["gene"].isin(expr.dropna().index)].groupby("set")["gene"].nunique().reindex(wide.index)
        )
    else:
        raise ValueError(f"set score method must be 'zmean' or 'ssgsea', got {method!r}")
    wide.index.name = "set"
    wide.columns.name = "sample"
    tidy = wide.stack().rename("score").reset_index()
    tidy["n_genes"] = tidy["set"].map(n_genes).astype(int)
    return tidy[["sample", "set", "score", "n_genes"]]


def paired_set_test(
    scores: pd.DataFrame, samples: pd.DataFrame, *, by: str | None = None, ref: str = "pre", alt: str = "post"
) -> pd.DataFrame:
    """Per set: within-patient change of the score (alt - ref), paired t and Wilcoxon p.

    ``samples``: sample sheet with ``patient`` and ``timepoint`` (index or column ``sample``);
    only patients with exactly one ref and one alt sample are used. With ``by`` (e.g.
    ``"response"``), results are also given per level of that column (group "all" first).
    BH (``padj_ttest``) is over sets within a group.
    """
    sheet = samples.set_index("sample") if "sample" in samples.columns else samples
    for col in ["patient", "timepoint"] + ([by] if by else []):
        if col not in sheet.columns:
            raise KeyError(f"sample sheet lacks column {col!r}")
    sheet = sheet[sheet["timepoint"].isin([ref, alt])]
    counts = sheet.groupby(["patient", "timepoint"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[ref, alt], fill_value=0)
    complete = counts.index[(counts[ref] == 1) & (counts[alt] == 1)]
    sheet = sheet[sheet["patient"].isin(complete)]
    wide = scores.pivot(index="set", columns="sample", values="score")
    long = sheet.rename_axis("sample").reset_index()
    pairs = long.pivot(index="patient", columns="timepoint", values="sample")
    pairs = pairs[pairs[ref].isin(wide.columns) & pairs[alt].isin(wide.columns)]
    pre = wide[pairs[ref].to_numpy()].to_numpy()
    post = wide[pairs[alt].to_numpy()].to_numpy()
    patient_group = sheet.drop_duplicates("patient").set_index("patient")[by] if by else None

    groups = [("all", np.ones(len(pairs), dtype=bool))]
    if by:
        g = patient_group.reindex(pairs.index)
        groups += [(str(level), (g == level).to_numpy()) for level in sorted(g.dropna().unique())]
    frames = []
    for name, mask in groups:
        frames.append(_paired_stats(wide.index, pre[:, mask], post[:, mask], name))
    return pd.concat(frames, ignore_index=True)[PAIRED_COLUMNS]


def _paired_stats(names: pd.Index, pre: np.ndarray, post: np.ndarray, group: str) -> pd.DataFrame:
    d = post - pre
    n = d.shape[1]
    sd = d.std(axis=1, ddof=1) if n > 1 else np.full(len(names), np.nan)
    mean = d.mean(axis=1) if n else np.full(len(names), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / np.sqrt(n))
    p_t = 2 * D.t_sf(np.abs(t), n - 1) if n > 1 else np.full(len(names), np.nan)
    if n >= 2:
        from scipy import stats  # here, not at the top: scipy.stats costs 0.6 s of every job

        p_w = np.array([stats.wilcoxon(row).pvalue if np.any(row != 0) else 1.0 for row in d])
    else:
        p_w = np.full(len(names), np.nan)
    return pd.DataFrame(
        {
            "set": names.astype(str),
            "group": group,
            "n_pairs": n,
            "mean_pre": pre.mean(axis=1) if n else np.nan,
            "mean_post": post.mean(axis=1) if n else np.nan,
            "mean_diff": mean,
            "sd_diff": sd,
            "t": t,
            "p_ttest": p_t,
            "p_wilcoxon": p_w,
            "padj_ttest": bh(p_t),
            "n_up": (d > 0).sum(axis=1),
            "n_down": (d < 0).sum(axis=1),
        }
    )
