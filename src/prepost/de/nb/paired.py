"""DESeq2's paired test (~ patient + timepoint), vectorised over genes: fast_paired_deseq2, and
the fit it shares with the grouped design (_paired_fit, _ordered_pairs).

With exactly one ref and one alt sample per patient the design X = [patient indicators | alt]
makes X'WX an arrow matrix (prepost.de.nb.linalg). The patient-indicator basis spans the same
space as R's treatment coding (intercept + patients 2..P) with a unimodular change of basis,
so the timepoint coefficient, its variance and det(X'WX) are identical to DESeq2's.

The steps and constants follow DESeq2 1.38 (DESeq() + results(), betaPrior = FALSE):
median-of-ratios size factors; rough/moment start (pmin), IRLS mu (minmu 0.5, ridge 1e-6 on
the log2 scale, deviance tolerance 1e-8); gene-wise Cox-Reid adjusted profile likelihood
maximised by DESeq2's own backtracking line search on log(alpha) (kappa_0 1, tol 1e-6, maxit
100) with its grid fallback; parametric trend by R's Gamma(identity) GLM iteration;
prior variance max(mad^2 - trigamma((m-p)/2), 0.25); MAP line search; dispersion outliers
(2 SD) keep the gene-wise value; final IRLS, Wald test on the normal distribution;
independent filtering on baseMean with R's lowess (alpha 0.1). Cook's distances: DESeq2 only
uses samples in design cells with >= 3 replicates, and in this design every cell has one
sample, so DESeq2 flags no Cook's outliers and nothing is replaced; the same holds here. The
Cox-Reid log-determinant is a sum of logs, exact at any size (prepost.de.nb.dispersion).
The IRLS solves carry DESeq2's ridge on R's coding, first patient = intercept
(prepost.de.nb.linalg._ridged_solve), so a different patient order changes the fit as it does
in R; genes whose IRLS DESeq2 gives up on (a coefficient of R's coding past |30|, NaN
deviance, 100 steps) are refitted as DESeq2's optim does (prepost.de.nb.optim), in the
gene-wise stage and in the final fit. Differences: with <= 3 residual df DESeq2 estimates the
prior variance by simulation + loess (set.seed(2)), replaced here by the same KL matching with
numpy's generator and a running-mean smoother (prepost.de.nb.trend); the optim genes' results
depend on the L-BFGS-B implementation (scipy's, not R's) as DESeq2's depend on its reference
patient (tools/deseq2_agreement.py measures both).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from prepost.de.nb.apeglm import _apeglm_map, apeglm_prior_scale
from prepost.de.nb.constants import MAXIT, MINMU
from prepost.de.nb.dispersion import (
    CountLevels,
    _fit_disp,
    _genewise_done,
    _level_nb_const,
    _map_dispersion,
    deseq2_det_range,
    start_dispersion,
)
from prepost.de.nb.irls import _irls, ls_start
from prepost.de.nb.linalg import _chunked, _gexp, _gsum
from prepost.de.nb.optim import one_blas_thread, optim_fit, optim_start
from prepost.de.nb.trend import _prior_var, _trend
from prepost.de.nb.wald import _sorted, _wald_table, dispersion_values, fit_info
from prepost.de.results import check_samples
from prepost.stats import count_values, size_factors


def r_design(n_pat: int, grp) -> np.ndarray:
    """R's model matrix of ~ patient + alt (or + one alt column per patient group) for
    samples ordered patient-major (ref, alt): intercept, patients 2..P, alt columns."""
    n_grp = 1 if grp is None else grp.shape[1]
    onehot = np.ones((n_pat, 1)) if grp is None else grp
    x = np.zeros((2 * n_pat, n_pat + n_grp))
    x[:, 0] = 1.0
    rows = np.arange(n_pat)
    x[2 * rows[1:], rows[1:]] = 1.0
    x[2 * rows[1:] + 1, rows[1:]] = 1.0
    x[2 * rows + 1, n_pat:] = onehot
    return x


def _to_r(gam: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Patient-indicator coefficients (gam: P, beta: G) in R's coding (natural log)."""
    return np.concatenate([gam[:1], gam[1:] - gam[0], beta])


