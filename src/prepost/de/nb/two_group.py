"""DESeq2 for the unpaired two-group design ~ group, vectorised over genes, with DESeq2's
Cook's distance replacement/filtering and its optim refit: fast_two_group_deseq2."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost.de.nb.constants import LAMBDA, MAXIT, MINMU
from prepost.de.nb.dispersion import _map_dispersion, genewise_dispersions, start_dispersion
from prepost.de.nb.filtering import independent_filtering
from prepost.de.nb.irls import _nb_const, deviance_step
from prepost.de.nb.linalg import _Cells, _chunked
from prepost.de.nb.optim import LARGE, one_blas_thread, optim_fit, optim_start
from prepost.de.nb.trend import _prior_var, _trend, r_trimmed_mean
from prepost.de.nb.paired import given_size_factors
from prepost.de.nb.wald import dispersion_values, _sorted, _wald_table, fit_info
from prepost.stats import count_values, size_factors
from prepost.vocabulary import FILTER_ALPHA


MIN_REPLICATES_FOR_REPLACE = 7  # DESeq(minReplicatesForReplace = 7)


def _robust_mom_disp(norm: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """DESeq2's robustMethodOfMomentsDisp: trimmed within-cell variance of the normalised counts
    (cells of >= 3 samples; all samples as one cell when there is none), floored at 0.04."""
    sizes = np.bincount(cells)
    big = np.flatnonzero(sizes >= 3)
    if big.size:
        parts = []
        for k in big:  # at most a few cells
            sub = norm[:, cells == k]
            n = sub.shape[1]
            slot = 0 if n <= 3.5 else (1 if n <= 23.5 else 2)
            trim, scale = (1 / 3, 1 / 4, 1 / 8)[slot], (2.04, 1.86, 1.51)[slot]
            centre = r_trimmed_mean(sub, trim)[:, None]
            parts.append(scale * r_trimmed_mean((sub - centre) ** 2, trim))
        v = np.max(np.stack(parts, axis=1), axis=1)
    else:
        centre = r_trimmed_mean(norm, 1 / 8)[:, None]
        v = 1.51 * r_trimmed_mean((norm - centre) ** 2, 1 / 8)
    m = norm.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum((v - m) / m**2, 0.04)


def _cells_ridged(sw: np.ndarray, ridge: float):
    """(diag(sw) + ridge T'T) for the cell-means basis with DESeq2's ridge on R's coding
    (intercept = first cell, the others as differences to it): an arrow with its hub on the
    first cell. Returns solve(r) and the diagonal of the inverse (for the hat values)."""
    k = sw.shape[1]
    d = sw + ridge
    d[:, 0] += ridge * (k - 1)
    schur = d[:, 0] - ridge**2 * np.sum(1 / d[:, 1:], axis=1)

    def solve(r):
        x0 = (r[:, 0] + ridge * np.sum(r[:, 1:] / d[:, 1:], axis=1)) / schur
        return np.concatenate([x0[:, None], (r[:, 1:] + ridge * x0[:, None]) / d[:, 1:]], axis=1)

    inv_diag = np.concatenate(
        [(1 / schur)[:, None], 1 / d[:, 1:] + (ridge / d[:, 1:]) ** 2 / schur[:, None]], axis=1
    )
    return solve, inv_diag


def _cells_irls(y: np.ndarray, sf: np.ndarray, alpha: np.ndarray, onehot: np.ndarray):
    """DESeq2's IRLS (fitBeta) for the cell-means design, all genes at once. y: genes x n x 1.

    Returns (beta: genes x K natural-log cell means, start (the initial beta), mu unclamped,
    var of the contrast cell 2 - cell 1 (ridge sandwich), hat diagonals, iters). The start
    is the least-squares fit of log(normalised counts + 0.1): per cell, its mean. The ridge
    is DESeq2's, on R's coding (prepost.de.nb.linalg._ridged_solve explains why it is kept
    exact). As fitBeta, a gene whose coefficients (on R's coding: first cell, differences to
    it) pass |30|, or whose deviance test is NaN, stops there with iters = MAXIT and keeps
    the mu (and so the weights and hat values) of the step before."""
    g = y.shape[0]
    yy, s = y[..., 0], sf[:, 0]
    n_k = onehot.sum(axis=0)
    start = (np.log(yy / s + 0.1) @ onehot) / n_k
    beta = start.copy()
    mu = np.maximum(s * np.exp(beta @ onehot.T), MINMU)
    const = _nb_const(y, alpha)
    dev_old = np.zeros(g)
    iters = np.zeros(g, dtype=int)
    active = np.arange(g)
    logs = np.log(s)
    for t in range(MAXIT):
        ya, mua, al = yy[active], mu[active], alpha[active]
        w = mua / (1 + al[:, None] * mua)
        z = np.log(mua) - logs + (ya - mua) / mua
        solve, _ = _cells_ridged(w @ onehot, LAMBDA)
        ba = solve((w * z) @ onehot)
        iters[active] += 1
        big = (np.abs(ba[:, 0]) > LARGE) | np.any(np.abs(ba[:, 1:] - ba[:, :1]) > LARGE, axis=1)
        beta[active] = ba
        iters[active[big]] = MAXIT
        keep = ~big
        act, ba, ya, al = active[keep], ba[keep], ya[keep], al[keep]
        mua = np.maximum(s * np.exp(ba @ onehot.T), MINMU)
        mu[act] = mua
        active = deviance_step(const, ya[..., None], mua[..., None], al, dev_old, act, iters, t)
        if active.size == 0:
            break
    w = mu / (1 + alpha[:, None] * mu)
    sw = w @ onehot
    solve, inv_diag = _cells_ridged(sw, LAMBDA)
    contrast = np.zeros_like(sw)
    contrast[:, 0], contrast[:, 1] = -1.0, 1.0
    v = solve(contrast)
    var = np.sum(sw * v * v, axis=1)
    hat = w * (inv_diag @ onehot.T)
    with np.errstate(over="ignore"):
        mu_raw = s * np.exp(beta @ onehot.T)
    return beta, start, mu_raw, var, hat, iters


def _cells_fit_beta(values, sf, alpha, onehot):
    """fitNbinomGLMs for two cells: IRLS, then DESeq2's optim (prepost.de.nb.optim) for the
    genes it gave up on (typically a group of all-zero counts, whose mean IRLS drives to
    -inf). Returns the contrast cell 2 minus cell 1 (natural log) and its variance, mu
    (unclamped), the hat diagonals (fitBeta's, as DESeq2 does not update them after optim)
    and which genes went to optim."""
    beta, start, mu, var, hat, iters = _cells_irls(values[..., None], sf[:, None], alpha, onehot)
    lfc = beta[:, 1] - beta[:, 0]
    lfc_var = var
    redo = np.flatnonzero((iters >= MAXIT) | np.isnan(beta).any(axis=1))
    if redo.size:
        x = np.column_stack([np.ones(len(sf)), onehot[:, 1]])  # R's coding: intercept, group
        with one_blas_thread():
            for i in redo:  # the few genes DESeq2 hands to optim
                coef = optim_start(
                    np.array([beta[i, 0], beta[i, 1] - beta[i, 0]]),
                    np.array([start[i, 0], start[i, 1] - start[i, 0]]),
                    bool(np.all(np.isfinite(beta[i]))),
                )
                par, mu[i], sigma, _ = optim_fit(values[i], sf, alpha[i], x, coef)
                lfc[i] = par[1] * np.log(2)
                lfc_var[i] = max(sigma[1, 1], 0.0)
    optim = np.zeros(len(values), dtype=bool)
    optim[redo] = True
    return lfc, lfc_var, mu, hat, optim


def _cells_dispersions(values, sf, onehot, n_cpus, prior=None):
    """Gene-wise, trend, prior and MAP dispersions for counts ``values`` (genes x n, no all-zero
    gene) under the cell-means design. DESeq2 uses the linear-model mu here (every design row
    is one of the cells' own rows: its linearMu case). ``prior`` = (trend (a0, a1), prior
    variance, varLogDispEsts) of an earlier fit: DESeq2's refit after replacing outliers keeps
    them. Returns (dispersions, prior)."""
    n_samples, k = onehot.shape
    m, p = n_samples, k
    norm = values / sf
    bm = norm.mean(axis=1)
    bv = norm.var(axis=1, ddof=1)
    lin = (norm @ onehot) / onehot.sum(axis=0)
    lin = lin @ onehot.T  # cell means of the normalised counts, per sample
    alpha_init = start_dispersion(norm, np.maximum(lin, 1.0), bm, bv, sf, m - p, n_samples)
    y = values[..., None]
    mu = np.maximum(lin * sf, MINMU)[..., None]
    grp = _Cells(onehot)
    disp_gene = genewise_dispersions(y, mu, alpha_init, n_samples, grp, n_cpus)
    if prior is None:
        disp_fit, trend = _trend(bm, disp_gene)
        prior_var, var_log = _prior_var(disp_gene, disp_fit, m - p)
        prior = (trend, prior_var, var_log)
    trend, prior_var, var_log = prior
    disp_fit = trend[0] + trend[1] / bm
    disp = _map_dispersion(y, mu, disp_gene, disp_fit, prior_var, var_log, n_samples, grp, n_cpus)
    return disp, prior, (disp_gene, disp_fit)


def _cells_wald(values, sf, onehot, disp, n_cpus):
    """Final fit: (contrast (natural log), its variance, mu unclamped, hat diagonals, refitted
    with optim)."""
    return _chunked(
        lambda yb, db: _cells_fit_beta(yb, sf, db, onehot), n_cpus, values.shape[0], values, disp
    )


def fast_two_group_deseq2(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    group: str = "response",
    levels: tuple[str, str] = ("non_responder", "responder"),
    n_cpus: int = 1,
    given: pd.Series | None = None,
) -> pd.DataFrame:
    """DESeq2 for ``~ group`` (two groups, unpaired), levels[1] vs levels[0], vectorised over genes.

    Why: pydeseq2 spends about a minute on this two-coefficient design at 20,000 genes whatever
    the sample count, the slowest job of the workflow. In the cell-means basis X'WX is
    diagonal, so IRLS, the Cox-Reid term and its derivative are per-group sums. The steps are
    DESeq() + results(name = ...) of DESeq2 1.38 with a formula design, including its Cook's
    distance handling: Cook's distances with robust method-of-moments dispersions; with >= 7
    samples in a group (minReplicatesForReplace) outlier counts of that group's samples are
    replaced by the trimmed mean (trim 0.2) x size factor and the affected genes refitted
    (gene-wise dispersions, MAP with the first fit's trend and prior, Wald), baseMean taken
    from the replaced counts; results() sets the p-value of a gene NA when its largest Cook's
    distance over non-replaceable samples of groups of >= 3 exceeds the F(0.99; p, m - p)
    quantile, unless 3 or more counts exceed the outlier's count (DESeq2's heuristic for
    two-group designs). The ridge and the optim refit as fast_paired_deseq2. samples: indexed by sample id with column ``group`` (values in
    ``levels``); the samples used are the table's. Returns the contract columns sorted by
    pvalue then gene. ``given``: size factors (Series by sample), default median of ratios."""
    if group not in samples.columns:
        raise ValueError(f"samples table lacks column {group!r}; expected the sample groups")
    lab = samples[group].astype("string")
    lab.index = lab.index.astype(str)
    bad = sorted(lab.index[~lab.isin(levels).fillna(False)])
    if bad:
        raise ValueError(f"sample(s) {bad}: column {group!r} must be one of {list(levels)}")
    data = counts.copy()
    data.columns = data.columns.astype(str)
    missing = [c for c in lab.index if c not in set(data.columns)]
    if missing:
        raise ValueError(f"sample(s) {missing} are not columns of the count matrix")
    data = data[list(lab.index)]
    values = count_values(data)
    genes = data.index.astype(str)
    cells = np.array([levels.index(v) for v in lab], dtype=int)
    onehot = (cells[:, None] == np.arange(2)[None, :]).astype(float)
    n_k = onehot.sum(axis=0).astype(int)
    m, p = len(cells), 2
    if n_k.min() < 1 or m - p < 1:
        raise ValueError(
            f"need samples in both groups {list(levels)} and more samples than 2; got "
            f"{dict(zip(levels, n_k.tolist()))}"
        )

    sf = size_factors(values) if given is None else given_size_factors(given, data.columns)
    norm = values / sf
    base_mean = norm.mean(axis=1)
    nz = values.sum(axis=1) > 0
    vals = values[nz]
    disp, prior, (disp_gene, disp_fit) = _cells_dispersions(vals, sf, onehot, n_cpus)
    first_base_mean = base_mean.copy()
    lfc, lfc_var, mu, hat, optim = _cells_wald(vals, sf, onehot, disp, n_cpus)

    # Cook's distances of the first fit (nbinomWaldTest)
    rm_disp = _robust_mom_disp(norm[nz], cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        cooks = (vals - mu) ** 2 / (mu + rm_disp[:, None] * mu**2) / p * hat / (1 - hat) ** 2
    for_cooks = n_k[cells] >= 3  # recordMaxCooks: samples in cells of >= 3 (m > p holds)
    max_cooks = cooks[:, for_cooks].max(axis=1) if for_cooks.any() else np.full(len(vals), np.nan)
    cutoff = float(D.f_ppf(0.99, p, m - p))

    # refitWithoutOutliers
    replaceable = n_k[cells] >= MIN_REPLICATES_FOR_REPLACE
    replace = np.any(cooks > cutoff, axis=1) if replaceable.any() else np.zeros(len(vals), bool)
    zero_rows = np.array([], dtype=int)
    if replace.any():
        trim_bm = r_trimmed_mean(norm[nz][replace], 0.2)
        repl = np.trunc(trim_bm[:, None] * sf[None, :])
        swap = (cooks[replace] > cutoff) & replaceable[None, :]
        new = np.where(swap, repl, vals[replace])
        bm_nz = base_mean[nz]
        bm_nz[replace] = (new / sf).mean(axis=1)  # getBaseMeansAndVariances on new counts
        base_mean[np.flatnonzero(nz)] = bm_nz
        now_zero = new.sum(axis=1) == 0
        if (~now_zero).any():  # DESeq2 refits only when some replaced gene is not all zero
            idx = np.flatnonzero(replace)[~now_zero]
            d2, _, _ = _cells_dispersions(new[~now_zero], sf, onehot, n_cpus, prior)
            lfc[idx], lfc_var[idx], _, _, optim[idx] = _cells_wald(
                new[~now_zero], sf, onehot, d2, n_cpus
            )
            # a gene left all zero by the replacement is not refitted; DESeq2 1.38's results()
            # reports it as log2FoldChange 0, lfcSE 0, stat 0, pvalue 1 (measured:
            # tests/fixtures/de/two_group_*, gene t0023)
            zero_rows = np.flatnonzero(replace)[now_zero]
            lfc[zero_rows], lfc_var[zero_rows] = 0.0, 0.0
            optim[zero_rows] = False  # not fitted at all (R's betaIter is NA)
            if replaceable.all():
                max_cooks = np.full(len(vals), np.nan)
            else:
                kept = cooks.copy()
                kept[:, replaceable] = 0
                max_cooks = kept[:, for_cooks].max(axis=1)

    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 of zero_rows, set below
        out = _wald_table(genes, base_mean, nz, lfc, lfc_var)
    out.loc[np.flatnonzero(nz)[zero_rows], ["stat", "pvalue"]] = [0.0, 1.0]
    # results(): Cook's filter with the two-group heuristic, then independent filtering
    with np.errstate(invalid="ignore"):
        outlier = max_cooks > cutoff  # NaN (no Cook's recorded): not an outlier
    if outlier.any():
        rows = np.flatnonzero(outlier)
        worst = np.argmax(np.where(np.isnan(cooks[rows]), -np.inf, cooks[rows]), axis=1)
        out_count = vals[rows, worst]
        larger = np.sum(vals[rows] > out_count[:, None], axis=1)
        outlier[rows[larger >= 3]] = False
    pvalue = out["pvalue"].to_numpy().copy()
    pvalue[np.flatnonzero(nz)[outlier]] = np.nan
    out["pvalue"] = pvalue
    out["padj"] = independent_filtering(base_mean, pvalue, FILTER_ALPHA)
    out = _sorted(out)
    trend, prior_var, _ = prior
    out.attrs["fit"] = fit_info(f"~ {group}", trend, prior_var, genes[nz][optim])
    # plotDispEsts values of the first fit (before Cook's replacement), as DESeq2's mcols
    out.attrs["model"] = dispersion_values(
        genes, first_base_mean, nz, disp_gene, disp_fit, disp, prior[2]
    )
    return out
