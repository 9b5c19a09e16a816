"""Paired moderated t-test for log2 expression arrays, numerically equivalent to limma.

The model is limma's ``lmFit(x, model.matrix(~patient + timepoint))`` followed by ``eBayes()``
(Smyth 2004): per-gene least squares with the patient as a blocking factor, then the residual
variances are shrunk towards a scaled-F prior fitted to all genes. It is reimplemented here (not
called through R) so the workflow needs no R at run time; tests/test_limma.py checks it
against limma 3.54 output to 1e-8.

Missing values follow lmFit: a gene is fitted on its finite samples only, with the design rows
of those samples; columns that become aliased (e.g. a patient whose samples are all missing) are
dropped the way R's pivoting QR drops them. Genes are grouped by their missingness pattern so
each pattern costs one QR, whatever the number of genes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from prepost import distributions as D
from prepost.stats import bh_adjust
from prepost.de.results import check_samples, design_text, model_values

_QR_TOL = 1e-7  # R's lm.fit / LINPACK dqrdc2 tolerance for declaring a column aliased
ENGINE = "limma-style moderated t (prepost.de.limma)"


def fit_info(design, s2_prior: float, df_prior: float) -> dict:
    """What produced a table (``table.attrs["fit"]``, as prepost.de.nb and pydeseq2 record
    theirs): engine, method, design, no dispersion trend (None: a count-model notion), and
    the variance prior of eBayes: limma's ``s2.prior`` (s0^2) and ``df.prior`` (d0; inf when
    the variances show no spread beyond sampling, then every gene gets s0^2)."""
    return {
        "engine": ENGINE,
        "method": "limma lmFit + contrasts.fit + eBayes (Smyth 2004), re-implementation equal "
        "to limma 3.54",
        "design": design_text(design),
        "dispersion_trend": None,
        "trend_coefficients": None,
        "s2_prior": float(s2_prior),
        "df_prior": float(df_prior),
    }


def _design(sheet: pd.DataFrame, alt: str) -> pd.DataFrame:
    """Intercept + treatment-coded patient (first sorted patient as baseline) + timepoint."""
    patients = sorted(sheet["patient"].unique())
    cols = {"Intercept": np.ones(len(sheet))}
    cols.update({f"patient[{p}]": (sheet["patient"] == p).to_numpy(float) for p in patients[1:]})
    cols[f"timepoint[{alt}]"] = (sheet["timepoint"] == alt).to_numpy(float)
    return pd.DataFrame(cols, index=sheet.index)


def _estimable_columns(x: np.ndarray) -> np.ndarray:
    """Columns kept by R's limited-pivoting QR: each column in order, unless it is (numerically)
    in the span of the columns kept before it."""
    keep: list[int] = []
    basis = np.zeros((x.shape[0], 0))
    for j in range(x.shape[1]):
        col = x[:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        resid = col - basis @ (basis.T @ col)
        rnorm = np.linalg.norm(resid)
        if rnorm / norm < _QR_TOL:
            continue
        keep.append(j)
        basis = np.column_stack([basis, resid / rnorm])
    return np.asarray(keep, dtype=int)


def _fit_genewise(y: np.ndarray, design: np.ndarray, contrast: np.ndarray):
    """limma's lm.series + contrasts.fit: estimate, unscaled s.e. of the contrast c'b and
    residual variance per gene, one QR per missingness pattern. The contrast's unscaled
    variance is c'(X'X)^-1 c of each pattern's own design (exact; limma's contrasts.fit
    approximates it from the full design for genes with NAs unless c picks one coefficient,
    which is what every built-in contrast does). A contrast that puts weight on a coefficient
    aliased in a pattern is not estimable there: NaN, as limma."""
    n_genes, n_samples = y.shape
    coef = np.full(n_genes, np.nan)
    stdev_unscaled = np.full(n_genes, np.nan)
    sigma2 = np.full(n_genes, np.nan)
    df_resid = np.zeros(n_genes)
    finite = np.isfinite(y)
    patterns, inverse = np.unique(finite, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    used = np.flatnonzero(contrast != 0)
    for k, obs in enumerate(patterns):  # loop over missingness patterns, vectorised within
        rows = np.flatnonzero(inverse == k)
        n_obs = int(obs.sum())
        if n_obs == 0:
            continue
        x = design[obs]
        keep = _estimable_columns(x)
        rank = len(keep)
        q, r = np.linalg.qr(x[:, keep], mode="complete")
        effects = q.T @ y[np.ix_(rows, np.flatnonzero(obs))].T  # n_obs x genes
        df = n_obs - rank
        df_resid[rows] = df
        if df > 0:
            sigma2[rows] = np.mean(effects[rank:] ** 2, axis=0)
        if np.isin(used, keep).all():  # contrast estimable in this pattern
            r = r[:rank]
            c = contrast[keep]
            beta = np.linalg.solve(r, effects[:rank])
            coef[rows] = c @ beta
            rinv = np.linalg.inv(r)
            stdev_unscaled[rows] = np.sqrt(np.sum((rinv.T @ c) ** 2))
    return coef, stdev_unscaled, sigma2, df_resid


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """Solve trigamma(y) = x for y: limma's trigammaInverse (Newton, same start and stop)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.full_like(x, np.nan)
    big = x > 1e7
    small = (x < 1e-6) & (x >= 0)
    mid = (x >= 1e-6) & ~big
    y[big] = 1 / np.sqrt(x[big])
    y[small] = 1 / x[small]
    if mid.any():
        xm = x[mid]
        ym = 0.5 + 1 / xm
        for _ in range(51):
            tri = special.polygamma(1, ym)
            dif = tri * (1 - tri / xm) / special.polygamma(2, ym)
            ym = ym + dif
            if np.max(-dif / ym) < 1e-8:
                break
        y[mid] = ym
    return y