def _fit_beta(y, sf, alpha, grp, n_cpus, keep_mu: bool = True, levels=None):
    """DESeq2's fitNbinomGLMs: IRLS for every gene, then optim (prepost.de.nb.optim) for the
    genes IRLS gave up on (a coefficient past |30|, NaN deviance, not converged in MAXIT
    steps). Returns the IRLS dict with mu (when ``keep_mu``), beta, gam, cov replaced on those
    genes, ``var`` (the diagonal of cov) and ``optim`` (bool per gene)."""
    if levels is None:
        fit = _chunked(
            lambda yb, ab: _irls(yb, sf, ab, grp, keep_mu), n_cpus, y.shape[0], y, alpha
        )
    else:  # the deviance constant from the count levels (CountLevels)
        const = levels.run(
            lambda ib, ab: _level_nb_const(levels.block(ib), ab), n_cpus, np.arange(y.shape[0]),
            alpha,
        )
        fit = _chunked(
            lambda yb, ab, cb: _irls(yb, sf, ab, grp, keep_mu, cb), n_cpus, y.shape[0], y,
            alpha, const,
        )
    n_pat, n_grp = y.shape[1], fit["beta"].shape[1]
    cov = fit["cov"]
    finite = np.isfinite(fit["beta"]).all(axis=1) & np.isfinite(fit["gam"]).all(axis=1)
    rows = np.flatnonzero((fit["iters"] >= MAXIT) | ~finite)
    fit["optim"] = np.zeros(y.shape[0], dtype=bool)
    fit["optim"][rows] = True
    if rows.size:
        x = r_design(n_pat, grp)
        nf = sf.reshape(-1)
        alt = np.arange(n_pat, n_pat + n_grp)
        beta0, gam0 = ls_start(y[rows], sf, grp)
        with one_blas_thread():
            for k, i in enumerate(rows):  # the few genes DESeq2 hands to optim: one call each
                start = optim_start(
                    _to_r(fit["gam"][i], fit["beta"][i]),
                    _to_r(gam0[k], beta0[k]),
                    bool(finite[i]),
                )
                par, mu, sigma, _ = optim_fit(y[i].reshape(-1), nf, alpha[i], x, start)
                nat = par * np.log(2)
                fit["gam"][i] = nat[0] + np.concatenate([[0.0], nat[1:n_pat]])
                fit["beta"][i] = nat[n_pat:]
                if keep_mu:
                    fit["mu"][i] = mu.reshape(n_pat, 2)
                cov[i] = sigma[np.ix_(alt, alt)]
    fit["var"] = np.diagonal(cov, axis1=1, axis2=2).copy()
    return fit


def _norm_moments(values: np.ndarray, sf: np.ndarray):
    """baseMean and baseVar (ddof 1) of the normalised counts of a gene block."""
    norm = values / sf
    return norm.mean(axis=1), norm.var(axis=1, ddof=1)


def _paired_fit(values: np.ndarray, n_pat: int, grp, n_cpus: int, sf_given=None) -> dict:
    """DESeq2 from size factors to the final fit for counts ordered patient-major (ref, alt
    per patient), with one alt coefficient per patient group (grp: P x G one-hot, None = one
    group). Dispersions are shared across groups: mu of all samples, the residual df of the
    whole design (2P - P - G). ``sf_given``: size factors in the same sample order (e.g. from
    control genes), else median of ratios over all genes."""
    n_samples = values.shape[1]
    n_grp = 1 if grp is None else grp.shape[1]
    m, p = n_samples, n_pat + n_grp

    sf_flat = size_factors(values) if sf_given is None else np.asarray(sf_given, dtype=float)
    sf = sf_flat.reshape(n_pat, 2)
    # sf_flat in the closure: _chunked slices every array argument as long as the genes
    base_mean, base_var = _chunked(
        lambda v: _norm_moments(v, sf_flat), n_cpus, values.shape[0], values
    )
    nz = values.sum(axis=1) > 0
    # C order: the per-gene sums below then add in numpy's pairwise order whatever the layout
    # of ``values`` (pandas gives column-major arrays)
    y = np.ascontiguousarray((values if nz.all() else values[nz]).reshape(-1, n_pat, 2))
    bm, bv = base_mean[nz], base_var[nz]
    g = y.shape[0]

    def start(yb, bmb, bvb):  # min(rough (linear-model residuals), moments), clamped
        yn = yb / sf
        dn = yn[..., 1] - yn[..., 0]
        dbar = _gexp(_gsum(dn, grp) / (dn.shape[1] if grp is None else grp.sum(axis=0)), grp)
        half = 0.5 * (yn[..., 0] + yn[..., 1])
        lin_mu = np.maximum(np.stack([half - dbar / 2, half + dbar / 2], axis=2), 1.0)
        return start_dispersion(yn, lin_mu, bmb, bvb, sf_flat, m - p, n_samples)

    alpha_init = _chunked(start, n_cpus, g, y, bm, bv)

    # the special functions of the counts (log Gamma, digamma) once per distinct count
    levels = CountLevels(y, n_cpus)

    # gene-wise dispersions on the mu of a fit at the starting dispersions
    first = _fit_beta(y, sf, alpha_init, grp, n_cpus, levels=levels)
    mu = first.pop("mu")
    np.maximum(mu, MINMU, out=mu)
    optim_genewise = first["optim"]
    del first

    deseq2_det = _chunked(
        lambda yb, mb, ab: deseq2_det_range(yb, mb, ab, grp), n_cpus, g, y, mu, alpha_init
    )

    def genewise(ib, ab, eb):
        lev = levels.block(ib)
        return _fit_disp(y[ib], mu[ib], np.log(ab), np.log(ab), 1.0, False, grp, eb, lev)

    log_a, iters, lp0, lp1 = levels.run(genewise, n_cpus, np.arange(g), alpha_init, deseq2_det)
    disp_gene = _genewise_done(
        y, mu, alpha_init, log_a, iters, lp0, lp1, n_samples, grp, deseq2_det, levels, n_cpus
    )
    disp_fit, trend = _trend(bm, disp_gene)
    prior_var, var_log = _prior_var(disp_gene, disp_fit, m - p)
    disp = _map_dispersion(
        y, mu, disp_gene, disp_fit, prior_var, var_log, n_samples, grp, n_cpus, deseq2_det,
        levels,
    )

    # final fit and Wald test
    del mu
    fit = _fit_beta(y, sf, disp, grp, n_cpus, keep_mu=False, levels=levels)
    del levels
    beta, var = fit["beta"], fit["var"]
    if grp is None:
        beta, var = beta[:, 0], var[:, 0]
    return {
        "sf": sf, "nz": nz, "base_mean": base_mean, "y": y, "disp": disp,
        "beta": beta, "gam": fit["gam"], "var": var, "cov": fit["cov"],
        "optim": fit["optim"], "disp_gene": disp_gene, "disp_fit": disp_fit,
        "trend": trend, "prior_var": prior_var, "var_log": var_log,
        "optim_genewise": optim_genewise,
        "exact_cox_reid": int((~deseq2_det).sum()), "deseq2_det": deseq2_det,
    }


