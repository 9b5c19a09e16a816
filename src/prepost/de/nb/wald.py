"""The result table of the prepost.de.nb fits: Wald test on the normal distribution,
independent filtering, DESeq2's column contract and the sort order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost.de.nb.filtering import independent_filtering
from prepost.de.results import RESULT_COLUMNS, model_values
from prepost.vocabulary import FILTER_ALPHA


def _wald_table(genes, base_mean, nz, beta, var, contrast_zero=None) -> pd.DataFrame:
    """Contract columns from natural-log coefficients and variances of the non-zero genes:
    log2 scale, normal Wald test, DESeq2's independent filtering, sorted by pvalue, gene.
    ``contrast_zero`` (bool per gene of the table): genes whose samples touched by the
    contrast are all zero; results() reports them as log2fc 0, stat 0, pvalue 1 (lfcSE
    kept) before independent filtering."""
    n_genes = len(genes)
    lfc = np.full(n_genes, np.nan)
    se = np.full(n_genes, np.nan)
    lfc[nz] = beta / np.log(2)
    se[nz] = np.sqrt(np.maximum(var, 0)) / np.log(2)
    stat = lfc / se
    pvalue = 2 * D.norm_sf(np.abs(stat))
    if contrast_zero is not None:
        zero = contrast_zero & nz
        lfc[zero], stat[zero], pvalue[zero] = 0.0, 0.0, 1.0
    padj = independent_filtering(base_mean, pvalue, FILTER_ALPHA)
    return pd.DataFrame(
        {
            "gene": genes,
            "mean_expr": base_mean,
            "log2fc": lfc,
            "lfc_se": se,
            "stat": stat,
            "pvalue": pvalue,
            "padj": padj,
        }
    )[RESULT_COLUMNS]


def dispersion_values(genes, base_mean, nz, disp_gene, disp_fit, disp, var_log) -> dict:
    """The per-gene values of DESeq2's plotDispEsts (``table.attrs["model"]``, written by the
    de rule as de/{contrast}.model.tsv): baseMean, gene-wise, fitted (trend) and final
    dispersions and the dispersion outliers (gene-wise more than 2 SD of log dispersion above
    the trend: they keep their gene-wise value), NaN for all-zero genes. Lists, so attrs stay
    comparable."""
    n = len(genes)
    cols = {}
    for name, vals in (("disp_gene", disp_gene), ("disp_trend", disp_fit), ("dispersion", disp)):
        full = np.full(n, np.nan)
        full[nz] = vals
        cols[name] = full
    with np.errstate(invalid="ignore", divide="ignore"):
        outlier = np.log(cols["disp_gene"]) > np.log(cols["disp_trend"]) + 2 * np.sqrt(var_log)
    return model_values(genes, base_mean, **cols, disp_outlier=outlier)


def _sorted(out: pd.DataFrame) -> pd.DataFrame:
    return out.sort_values(["pvalue", "gene"], kind="stable", na_position="last").reset_index(
        drop=True
    )


def fit_info(
    design: str, trend, prior_var: float, optim_genes, optim_genewise=(), exact_cox_reid=0
) -> dict:
    """What produced a table (kept in ``table.attrs["fit"]`` and written by the de rule next
    to the table): engine, design, dispersion trend (the nb fits only have DESeq2's
    parametric trend; when it fails they raise and prepost.de.fit falls back to pydeseq2),
    its coefficients, the dispersion prior variance and the genes refitted with optim in the
    final fit and in the fit whose mu the gene-wise dispersions use, and the genes whose
    Cox-Reid determinant left double range at the start (exact there, not DESeq2's
    artefact: prepost.de.nb.dispersion)."""
    optim_genes = sorted(str(g) for g in optim_genes)
    return {
        "engine": "prepost.de.nb",
        "method": "DESeq2 1.38 (DESeq + results, betaPrior FALSE), vectorised re-implementation",
        "design": design,
        "dispersion_trend": "parametric",
        "trend_coefficients": {"asymptDisp": float(trend[0]), "extraPois": float(trend[1])},
        "prior_variance": float(prior_var),
        "genes_refit_with_optim": len(optim_genes),
        "optim_genes": optim_genes,
        "optim_genes_genewise": sorted(str(g) for g in optim_genewise),
        "genes_exact_cox_reid": int(exact_cox_reid),
    }
