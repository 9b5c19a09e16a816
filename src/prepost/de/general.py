"""Paired negative-binomial test for RNA-seq counts with pydeseq2 (DESeq2 in Python).

Any design (a formula over the metadata, or a design matrix with named columns, as
prepost.de.contrasts builds) and contrast (a factor/level triple or a numeric vector); the paired
default is ``~ patient + timepoint``, with DESeq2's defaults: ratio size factors, parametric
dispersion trend, Wald test, Cook's distance outlier handling (refit_cooks) and independent
filtering at alpha = 0.1 (R's results() default; pydeseq2's own default is 0.05). Both factors
are passed as pandas Categoricals: pydeseq2/formulaic would otherwise sort the timepoint levels
("post" < "pre", making alt the reference) and could read numeric-looking patient ids as
numbers. tests/test_de_general.py compares the output with DESeq2 1.38.

Every table carries ``table.attrs["fit"]`` (see fit_info): engine "pydeseq2" and its version,
the design, the dispersion trend pydeseq2 actually used ("parametric", or "mean" when its
parametric fit failed: pydeseq2 then switches with a UserWarning), the trend's coefficients
and the dispersion prior variance, in the form prepost.de.nb records its own fits.
"""

from __future__ import annotations

import warnings
from importlib import metadata

import numpy as np
import pandas as pd

from prepost.de.results import RESULT_COLUMNS, check_samples, design_text, model_values
from prepost.stats import count_values
from prepost.vocabulary import FILTER_ALPHA

ENGINE = "pydeseq2"


def fit_info(dds, design) -> dict:
    """What produced a table of a fitted DeseqDataSet (``table.attrs["fit"]``): the keys of
    prepost.de.nb's record (engine, method, design, dispersion_trend, trend_coefficients,
    prior_variance; the optim keys are None: pydeseq2 has no optim refit) plus the pydeseq2
    version. dispersion_trend is pydeseq2's ``disp_function_type``: "parametric" (coefficients
    asymptDisp, extraPois: DESeq2's a0 + a1 / mean) or "mean" (its trimmed mean dispersion)."""
    kind = str(dds.uns["disp_function_type"])
    if kind == "parametric":
        a0, a1 = np.asarray(dds.uns["trend_coeffs"], dtype=float)
        coefficients = {"asymptDisp": float(a0), "extraPois": float(a1)}
    else:
        coefficients = {"mean": float(np.asarray(dds.uns["mean_disp"], dtype=float))}
    try:
        version = metadata.version("pydeseq2")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "engine": ENGINE,
        "version": version,
        "method": f"DESeq2's method with pydeseq2 {version} (DeseqDataSet.deseq2 with Cook's "
        f"refit + DeseqStats Wald test, independent filtering at alpha {FILTER_ALPHA})",
        "design": design_text(design),
        "dispersion_trend": kind,
        "trend_coefficients": coefficients,
        "prior_variance": float(np.asarray(dds.uns["prior_disp_var"], dtype=float)),
        "genes_refit_with_optim": None,
        "optim_genes": None,
    }


def _dispersions(dds, genes: pd.Index) -> dict:
    """plotDispEsts values of a fitted DeseqDataSet (as prepost.de.nb.wald.dispersion_values):
    baseMean, gene-wise, fitted and final dispersions, dispersion outliers."""
    var = dds.var.reindex(genes)
    col = lambda name: var[name].to_numpy(float) if name in var else np.full(len(genes), np.nan)  # noqa: E731
    outlier = col("_outlier_genes") == 1
    return model_values(
        genes, col("_normed_means"), disp_gene=col("genewise_dispersions"), disp_trend=col("fitted_dispersions"),
        dispersion=col("dispersions"), disp_outlier=outlier,
    )