def _count_values(counts: pd.DataFrame, cols, names, n_cpus: int) -> np.ndarray:
    """prepost.stats.count_values of the columns ``cols`` of ``counts`` (renamed ``names``),
    column-major. With n_cpus > 1, on row blocks in threads, each block's columns taken,
    checked and converted at once (at 2,000 samples the column copy, the float conversion
    and the checks took 1-2.5 s on one core); the same values and, for a bad count, the
    same error (the first bad row's block raises first)."""
    n = counts.shape[0]
    if n_cpus <= 1 or n < 4000 or counts.index.has_duplicates:
        data = counts.iloc[:, cols]
        data.columns = pd.Index(names)
        return np.asfortranarray(count_values(data))
    edges = np.linspace(0, n, 8 * int(n_cpus) + 1).astype(int)
    out = np.empty((n, len(cols)), order="F")
    dtypes = set(counts.dtypes)
    plain = len(dtypes) == 1 and isinstance(next(iter(dtypes)), np.dtype)
    arr = counts.to_numpy() if plain and next(iter(dtypes)).kind in "iuf" else None
    names = pd.Index(names)

    def run(k):
        lo, hi = edges[k], edges[k + 1]
        if arr is not None:  # numpy's take (pandas' iloc of a row block's columns: 3x slower)
            part = pd.DataFrame(arr[lo:hi][:, cols], index=counts.index[lo:hi], columns=names)
        else:
            part = counts.iloc[lo:hi, cols]
            part.columns = names
        out[lo:hi] = count_values(part)

    with ThreadPoolExecutor(int(n_cpus)) as pool:
        list(pool.map(run, range(len(edges) - 1)))
    return out


def _ordered_pairs(counts, samples, ref, alt, fn_name, n_cpus: int = 1):
    """Check one ref and one alt sample per patient; return (sheet, sorted patients, count
    values patient-major (ref, alt), gene ids); the sheet's rows in the values' column order."""
    sheet = check_samples(counts, samples, ref, alt)
    per = sheet.groupby("patient")["timepoint"].agg(
        lambda t: (int((t == ref).sum()), int((t == alt).sum()))
    )
    bad = sorted(p for p, k in per.items() if k != (1, 1))
    if bad:
        raise ValueError(
            f"patient(s) {bad} do not have exactly one {ref!r} and one {alt!r} sample; "
            f"{fn_name} handles the one-pair-per-patient design only"
        )
    patients = sorted(sheet["patient"].unique())
    by_pair = pd.Series(sheet.index, index=pd.MultiIndex.from_frame(sheet[["patient", "timepoint"]]))
    order = list(by_pair.loc[[(p, tp) for p in patients for tp in (ref, alt)]])
    position = pd.Series(np.arange(counts.shape[1]), index=counts.columns.astype(str))
    cols = position[order].to_numpy()
    sheet = sheet.loc[order]  # the rows in the order of the count columns
    # column-major whatever the layout of the caller's frame: the per-gene sums of the size
    # factors and moments then add in one order, so the results do not depend on how the
    # DataFrame was built (a row-major frame moved the size factors by ~1e-14 and, through
    # the ill-conditioned optim genes, their log2 fold changes by up to 0.07)
    values = _count_values(counts, cols, order, n_cpus)
    return sheet, patients, values, counts.index.astype(str)