def fit_f_dist(var: np.ndarray, df1: np.ndarray) -> tuple[float, float]:
    """limma's fitFDist without covariate: moment estimates of the scaled-F prior (scale s0^2,
    df2 = d0) from log sample variances. Returns (scale, df2); df2 may be inf."""
    n = len(var)
    if n == 1:
        return float(var[0]), 0.0
    ok = np.isfinite(df1) & (df1 > 1e-15) & np.isfinite(var) & (var > -1e-15)
    nok = int(ok.sum())
    if nok == 0:
        return np.nan, np.nan
    if nok == 1:
        return float(var[ok][0]), 0.0
    x = np.maximum(var[ok], 0)
    d = df1[ok]
    m = np.median(x)
    if m == 0:
        m = 1.0  # limma warns: more than half the variances are exactly zero
    x = np.maximum(x, 1e-5 * m)
    e = np.log(x) - special.digamma(d / 2) + np.log(d / 2)
    emean = e.mean()
    evar = np.sum((e - emean) ** 2) / (nok - 1) - np.mean(special.polygamma(1, d / 2))
    if evar > 0:
        df2 = 2 * trigamma_inverse(evar)[0]
        s20 = np.exp(emean + special.digamma(df2 / 2) - np.log(df2 / 2))
    else:
        df2 = np.inf
        s20 = x.mean()  # pooled variance, limma's MLE of the scale in this case
    return float(s20), float(df2)


def squeeze_var(var: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, float, float]:
    """limma's squeezeVar: posterior variances, prior variance and prior df."""
    n = len(var)
    if n == 1:
        return var.copy(), float(var[0]), 0.0
    var = np.where(df == 0, 0.0, var)
    s20, d0 = fit_f_dist(var, df)
    if np.isnan(d0):
        raise ValueError("could not estimate the prior degrees of freedom (no usable variances)")
    if np.isinf(d0):
        post = np.full(n, s20)
    else:
        post = (df * var + d0 * s20) / (df + d0)
    return post, s20, d0


def _contrast_vector(design: pd.DataFrame, contrast) -> np.ndarray:
    """A contrast given as a column name, a Series over the design columns or a sequence."""
    if isinstance(contrast, str):
        if contrast not in design.columns:
            raise ValueError(
                f"contrast {contrast!r} is not a design column; columns: {list(design.columns)}"
            )
        return (design.columns == contrast).astype(float)
    if isinstance(contrast, pd.Series):
        unknown = sorted(set(map(str, contrast.index)) - set(map(str, design.columns)))
        if unknown:
            raise ValueError(f"contrast names {unknown} are not design columns {list(design.columns)}")
        return contrast.reindex(design.columns, fill_value=0.0).to_numpy(float)
    c = np.asarray(contrast, dtype=float).reshape(-1)
    if len(c) != design.shape[1]:
        raise ValueError(
            f"contrast has {len(c)} weights but the design has {design.shape[1]} columns "
            f"{list(design.columns)}"
        )
    if not np.isfinite(c).all() or not c.any():
        raise ValueError(f"contrast {list(c)} must be finite and not all zero")
    return c