def _contrast_arg(design, contrast):
    """pydeseq2 wants a numeric vector for a design matrix: accept a column name, a Series of
    weights by column name or a vector too."""
    if isinstance(design, str):
        return list(contrast) if not isinstance(contrast, np.ndarray) else contrast
    cols = list(design.columns)
    if isinstance(contrast, str):
        if contrast not in cols:
            raise ValueError(f"contrast {contrast!r} is not a design column; columns: {cols}")
        return np.array([float(c == contrast) for c in cols])
    if isinstance(contrast, pd.Series):
        unknown = sorted(set(map(str, contrast.index)) - set(map(str, cols)))
        if unknown:
            raise ValueError(f"contrast names {unknown} are not design columns {cols}")
        return contrast.reindex(cols, fill_value=0.0).to_numpy(float)
    vec = np.asarray(contrast, dtype=float).reshape(-1)
    if len(vec) != len(cols):
        raise ValueError(f"contrast has {len(vec)} weights for {len(cols)} design columns {cols}")
    return vec


def deseq2(
    counts: pd.DataFrame,
    metadata: pd.DataFrame | None,
    design: str | pd.DataFrame,
    contrast,
    *,
    n_cpus: int = 1,
    return_size_factors: bool = False,
    lfc_shrink: str = "none",
    size_factors: pd.Series | None = None,
):
    """DESeq2 Wald test of one contrast on raw counts (genes x samples) with pydeseq2.

    design: a formula over ``metadata`` columns (make factors pandas Categoricals with the
    reference level first: pydeseq2 otherwise sorts levels) or a design matrix DataFrame
    (samples x named columns, index = sample ids; then metadata may be None). contrast: for a
    formula, [factor, alt, ref] or a numeric vector; for a matrix, a column name, a Series of
    weights by column or a vector; a dict {name: contrast} tests several contrasts on one fit
    and returns {name: table}. The samples used are the metadata's (formula) or the design's
    (matrix) index. Returns the contract columns (mean_expr = baseMean) sorted by pvalue then
    gene, with ``attrs["fit"]`` (fit_info), and with return_size_factors also the size factors
    (Series by sample). All-zero genes keep NaN statistics; independent filtering (alpha 0.1)
    and Cook's outliers give NaN padj (pvalue) as in R. ``size_factors`` (Series by sample):
    used instead of pydeseq2's median of ratios, as DESeq2's ``sizeFactors(dds) <-``.
    """
    from pydeseq2.dds import DeseqDataSet

    if isinstance(design, pd.DataFrame):
        ids = list(design.index.astype(str))
        design = design.copy()
        design.index = ids
        if design.isna().any().any():
            raise ValueError("design matrix has NaN values")
        if np.linalg.matrix_rank(design.to_numpy(float)) < design.shape[1]:
            raise ValueError(
                f"design matrix of {design.shape[0]} samples x {design.shape[1]} columns is "
                "rank-deficient"
            )
        meta = (metadata.copy() if metadata is not None else pd.DataFrame(index=ids))
        meta.index = meta.index.astype(str)
        missing = [s for s in ids if s not in meta.index]
        if missing:
            raise ValueError(f"sample(s) {missing} of the design are not in the metadata")
        meta = meta.loc[ids]
    elif isinstance(design, str):
        if metadata is None:
            raise ValueError("a design formula needs the metadata table")
        meta = metadata.copy()
        meta.index = meta.index.astype(str)
        ids = list(meta.index)
    else:
        raise ValueError("design must be a formula string or a design matrix DataFrame")
    if len(set(ids)) != len(ids):
        raise ValueError("duplicated sample ids in the design/metadata")
    data = counts.copy()
    data.columns = data.columns.astype(str)
    absent = [s for s in ids if s not in set(data.columns)]
    if absent:
        raise ValueError(f"sample(s) {absent} are not columns of the count matrix")
    data = data[ids]
    values = count_values(data).astype(np.int64)
    genes = data.index.astype(str)
    mat = pd.DataFrame(values.T, index=ids, columns=genes)
    many = isinstance(contrast, dict)
    vecs = {k: _contrast_arg(design, c) for k, c in (contrast.items() if many else [(None, contrast)])}

    dds = DeseqDataSet(
        counts=mat,
        metadata=meta,
        design=design,
        refit_cooks=True,
        n_cpus=n_cpus,
        quiet=True,
    )
    if size_factors is not None:
        _fix_size_factors(dds, size_factors, ids)
    dds.deseq2()
    info = fit_info(dds, design)
    tables = {k: _results(dds, vec, genes, n_cpus, lfc_shrink) for k, vec in vecs.items()}
    model = _dispersions(dds, genes)
    for table in tables.values():
        table.attrs["fit"] = dict(info)
        table.attrs["model"] = model
    out = tables if many else tables[None]
    if return_size_factors:
        sf = pd.Series(np.asarray(dds.obs["size_factors"], float), index=ids, name="size_factor")
        return out, sf
    return out