def given_size_factors(size_factors: pd.Series | None, order) -> np.ndarray | None:
    """Given size factors (Series by sample) in the fit's sample order; None stays None."""
    if size_factors is None:
        return None
    sf = pd.Series(size_factors)
    sf.index = sf.index.astype(str)
    order = [str(s) for s in order]
    lacking = [s for s in order if s not in sf.index]
    if lacking:
        raise ValueError(f"size factors lack sample(s) {lacking[:5]}")
    out = sf.reindex(order).to_numpy(dtype=float)
    if not (np.isfinite(out) & (out > 0)).all():
        raise ValueError(f"size factors must be finite and > 0, got {out.tolist()[:5]}")
    return out


def fast_paired_deseq2(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    ref: str = "pre",
    alt: str = "post",
    n_cpus: int = 1,
    lfc_shrink: str = "none",
    size_factors: pd.Series | None = None,
) -> pd.DataFrame:
    """DESeq2 (~ patient + timepoint, alt vs ref) for paired counts, vectorised over genes.

    counts: genes x samples, non-negative integers; samples: indexed by sample id with
    'patient' and 'timepoint'; every patient needs exactly one ref and one alt sample (other
    designs: prepost.de.general.deseq2). Returns the contract columns (gene, mean_expr = baseMean,
    log2fc, lfc_se, stat, pvalue, padj) sorted by pvalue then gene; all-zero genes have NaN
    statistics, genes removed by independent filtering NaN padj, as in DESeq2.
    lfc_shrink="apeglm" adds ``log2fc_shrunk``: the MAP of apeGLM's posterior (Cauchy prior on
    the timepoint coefficient with apeglm's adaptive scale, N(0, 15^2) on the intercept and
    patient coefficients of R's treatment coding), as lfcShrink(type = "apeglm") and pydeseq2's
    lfc_shrink; p-values are unchanged. ``size_factors``: a Series by sample (as DESeq2's
    ``sizeFactors(dds) <-``, e.g. from housekeeping genes: prepost.stats.size_factors with
    ``control``); default median of ratios over all genes.
    """
    if lfc_shrink not in ("none", "apeglm"):
        raise ValueError(f"lfc_shrink {lfc_shrink!r}; expected 'none' or 'apeglm'")
    sheet, patients, values, genes = _ordered_pairs(
        counts, samples, ref, alt, "fast_paired_deseq2", n_cpus
    )
    n_pat = len(patients)
    if n_pat < 3:
        raise ValueError(f"need at least 3 complete pairs, got {n_pat}")
    fit = _paired_fit(values, n_pat, None, n_cpus, given_size_factors(size_factors, sheet.index))
    out = _wald_table(genes, fit["base_mean"], fit["nz"], fit["beta"], fit["var"])
    if lfc_shrink == "apeglm":
        sf, y = fit["sf"], fit["y"]
        nz = fit["nz"]
        scale = apeglm_prior_scale(
            out["log2fc"].to_numpy() * np.log(2), out["lfc_se"].to_numpy() * np.log(2)
        )
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            shrunk_nat = _chunked(
                lambda yb, db, gb, bb: _apeglm_map(yb, sf, db, gb, bb, scale),
                n_cpus, y.shape[0], y, fit["disp"], fit["gam"], fit["beta"],
            )
        shrunk = np.full(len(genes), np.nan)
        shrunk[nz] = shrunk_nat / np.log(2)
        out["log2fc_shrunk"] = shrunk
    out = _sorted(out)
    out.attrs["fit"] = fit_info(
        "~ patient + timepoint", fit["trend"], fit["prior_var"], genes[fit["nz"]][fit["optim"]],
        genes[fit["nz"]][fit["optim_genewise"]], fit["exact_cox_reid"],
    )
    out.attrs["model"] = fit_dispersions(genes, fit)
    return out


def fit_dispersions(genes, fit: dict) -> dict:
    """plotDispEsts values of a _paired_fit (prepost.de.nb.wald.dispersion_values)."""
    return dispersion_values(
        genes, fit["base_mean"], fit["nz"], fit["disp_gene"], fit["disp_fit"], fit["disp"],
        fit["var_log"],
    )
