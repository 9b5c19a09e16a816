"""Pathway-level views of a paired contrast: prerank GSEA, over-representation, per-sample set
scores and their paired test.

All methods start from the patient-blocked results: prerank ranks genes by the DE statistic of
the paired model (moderated t / Wald), and set scores are tested per patient (post - pre). No
method permutes sample labels, which would break the pairing.

Gene sets are long tables (``prepost.genesets``), already harmonised to the data's identifiers.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from prepost import genesets as gs
from prepost.stats import bh_adjust as bh  # one BH for the package (as R p.adjust)

GSEA_COLUMNS = [
    "set",
    "size",
    "n_found",
    "es",
    "nes",
    "pvalue",
    "padj",
    "fdr_gsea",
    "log2err",
    "leading_edge",
]
ORA_COLUMNS = [
    "set", "direction", "n_found", "n_selected", "n_background", "overlap", "expected",
    "fold_enrichment", "pvalue", "padj", "genes",
]  # fmt: skip
PAIRED_COLUMNS = [
    "set", "group", "n_pairs", "mean_pre", "mean_post", "mean_diff", "sd_diff", "t",
    "p_ttest", "p_wilcoxon", "padj_ttest", "n_up", "n_down",
]  # fmt: skip


def _ranking(de: pd.DataFrame, stat: str) -> pd.Series:
    for col in ("gene", stat):
        if col not in de.columns:
            raise KeyError(f"DE table lacks column {col!r} (columns: {list(de.columns)})")
    r = de[["gene", stat]].dropna()
    if r["gene"].duplicated().any():
        dups = r.loc[r["gene"].duplicated(), "gene"].head(5).tolist()
        raise ValueError(f"DE table has duplicated genes, e.g. {dups}; one row per gene expected")
    return r.set_index("gene")[stat].astype(float)


def prerank(
    de: pd.DataFrame,
    sets: pd.DataFrame,
    *,
    stat: str = "stat",
    method: str = "multilevel",
    permutations: int = 1000,
    seed: int = 20261123,
    threads: int = 1,
    min_size: int = 5,
    max_size: int = 500,
    weight: float = 1.0,
) -> pd.DataFrame:
    """gseapy prerank on the paired-model statistic; one row per tested set.

    ``method="multilevel"`` (default) is gseapy 1.3.1's port of fgsea's adaptive multilevel
    p-value: p-values are not floored at 1/permutations and ``padj`` is BH over the tested sets
    (as fgsea). ``permutations`` then only sets the size of the random-gene-set null used to
    normalise ES into NES. ``method="permutation"`` is GSEA's gene-set permutation; its
    ``fdr_gsea`` is GSEA's own FDR q-value and p is floored at 0 (reported as 0, not 1/nperm).
    ``fdr_gsea`` is gseapy's FDR column either way; ``padj`` is always our BH of ``pvalue``.
    Sets with fewer than ``min_size`` genes in the ranking are not tested (absent from output).
    """
    import gseapy

    rnk = _ranking(de, stat)
    gene_sets = gs.to_dict(sets)
    size = {k: len(set(v)) for k, v in gene_sets.items()}
    in_rank = set(rnk.index)
    gene_sets = {k: list(dict.fromkeys(g for g in v if g in in_rank)) for k, v in gene_sets.items()}
    # gseapy upper-cases one side or the other by a majority vote; hand it uppercase ids on both
    # sides and map the leading edge back to the data's spelling.
    upper = rnk.index.str.upper()
    if upper.has_duplicates:
        raise ValueError(
            f"DE genes differ only by case, e.g. {list(rnk.index[upper.duplicated(keep=False)][:4])}"
        )
    back = dict(zip(upper, rnk.index))
    rnk.index = upper
    gene_sets = {k: [g.upper() for g in v] for k, v in gene_sets.items()}
    logging.getLogger("gseapy").setLevel(logging.WARNING)
    res = gseapy.prerank(
        rnk=rnk.rename("stat").reset_index(),
        gene_sets=gene_sets,
        method=method,
        permutation_num=permutations,
        seed=seed,
        threads=threads,
        min_size=min_size,
        max_size=max_size,
        weight=weight,
        outdir=None,
        no_plot=True,
        verbose=False,
    )
    d = res.res2d
    if d.empty:
        return pd.DataFrame(columns=GSEA_COLUMNS)
    out = pd.DataFrame(
        {
            "set": d["Term"].astype(str),
            "es": d["ES"].astype(float),
            "nes": d["NES"].astype(float),
            "pvalue": d["NOM p-val"].astype(float),
            "fdr_gsea": d["FDR q-val"].astype(float),
            "log2err": d["log2err"].astype(float) if "log2err" in d else np.nan,
            "leading_edge": d["Lead_genes"]
            .astype(str)
            .map(lambda x: ";".join(back.get(g, g) for g in x.split(";"))),
        }
    )
    out["size"] = out["set"].map(size)
    out["n_found"] = out["set"].map({k: len(v) for k, v in gene_sets.items()})
    out["padj"] = bh(out["pvalue"].to_numpy())
    return out[GSEA_COLUMNS].sort_values(["pvalue", "set"], ignore_index=True)


def ora(
    de: pd.DataFrame,
    sets: pd.DataFrame,
    *,
    alpha: float = 0.05,
    lfc: float = 0.0,
    direction: str = "up",
    padj_column: str = "padj",
) -> pd.DataFrame:
    """Hypergeometric over-representation of significant up (or down) genes.

    Background = genes actually tested (non-missing ``padj``), because genes filtered out before
    testing (e.g. DESeq2 independent filtering) could never be selected. Selected genes:
    padj < alpha and log2fc > lfc (up) or < -lfc (down). p = P(X >= overlap) with X ~
    Hypergeom(background, set size in background, n selected); BH over sets with >= 1 gene in
    the background.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    for col in ("gene", "log2fc", padj_column):
        if col not in de.columns:
            raise KeyError(f"DE table lacks column {col!r}")
    tested = de.dropna(subset=[padj_column, "log2fc"])
    genes = pd.Index(tested["gene"].astype(str))
    sign = 1.0 if direction == "up" else -1.0
    selected = ((tested[padj_column] < alpha) & (sign * tested["log2fc"] > lfc)).to_numpy()
    names, mat = gs.membership(sets, genes)
    n_bg = len(genes)
    n_sel = int(selected.sum())
    n_found = mat.sum(axis=1)
    overlap = (mat & selected).sum(axis=1)
    p = stats.hypergeom.sf(overlap - 1, n_bg, n_found, n_sel)
    keep = n_found > 0
    p = np.where(keep, p, np.nan)
    expected = n_found * n_sel / n_bg if n_bg else np.full(len(names), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        fold = np.where(expected > 0, overlap / expected, np.nan)
    hits = [",".join(genes[row & selected]) for row in mat]  # one join per set, not per gene
    out = pd.DataFrame(
        {
            "set": names.astype(str),
            "direction": direction,
            "n_found": n_found,
            "n_selected": n_sel,
            "n_background": n_bg,
            "overlap": overlap,
            "expected": expected,
            "fold_enrichment": fold,
            "pvalue": p,
            "padj": bh(p),
            "genes": hits,
        }
    )
    return out[keep][ORA_COLUMNS].sort_values(["pvalue", "set"], ignore_index=True)


def size_factors(counts: pd.DataFrame) -> pd.Series:
    """DESeq2's median-of-ratios size factors (Anders & Huber 2010), over genes with no zero.

    Preferred to CPM for scoring: with strong planted/treatment shifts, CPM moves every other
    gene the opposite way (composition), which shows up as spurious set changes.
    """
    with np.errstate(divide="ignore"):
        logc = np.log(counts.astype(float))
    ok = np.isfinite(logc).all(axis=1)
    if not ok.any():
        raise ValueError("size factors: every gene has a zero count in some sample")
    ratios = logc[ok].sub(logc[ok].mean(axis=1), axis=0)
    return np.exp(ratios.median(axis=0)).rename("size_factor")


def log2_normalised(counts: pd.DataFrame, prior: float = 1.0) -> pd.DataFrame:
    """log2(counts / size factor + prior), so count data can be scored like log2 arrays."""
    return np.log2(counts.div(size_factors(counts), axis=1) + prior)


def set_scores(
    expr: pd.DataFrame, sets: pd.DataFrame, *, method: str = "zmean", min_size: int = 5, threads: int = 1
) -> pd.DataFrame:
    """Per-sample set score, tidy: sample, set, score, n_genes.

    ``zmean``: each gene is z-scored across samples (so highly expressed genes do not dominate),
    then averaged over the set's genes present in that sample (a missing value leaves out only
    that cell; constant genes are left out). Sets with < ``min_size`` scored genes are dropped.
    ``ssgsea``: gseapy's single-sample GSEA NES (rank-normalised). ``expr`` must be log-scale
    (log2 array values; for counts use ``log2_normalised`` or a VST).
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
    p_t = 2 * stats.t.sf(np.abs(t), n - 1) if n > 1 else np.full(len(names), np.nan)
    if n >= 2:
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