def _fix_size_factors(dds, size_factors: pd.Series, ids: list[str]) -> None:
    """Make the DeseqDataSet use given size factors: its own fit runs (it also sets the gene
    filters later steps read), then the factors and normalised counts are replaced."""
    sf = pd.Series(size_factors)
    sf.index = sf.index.astype(str)
    lacking = [s for s in ids if s not in sf.index]
    if lacking:
        raise ValueError(f"size factors lack sample(s) {lacking[:5]}")
    values = sf.reindex(ids).to_numpy(dtype=float)
    own = dds.fit_size_factors

    def fit_size_factors(*args, **kwargs):
        own(*args, **kwargs)
        dds.obs["size_factors"] = values
        dds.layers["normed_counts"] = np.asarray(dds.X, dtype=float) / values[:, None]

    dds.fit_size_factors = fit_size_factors


def _results(dds, vec, genes: pd.Index, n_cpus: int, lfc_shrink: str = "none") -> pd.DataFrame:
    """Wald test of one contrast of a fitted DeseqDataSet, as the contract table (plus
    log2fc_shrunk with lfc_shrink="apeglm")."""
    from pydeseq2.ds import DeseqStats

    stats = DeseqStats(
        dds,
        contrast=vec,
        alpha=FILTER_ALPHA,
        cooks_filter=True,
        independent_filter=True,
        quiet=True,
        n_cpus=n_cpus,
    )
    stats.summary()
    res = stats.results_df.reindex(genes)
    out = pd.DataFrame(
        {
            "gene": genes,
            "mean_expr": res["baseMean"].to_numpy(float),
            "log2fc": res["log2FoldChange"].to_numpy(float),
            "lfc_se": res["lfcSE"].to_numpy(float),
            "stat": res["stat"].to_numpy(float),
            "pvalue": res["pvalue"].to_numpy(float),
            "padj": res["padj"].to_numpy(float),
        }
    )[RESULT_COLUMNS]
    if lfc_shrink == "apeglm":
        vec = np.asarray(vec, dtype=float)
        if not (np.sum(vec != 0) == 1 and vec[vec != 0][0] == 1):
            raise ValueError(
                "lfc_shrink='apeglm' shrinks one design coefficient (as DESeq2's lfcShrink "
                f"coef); the contrast {list(vec)} is not a single coefficient"
            )
        coeff = stats.LFC.columns[int(np.flatnonzero(vec)[0])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # genes left unshrunk keep NaN below
            stats.lfc_shrink(coeff=coeff)
        shrunk = stats.results_df["log2FoldChange"].reindex(genes).to_numpy(float)
        shrunk = np.where(np.isfinite(out["log2fc"].to_numpy()), shrunk, np.nan)
        out["log2fc_shrunk"] = shrunk
    return out.sort_values(["pvalue", "gene"], kind="stable", na_position="last").reset_index(
        drop=True
    )


def paired_deseq2(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    ref: str = "pre",
    alt: str = "post",
    n_cpus: int = 1,
) -> pd.DataFrame:
    """DESeq2 paired test of alt vs ref on raw counts (genes x samples).

    samples: indexed by sample id with 'patient' and 'timepoint' (ref/alt); only these samples
    are used and every patient must have both. Formula ``~patient + timepoint`` with both
    factors as Categoricals (ref first), contrast [timepoint, alt, ref]; see deseq2.
    """
    sheet = check_samples(counts, samples, ref, alt)
    patients = sorted(sheet["patient"].unique())
    metadata = pd.DataFrame(
        {
            "patient": pd.Categorical(sheet["patient"], categories=patients),
            "timepoint": pd.Categorical(sheet["timepoint"], categories=[ref, alt]),
        },
        index=sheet.index,
    )
    return deseq2(counts, metadata, "~patient + timepoint", ["timepoint", alt, ref], n_cpus=n_cpus)
