"""Pathway-level views of a paired contrast: prerank GSEA and over-representation.

Both start from the patient-blocked results: prerank ranks genes by the DE statistic of the
paired model (moderated t / Wald), ORA takes its significant genes; neither permutes sample
labels, which would break the pairing (per-sample set scores: prepost.enrich.scores).

Gene sets are long tables (``prepost.enrich.genesets``), already harmonised to the data's
identifiers.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from prepost.enrich import genesets as gs
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
    if not any(min_size <= len(v) <= max_size for v in gene_sets.values()):
        # no set to test (every collection skipped, or no set within min_size..max_size on
        # these genes): an empty table, as when gseapy tests nothing
        return pd.DataFrame(columns=GSEA_COLUMNS)
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