def moderated_t(expr: pd.DataFrame, design: pd.DataFrame, contrast) -> pd.DataFrame:
    """limma ``eBayes(contrasts.fit(lmFit(expr, design), contrast))`` for one contrast.

    expr: genes x samples, log2 values, NaN allowed. design: samples x coefficients, indexed by
    sample id (these samples, in this order, are used). contrast: a design column name, a Series
    of weights by column name, or a vector of weights. Returns the contract columns plus
    df_total, sorted by pvalue then gene, with ``attrs["fit"]`` (fit_info). Genes whose
    contrast is not estimable from their finite values, or with no residual df, are left out
    (limma gives NA or a t from the prior variance alone); they still inform the variance prior
    exactly as in limma when they have residual df.
    """
    if not isinstance(design, pd.DataFrame):
        raise ValueError("design must be a DataFrame indexed by sample id with named columns")
    if design.index.has_duplicates:
        dup = sorted(map(str, design.index[design.index.duplicated()].unique()))
        raise ValueError(f"design has duplicated sample id(s): {dup}")
    c = _contrast_vector(design, contrast)
    data = expr.copy()
    data.columns = data.columns.astype(str)
    ids = list(design.index.astype(str))
    absent = [s for s in ids if s not in set(data.columns)]
    if absent:
        raise ValueError(f"sample(s) {absent} of the design are not columns of the matrix")
    data = data[ids]
    try:
        x = design.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"design matrix has non-numeric values: {err}") from None
    if not np.isfinite(x).all():
        raise ValueError("design matrix has NaN or infinite values")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(
            f"design matrix of {x.shape[0]} samples x {x.shape[1]} columns is rank-deficient"
        )
    try:
        y = data.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expression matrix has non-numeric values: {err}") from None
    if np.isinf(y).any():
        gene = data.index[np.isinf(y).any(axis=1)][0]
        raise ValueError(
            f"expression matrix has infinite values (first at gene {gene!r}); "
            "expected finite log2 values or NaN"
        )
    if data.index.has_duplicates:
        dup = data.index[data.index.duplicated()][0]
        raise ValueError(f"expression matrix has duplicated gene id {dup!r}")

    coef, su, sigma2, df_resid = _fit_genewise(y, x, c)
    if df_resid.max(initial=0) == 0:
        raise ValueError("no residual degrees of freedom in any gene's fit")
    if not np.isfinite(sigma2).any():
        raise ValueError("no finite residual variances")

    s2_post, s20, d0 = squeeze_var(sigma2, df_resid)
    df_total = np.minimum(df_resid + d0, df_resid.sum())
    se = su * np.sqrt(s2_post)
    t = coef / se
    p = 2 * D.t_sf(np.abs(t), df_total)

    n_finite = np.isfinite(y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_expr = np.where(n_finite > 0, np.nansum(y, axis=1) / n_finite, np.nan)  # AveExpr
    keep = np.isfinite(coef) & (df_resid >= 1)
    out = pd.DataFrame(
        {
            "gene": data.index.astype(str)[keep],
            "mean_expr": mean_expr[keep],
            "log2fc": coef[keep],
            "lfc_se": se[keep],
            "stat": t[keep],
            "pvalue": p[keep],
            "padj": bh_adjust(p[keep]),
            "df_total": df_total[keep],
        }
    )
    out = out.sort_values(["pvalue", "gene"], kind="stable").reset_index(drop=True)
    out.attrs["fit"] = fit_info(design, s20, d0)
    # limma's plotSA values: Amean and residual SD (sigma) of every gene with residual df
    has_df = df_resid >= 1
    out.attrs["model"] = model_values(
        data.index.astype(str)[has_df], mean_expr[has_df], sigma=np.sqrt(sigma2[has_df]),
        df_residual=df_resid[has_df],
    )
    return out


def paired_moderated_t(
    expr: pd.DataFrame, samples: pd.DataFrame, ref: str = "pre", alt: str = "post"
) -> pd.DataFrame:
    """limma-equivalent paired test of alt vs ref (design ~ patient + timepoint).

    expr: genes x samples, log2 values, NaN allowed. samples: indexed by sample id with
    'patient' and 'timepoint' (ref/alt); only these samples are used, and every patient must
    have both. Returns the contract columns plus df_total (see moderated_t).
    """
    sheet = check_samples(expr, samples, ref, alt)
    design = _design(sheet, alt)
    return moderated_t(expr, design, f"timepoint[{alt}]")
