"""The patient as a random effect: limma's duplicateCorrelation + lmFit(block=), and voom for
counts, numerically equal to limma 3.54 / edgeR 3.40.

A partly paired cohort (some patients with both biopsies, some with one) cannot be fitted with
the patient as a fixed block without throwing the unpaired samples away. limma's answer
(User's Guide, "multi-level experiments") keeps every sample: the samples of one patient share
a consensus correlation rho, estimated by ``duplicateCorrelation`` (per gene a REML fit of the
two variance components, then tanh of the 15%-trimmed mean of atanh(rho) over genes), and
``lmFit(block=, correlation=)`` fits every gene by generalised least squares with that
intra-patient correlation. For counts the guide runs voom, duplicateCorrelation, voom again with
the block and correlation, duplicateCorrelation again, then lmFit with the voom weights.

This module reimplements those steps so the workflow needs no R at run time
(tests/test_mixed.py checks them against R on tests/fixtures/mixed/, made by its
make_fixture.R):

- duplicate_correlation: statmod's mixedModel2Fit (REML through the residual space of the
  design, then a gamma GLM of the squared rotated residuals on the block eigenvalues, fitted by
  statmod's damped Fisher scoring glmgam.fit with limma's maxit = 20) for every gene at once.
  The rotation is taken from the eigen-decomposition of Z'(I - H)Z (nblocks x nblocks) instead
  of the SVD of Q2'Z; the GLM depends on the rotated residuals only through their sums within
  equal eigenvalues, which the two share. Genes are grouped by missingness pattern (one
  decomposition per pattern) or, with weights, decomposed in stacked batches.
- gls_fit: limma's gls.series: whitening by the Cholesky factor of the intra-block correlation
  matrix (scaled by the weights), least squares per missingness pattern or, with weights,
  per gene in stacked batches.
- voom, tmm_factors, filter_by_expr, r_lowess: limma's voom (with R's lowess and approxfun),
  edgeR's calcNormFactors(method = "TMM") and filterByExpr.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg

from prepost import distributions as D
from prepost.de.limma import _contrast_vector, _estimable_columns, squeeze_var
from prepost.de.results import design_text, model_values
from prepost.stats import bh_adjust

ENGINE = "limma-style mixed model (prepost.de.mixed)"
TRIM = 0.15  # duplicateCorrelation's trim
RHO_MAX = 0.99
GLMGAM_MAXIT = 20  # limma passes maxit = 20 to mixedModel2Fit
GLMGAM_TOL = 1e-6
CHUNK = 1024  # genes per stacked batch (memory: CHUNK x blocks^2 doubles)


class MixedModelError(ValueError):
    """A block design that cannot be fitted."""


# ---------------------------------------------------------------------------------------------
# duplicateCorrelation


def _glmgam(d: np.ndarray, cnt: np.ndarray, ssum: np.ndarray, start: np.ndarray) -> np.ndarray:
    """statmod's glmgam.fit of E(dy) = b0 + b1 * d (gamma, identity link) for every gene at once.

    Rows are groups of identical design rows (d), each with cnt rows whose responses sum to
    ssum; genes x groups arrays. start: genes x 2. The iteration, damping and stopping rules
    are glmgam.fit's, in lockstep over genes (each stops on its own)."""
    g = d.shape[0]
    beta = start.copy()
    on = cnt > 0

    def deviance(b, rows):
        mu = b[:, :1] + b[:, 1:] * d[rows]
        o = on[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(o, (ssum[rows] - cnt[rows] * mu) / mu + cnt[rows] * np.log(mu), 0.0)
        dev = 2 * term.sum(axis=1)
        bad = (o & (mu < 0)).any(axis=1) | ~np.isfinite(dev)
        return np.where(bad, np.inf, dev), mu

    dev, mu = deviance(beta, np.arange(g))
    lam = np.zeros(g)
    active = np.ones(g, bool)
    first = np.ones(g, bool)
    it = np.zeros(g, int)
    eye = np.eye(2)
    while active.any():
        idx = np.flatnonzero(active)
        it[idx] += 1
        m = mu[idx]
        v = np.where(on[idx], m**2, 0.0)
        vmax = np.max(v, axis=1, keepdims=True)
        v = np.maximum(v, vmax / 1e3)
        wc = np.where(on[idx], cnt[idx] / v, 0.0)
        dd = d[idx]
        xvx = np.empty((len(idx), 2, 2))
        xvx[:, 0, 0] = wc.sum(axis=1)
        xvx[:, 0, 1] = xvx[:, 1, 0] = (wc * dd).sum(axis=1)
        xvx[:, 1, 1] = (wc * dd**2).sum(axis=1)
        maxinfo = np.maximum(xvx[:, 0, 0], xvx[:, 1, 1])
        f = first[idx]
        lam[idx[f]] = np.abs((xvx[f, 0, 0] + xvx[f, 1, 1]) / 2) / 2
        first[idx] = False
        r = np.where(on[idx], (ssum[idx] - cnt[idx] * m) / v, 0.0)
        dl = np.stack([r.sum(axis=1), (r * dd).sum(axis=1)], axis=1)
        betaold = beta[idx].copy()
        devold = dev[idx].copy()
        lev = np.zeros(len(idx), int)
        dbeta = np.zeros((len(idx), 2))
        pending = np.ones(len(idx), bool)
        too_much = np.zeros(len(idx), bool)
        while pending.any():
            p = np.flatnonzero(pending)
            lev[p] += 1
            a = xvx[p] + lam[idx[p], None, None] * eye
            det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
            db0 = (a[:, 1, 1] * dl[p, 0] - a[:, 0, 1] * dl[p, 1]) / det
            db1 = (a[:, 0, 0] * dl[p, 1] - a[:, 1, 0] * dl[p, 0]) / det
            dbeta[p] = np.stack([db0, db1], axis=1)
            trial = betaold[p] + dbeta[p]
            beta[idx[p]] = trial
            dv, mu_p = deviance(beta[idx[p]], idx[p])
            mu[idx[p]] = mu_p
            dev[idx[p]] = dv
            ok = dv <= devold[p]
            stop = ~ok & (lam[idx[p]] / maxinfo[p] > 1e15)
            beta[idx[p[stop]]] = betaold[p[stop]]
            too_much[p[stop]] = True
            pending[p[ok | stop]] = False
            more = p[~ok & ~stop]
            lam[idx[more]] *= 2
        done = lam[idx] / maxinfo > 1e15
        lam[idx[(lev == 1) & ~done]] /= 10
        done |= np.sum(dl * dbeta, axis=1) < GLMGAM_TOL
        done |= it[idx] > GLMGAM_MAXIT
        active[idx[done]] = False
    return beta


def _varcomp(d: np.ndarray, cnt: np.ndarray, ssum: np.ndarray, mq: np.ndarray) -> np.ndarray:
    """mixedModel2Fit's variance components (residual, block) from grouped rows; genes x 2."""
    on = cnt > 0
    # least squares of dy on (1, d): normal equations over the grouped rows
    s0 = np.where(on, cnt, 0).sum(axis=1).astype(float)
    s1 = np.where(on, cnt * d, 0).sum(axis=1)
    s2 = np.where(on, cnt * d**2, 0).sum(axis=1)
    t0 = np.where(on, ssum, 0).sum(axis=1)
    t1 = np.where(on, ssum * d, 0).sum(axis=1)
    det = s0 * s2 - s1**2
    with np.errstate(divide="ignore", invalid="ignore"):
        b1 = (s0 * t1 - s1 * t0) / det
        b0 = (t0 - b1 * s1) / s0
    ls = np.stack([b0, b1], axis=1)
    nonzero = np.where(on & (np.abs(d) > 1e-15), cnt, 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dmean = s1 / s0
        dvar = (s2 - s0 * dmean**2) / (s0 - 1)
    glm = (mq > 2) & (nonzero > 1) & (dvar > 1e-15) & (det > 0)
    out = ls.copy()
    out[det <= 0] = np.nan  # d constant: lm.fit gives NA for the block component
    if glm.any():
        fitted = ls[glm, :1] + ls[glm, 1:] * d[glm]
        nonneg = np.where(on[glm], fitted >= 0, True).all(axis=1)
        start = np.where(nonneg[:, None], ls[glm], np.stack([t0[glm] / mq[glm], np.zeros(glm.sum())], axis=1))
        out[glm] = _glmgam(d[glm], cnt[glm], ssum[glm], start)
    return out


def _rotated(y: np.ndarray, x: np.ndarray, zmat: np.ndarray):
    """For stacked genes: y (G x n), x (G x n x p, full column rank), zmat (n x nz block
    indicators) -> the rows of mixedModel2Fit's gamma GLM, grouped: eigenvalues d of
    M = Z'(I-H)Z (G x k), the squared rotated residuals (v'Z'r)^2 / d summed within each
    group (G x k), the group sizes (G x k), and the residual sum of squares.

    M = D - P'P with D = diag(block sizes) and P = Q1'Z (p x nz, Q1 an orthonormal basis of
    the design): on the blocks of one size s, every direction orthogonal to the rows of P has
    eigenvalue s, so only W (the span of P's rows restricted to each block size, at most
    p per size) needs an eigen-decomposition, of a small k x k matrix whatever the number
    of patients."""
    g, n, p = x.shape
    q, _ = np.linalg.qr(x)  # G x n x p
    r = y - np.einsum("gnp,gp->gn", q, np.einsum("gnp,gn->gp", q, y))
    pz = np.swapaxes(q, 1, 2) @ zmat  # G x p x nz
    zr = r @ zmat  # G x nz: Z'r
    sizes = zmat.sum(axis=0)
    d_parts, dy_parts, cnt_parts, bases = [], [], [], []
    for size in np.unique(sizes):
        cols = np.flatnonzero(sizes == size)
        _, _, vh = np.linalg.svd(pz[:, :, cols], full_matrices=False)  # G x k_s x n_s
        bases.append((cols, vh, size))
        gs = zr[:, cols]
        inside = np.einsum("gkn,gn->gk", vh, gs)
        rest = np.maximum(np.sum(gs**2, axis=1) - np.sum(inside**2, axis=1), 0.0)
        mult = len(cols) - vh.shape[1]
        d_parts.append(np.full((g, 1), size))
        dy_parts.append((rest / size)[:, None])
        cnt_parts.append(np.full((g, 1), float(mult)))
    # M on W: diag(sizes of the basis vectors) - (P B)'(P B)
    pb = np.concatenate([pz[:, :, cols] @ np.swapaxes(vh, 1, 2) for cols, vh, _ in bases], axis=2)
    gb = np.concatenate([np.einsum("gkn,gn->gk", vh, zr[:, cols]) for cols, vh, _ in bases], axis=1)
    diag = np.concatenate([np.full(vh.shape[1], size) for _, vh, size in bases])
    mw = np.einsum("k,kl->kl", diag, np.eye(len(diag)))[None] - np.swapaxes(pb, 1, 2) @ pb
    evals, evecs = np.linalg.eigh(mw)
    proj = np.einsum("gkl,gk->gl", evecs, gb)
    pos = evals > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        dy_w = np.where(pos, proj**2 / np.where(pos, evals, 1.0), 0.0)
    d = np.concatenate([np.where(pos, evals, 0.0), *d_parts], axis=1)
    dy = np.concatenate([dy_w, *dy_parts], axis=1)
    cnt = np.concatenate([pos.astype(float), *cnt_parts], axis=1)
    return d, dy, cnt, np.sum(r**2, axis=1)


def _gene_rho(y, x, zmat, n_obs, rank):
    """rho = block / (block + residual) variance for stacked genes sharing the block matrix."""
    d, dy, cnt, rss = _rotated(y, x, zmat)
    mq = np.full(len(y), n_obs - rank, dtype=float)
    rest_n = mq - cnt.sum(axis=1)  # the residual space's directions with eigenvalue 0
    rest = np.maximum(rss - dy.sum(axis=1), 0.0)
    dg = np.concatenate([d, np.zeros((len(y), 1))], axis=1)
    cnt = np.concatenate([cnt, rest_n[:, None]], axis=1)
    ssum = np.concatenate([dy, rest[:, None]], axis=1)
    vc = _varcomp(dg, cnt, ssum, mq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return vc[:, 1] / vc.sum(axis=1)


def _patterns(finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct missingness patterns (rows of ``finite``) and each gene's pattern index."""
    if finite.all():
        return finite[:1], np.zeros(len(finite), dtype=int)
    packed = np.packbits(finite, axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return finite[first], inverse.reshape(-1)


def _indicator(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    levels, codes = np.unique(block, return_inverse=True)
    return (codes.reshape(-1)[:, None] == np.arange(len(levels))[None]).astype(float), levels


def duplicate_correlation(
    y: np.ndarray, design: np.ndarray, block, weights: np.ndarray | None = None, trim: float = TRIM
) -> dict:
    """limma's ``duplicateCorrelation(y, design, block=, weights=)``.

    y: genes x samples (NaN allowed); design: samples x coefficients; block: a label per sample;
    weights: genes x samples or None. Returns {"consensus": float, "atanh": per-gene atanh(rho)
    (NaN where not estimable), "note": None or why the correlation was set to 0}."""
    y = np.asarray(y, float)
    x = np.asarray(design, float)
    block = np.asarray(block).astype(str)
    n_genes, n = y.shape
    nbeta = x.shape[1]
    _, counts = np.unique(block, return_counts=True)
    max_block = int(counts.max())
    zero = {"consensus": 0.0, "atanh": np.zeros(n_genes)}
    if max_block == 1:
        return {**zero, "note": "blocks all of size 1: intra-block correlation set to zero"}
    zfull, _ = _indicator(block)
    q, _r = np.linalg.qr(x[:, _estimable_columns(x)], mode="complete")
    rank = len(_estimable_columns(x))
    qtb = q.T @ zfull[:, 1:]
    if np.max(np.abs(qtb[rank:]), initial=0) < 1e-8:
        return {**zero, "note": "block factor already in the design: correlation set to zero"}
    if weights is not None:
        weights = np.asarray(weights, float)
        weights = np.where(weights > 0, weights, np.nan)
        y = np.where(np.isfinite(weights), y, np.nan)
    rho = np.full(n_genes, np.nan)
    patterns, inverse = _patterns(np.isfinite(y))
    for k, obs in enumerate(patterns):
        rows = np.flatnonzero(inverse == k)
        cols = np.flatnonzero(obs)
        n_obs = len(cols)
        blocks_here = np.unique(block[cols])
        nb = len(blocks_here)
        if not (n_obs > nbeta + 2 and 1 < nb < n_obs - 1):
            continue
        xo = x[cols]
        keep = _estimable_columns(xo)
        xo = xo[:, keep]
        zmat, _ = _indicator(block[cols])
        for start in range(0, len(rows), CHUNK):
            sel = rows[start : start + CHUNK]
            yo = y[np.ix_(sel, cols)]
            if weights is None:
                sw = np.ones_like(yo)
            else:
                sw = np.sqrt(weights[np.ix_(sel, cols)])
            xs = sw[:, :, None] * xo[None]
            rho[sel] = _gene_rho(sw * yo, xs, zmat, n_obs, len(keep))
    rho_min = 1 / (1 - max_block) + 0.01
    rho = np.where(np.isfinite(rho), np.clip(rho, rho_min, RHO_MAX), np.nan)
    arho = np.arctanh(rho)
    ok = np.sort(arho[np.isfinite(arho)])
    if len(ok) == 0:
        raise MixedModelError("no gene has enough samples and blocks to estimate the within-block correlation")
    lo = int(np.floor(len(ok) * trim))
    consensus = float(np.tanh(np.mean(ok[lo : len(ok) - lo])))
    return {"consensus": consensus, "atanh": arho, "note": None}


# ---------------------------------------------------------------------------------------------
# lmFit with block + correlation (limma's gls.series)


def _cor_matrix(block: np.ndarray, correlation: float) -> np.ndarray:
    z, _ = _indicator(block)
    c = correlation * (z @ z.T)
    np.fill_diagonal(c, 1.0)
    return c


def gls_fit(
    y: np.ndarray,
    design: np.ndarray,
    block,
    correlation: float,
    contrast: np.ndarray,
    weights: np.ndarray | None = None,
):
    """limma's lmFit(y, design, block=, correlation=, weights=) for one contrast (a vector of
    design weights): coefficient c'b, its unscaled standard error, residual variance and
    residual df per gene; also the full coefficients (genes x p) for voom's fitted values."""
    if abs(correlation) >= 1:
        raise MixedModelError("correlation is 1 or -1, so the model is degenerate")
    y = np.asarray(y, float)
    x = np.asarray(design, float)
    block = np.asarray(block).astype(str)
    n_genes, n = y.shape
    p = x.shape[1]
    cmat = _cor_matrix(block, correlation)
    coef = np.full(n_genes, np.nan)
    su = np.full(n_genes, np.nan)
    sigma2 = np.full(n_genes, np.nan)
    df_resid = np.zeros(n_genes)
    beta_all = np.full((n_genes, p), np.nan)
    used = np.flatnonzero(contrast != 0)
    if weights is not None:
        weights = np.asarray(weights, float)
        weights = np.where(np.isfinite(weights), weights, 0.0)
        y = np.where(weights < 1e-15, np.nan, y)
    patterns, inverse = _patterns(np.isfinite(y))
    for k, obs in enumerate(patterns):
        rows = np.flatnonzero(inverse == k)
        cols = np.flatnonzero(obs)
        n_obs = len(cols)
        if n_obs == 0:
            continue
        chol = np.linalg.cholesky(cmat[np.ix_(cols, cols)])  # lower: C = L L'
        xo = x[cols]
        keep = _estimable_columns(linalg.solve_triangular(chol, xo, lower=True))
        rank = len(keep)
        df = n_obs - rank
        estimable = np.isin(used, keep).all()
        for start in range(0, len(rows), CHUNK):
            sel = rows[start : start + CHUNK]
            yo = y[np.ix_(sel, cols)]
            sw = np.ones_like(yo) if weights is None else np.sqrt(weights[np.ix_(sel, cols)])
            yw = linalg.solve_triangular(chol, (sw * yo).T, lower=True).T  # G x n
            xs = sw[:, :, None] * xo[:, keep][None]  # G x n x r
            xw = linalg.solve_triangular(
                chol, xs.transpose(1, 0, 2).reshape(n_obs, -1), lower=True
            ).reshape(n_obs, len(sel), rank).transpose(1, 0, 2)
            q, r = np.linalg.qr(xw)
            qty = np.einsum("gnp,gn->gp", q, yw)
            beta = np.linalg.solve(r, qty[:, :, None])[:, :, 0]
            resid = yw - np.einsum("gnp,gp->gn", xw, beta)
            df_resid[sel] = df
            if df > 0:
                sigma2[sel] = np.sum(resid**2, axis=1) / df
            full = np.full((len(sel), p), np.nan)
            full[:, keep] = beta
            beta_all[sel] = full
            if estimable:
                c = contrast[keep]
                coef[sel] = beta @ c
                rinv = np.linalg.inv(r)  # G x r x r
                su[sel] = np.sqrt(np.sum(np.einsum("gji,j->gi", rinv, c) ** 2, axis=1))
    return coef, su, sigma2, df_resid, beta_all


# ---------------------------------------------------------------------------------------------
# voom and its helpers


def r_lowess(x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iters: int = 3, delta: float | None = None):
    """R's ``lowess(x, y, f, iter, delta = 0.01 * diff(range(x)))``: returns (sorted x, fitted y)
    exactly as R's clowess (points within delta of the last fitted one interpolated, ties
    copied)."""
    order = np.argsort(np.asarray(x, float), kind="stable")
    x = np.asarray(x, float)[order]
    y = np.asarray(y, float)[order]
    n = len(x)
    if n < 2:
        return x, y.copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    ns = max(2, min(n, int(f * n + 1e-7)))
    rng = x[-1] - x[0]
    ys = np.empty(n)
    rw = np.ones(n)
    for it in range(1, iters + 2):
        nleft, nright = 0, ns - 1
        last = -1
        i = 0
        while True:
            while nright < n - 1 and x[i] - x[nleft] > x[nright + 1] - x[i]:
                nleft += 1
                nright += 1
            # lowest(): weights over nleft.. up to the first point beyond h on the right
            xs = x[i]
            h = max(xs - x[nleft], x[nright] - xs)
            seg_x = x[nleft:]
            r = np.abs(seg_x - xs)
            beyond = (r > 0.999 * h) & (seg_x > xs)
            stop = int(np.argmax(beyond)) if beyond.any() else len(seg_x)
            seg_x = seg_x[:stop]
            r = r[:stop]
            w = np.where(r <= 0.999 * h, np.where(r <= 0.001 * h, 1.0, (1 - (r / h) ** 3) ** 3), 0.0)
            if it > 1:
                w = w * rw[nleft : nleft + stop]
            a = w.sum()
            if a <= 0:
                ys[i] = y[i]
            else:
                w = w / a
                if h > 0:
                    mean = np.sum(w * seg_x)
                    c = np.sum(w * (seg_x - mean) ** 2)
                    if np.sqrt(c) > 0.001 * rng:
                        w = w * ((xs - mean) / c * (seg_x - mean) + 1)
                ys[i] = np.sum(w * y[nleft : nleft + stop])
            if last < i - 1:
                j = np.arange(last + 1, i)
                alpha = (x[j] - x[last]) / (x[i] - x[last])
                ys[j] = alpha * ys[i] + (1 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        res = y - ys
        if it > iters:
            break
        sc = np.mean(np.abs(res))
        ar = np.sort(np.abs(res))
        m1 = n // 2
        cmad = 3 * (ar[m1] + ar[n - m1 - 1]) if n % 2 == 0 else 6 * ar[m1]
        if cmad < 1e-7 * sc:
            break
        r = np.abs(res)
        rw = np.where(r <= 0.001 * cmad, 1.0, np.where(r <= 0.999 * cmad, (1 - (r / cmad) ** 2) ** 2, 0.0))
    return x, ys


def _approx_rule2(lx: np.ndarray, ly: np.ndarray, at: np.ndarray) -> np.ndarray:
    """R's approxfun(l, rule = 2, ties = list("ordered", mean)) evaluated at ``at``."""
    ux, start = np.unique(lx, return_index=True)
    sums = np.add.reduceat(ly, start)
    cnt = np.diff(np.append(start, len(lx)))
    uy = sums / cnt
    return np.interp(at, ux, uy)


def voom(counts: np.ndarray, design: np.ndarray, lib_size: np.ndarray, block=None,
         correlation: float | None = None, span: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """limma's voom(counts, design, lib.size, block=, correlation=): (log-cpm E, weights)."""
    counts = np.asarray(counts, float)
    x = np.asarray(design, float)
    lib = np.asarray(lib_size, float)
    e = np.log2((counts + 0.5) / (lib + 1) * 1e6)
    p = x.shape[1]
    dummy = np.zeros(p)
    dummy[0] = 1.0
    if block is None:
        q, r = np.linalg.qr(x)
        beta = np.linalg.solve(r, q.T @ e.T).T
        resid = e - beta @ x.T
        df = x.shape[0] - p
        sigma = np.sqrt(np.sum(resid**2, axis=1) / df)
    else:
        _, _, s2, _, beta = gls_fit(e, x, block, correlation, dummy)
        sigma = np.sqrt(s2)
    amean = e.mean(axis=1)
    sx = amean + np.mean(np.log2(lib + 1)) - np.log2(1e6)
    sy = np.sqrt(sigma)
    allzero = counts.sum(axis=1) == 0
    lx, ly = r_lowess(sx[~allzero], sy[~allzero], f=span)
    fitted = beta @ x.T
    fitted_count = 1e-6 * (2**fitted) * (lib + 1)
    w = 1 / _approx_rule2(lx, ly, np.log2(fitted_count)) ** 4
    return e, w


def tmm_factors(counts: np.ndarray, lib_size: np.ndarray | None = None) -> np.ndarray:
    """edgeR's calcNormFactors(method = "TMM") with its defaults (logratioTrim 0.3, sumTrim
    0.05, precision weighting, reference = the sample whose upper quartile is closest to the
    mean of upper quartiles)."""
    x = np.asarray(counts, float)
    lib = x.sum(axis=0) if lib_size is None else np.asarray(lib_size, float)
    x = x[(x > 0).any(axis=1)]
    ns = x.shape[1]
    if x.shape[0] == 0 or ns == 1:
        return np.ones(ns)
    f75 = np.quantile(x, 0.75, axis=0) / lib
    if np.median(f75) < 1e-20:
        ref = int(np.argmax(np.sqrt(x).sum(axis=0)))
    else:
        ref = int(np.argmin(np.abs(f75 - f75.mean())))
    f = np.array([_tmm_one(x[:, i], x[:, ref], lib[i], lib[ref]) for i in range(ns)])
    return f / np.exp(np.mean(np.log(f)))


def _tmm_one(obs, ref, n_o, n_r, logratio_trim=0.3, sum_trim=0.05) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log2((obs / n_o) / (ref / n_r))
        abs_e = (np.log2(obs / n_o) + np.log2(ref / n_r)) / 2
        v = (n_o - obs) / n_o / obs + (n_r - ref) / n_r / ref
    fin = np.isfinite(log_r) & np.isfinite(abs_e) & (abs_e > -1e10)
    log_r, abs_e, v = log_r[fin], abs_e[fin], v[fin]
    if np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = len(log_r)
    lo_l = np.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = np.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    from scipy import stats  # here, not at the top: scipy.stats costs 0.6 s of every job

    rl = stats.rankdata(log_r)
    ra = stats.rankdata(abs_e)
    keep = (rl >= lo_l) & (rl <= hi_l) & (ra >= lo_s) & (ra <= hi_s)
    f = np.nansum(log_r[keep] / v[keep]) / np.nansum(1 / v[keep])
    if not np.isfinite(f):
        f = 0.0
    return float(2**f)


def filter_by_expr(counts: np.ndarray, design: np.ndarray, lib_size=None, min_count=10,
                   min_total_count=15, large_n=10, min_prop=0.7) -> np.ndarray:
    """edgeR's filterByExpr(counts, design) (default thresholds): genes with enough counts."""
    y = np.asarray(counts, float)
    lib = y.sum(axis=0) if lib_size is None else np.asarray(lib_size, float)
    x = np.column_stack([np.ones(y.shape[1]), np.asarray(design, float)])  # R's hat() adds 1
    q, _ = np.linalg.qr(x[:, _estimable_columns(x)])
    h = np.sum(q**2, axis=1)
    min_n = 1 / np.max(h)
    if min_n > large_n:
        min_n = large_n + (min_n - large_n) * min_prop
    cutoff = min_count / np.median(lib) * 1e6
    cpm = y / lib * 1e6
    tol = 1e-14
    return ((cpm >= cutoff).sum(axis=1) >= min_n - tol) & (y.sum(axis=1) >= min_total_count - tol)


# ---------------------------------------------------------------------------------------------
# the moderated t of a block design (arrays and counts)


def fit_info(design, s2_prior, df_prior, correlation, values: str, extra: dict | None = None) -> dict:
    method = (
        "limma duplicateCorrelation + lmFit(block = patient) + eBayes (Smyth 2004), "
        "re-implementation equal to limma 3.54"
        if values == "log2"
        else "edgeR filterByExpr + TMM, limma voom / duplicateCorrelation / voom(block, "
        "correlation) / duplicateCorrelation / lmFit(block = patient) + eBayes (limma User's "
        "Guide), re-implementation equal to limma 3.54 / edgeR 3.40"
    )
    return {
        "engine": ENGINE,
        "method": method,
        "design": design_text(design),
        "dispersion_trend": None,
        "trend_coefficients": None,
        "s2_prior": float(s2_prior),
        "df_prior": float(df_prior),
        "consensus_correlation": float(correlation),
        **(extra or {}),
    }


def _table(genes, mean_expr, coef, su, sigma2, df_resid):
    s2_post, s20, d0 = squeeze_var(sigma2, df_resid)
    df_total = np.minimum(df_resid + d0, df_resid.sum())
    se = su * np.sqrt(s2_post)
    t = coef / se
    p = 2 * D.t_sf(np.abs(t), df_total)
    keep = np.isfinite(coef) & (df_resid >= 1) & np.isfinite(t)
    out = pd.DataFrame(
        {
            "gene": np.asarray(genes)[keep],
            "mean_expr": mean_expr[keep],
            "log2fc": coef[keep],
            "lfc_se": se[keep],
            "stat": t[keep],
            "pvalue": p[keep],
            "padj": bh_adjust(p[keep]),
            "df_total": df_total[keep],
        }
    )
    return out.sort_values(["pvalue", "gene"], kind="stable").reset_index(drop=True), s20, d0


def _check_inputs(expr: pd.DataFrame, design: pd.DataFrame, block: pd.Series, contrast):
    if not isinstance(design, pd.DataFrame):
        raise MixedModelError("design must be a DataFrame indexed by sample id with named columns")
    ids = list(design.index.astype(str))
    data = expr.copy()
    data.columns = data.columns.astype(str)
    absent = [s for s in ids if s not in set(data.columns)]
    if absent:
        raise MixedModelError(f"sample(s) {absent[:5]} of the design are not columns of the matrix")
    blk = pd.Series(block).copy()
    blk.index = blk.index.astype(str)
    missing = [s for s in ids if s not in blk.index]
    if missing:
        raise MixedModelError(f"sample(s) {missing[:5]} have no block (patient)")
    x = design.to_numpy(float)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise MixedModelError(f"design matrix of {x.shape[0]} samples x {x.shape[1]} columns is rank-deficient")
    return data[ids], x, blk.loc[ids].astype(str).to_numpy(), _contrast_vector(design, contrast)


def block_moderated_t(expr: pd.DataFrame, design: pd.DataFrame, contrast, block: pd.Series) -> pd.DataFrame:
    """limma ``eBayes(lmFit(y, design, block=, correlation=duplicateCorrelation(...)))`` on log2
    values (NaN allowed), one contrast. Returns the contract columns + df_total, with
    ``attrs["fit"]`` (fit_info, incl. consensus_correlation) and ``attrs["model"]``."""
    data, x, blk, c = _check_inputs(expr, design, block, contrast)
    y = data.to_numpy(float)
    dc = duplicate_correlation(y, x, blk)
    rho = dc["consensus"]
    coef, su, s2, dfr, _ = gls_fit(y, x, blk, rho, c)
    n_fin = np.isfinite(y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_expr = np.where(n_fin > 0, np.nansum(y, axis=1) / n_fin, np.nan)
    out, s20, d0 = _table(data.index.astype(str), mean_expr, coef, su, s2, dfr)
    out.attrs["fit"] = fit_info(design, s20, d0, rho, "log2", {"correlation_note": dc["note"]})
    has = dfr >= 1
    out.attrs["model"] = model_values(data.index.astype(str)[has], mean_expr[has],
                                      sigma=np.sqrt(s2[has]), df_residual=dfr[has])
    return out


def voom_block(counts: pd.DataFrame, design: pd.DataFrame, contrast, block: pd.Series) -> pd.DataFrame:
    """The limma User's Guide pipeline for counts with a random patient effect: filterByExpr,
    TMM, voom, duplicateCorrelation, voom(block, correlation), duplicateCorrelation, lmFit(block,
    correlation, voom weights), eBayes. Genes filterByExpr removes are left out (listed in
    ``attrs["fit"]["filtered_genes"]`` as a count). mean_expr is the mean log-cpm (AveExpr)."""
    data, x, blk, c = _check_inputs(counts, design, block, contrast)
    y = data.to_numpy(float)
    if not np.isfinite(y).all() or (y < 0).any():
        raise MixedModelError("counts must be finite and non-negative")
    keep = filter_by_expr(y, x)
    if keep.sum() < 2:
        raise MixedModelError(f"{int(keep.sum())} gene(s) pass filterByExpr; voom needs at least two")
    y = y[keep]
    genes = data.index.astype(str)[keep]
    lib = y.sum(axis=0)
    nf = tmm_factors(y, lib)
    lib_eff = lib * nf
    e, w = voom(y, x, lib_eff)
    dc1 = duplicate_correlation(e, x, blk, weights=w)
    e, w = voom(y, x, lib_eff, block=blk, correlation=dc1["consensus"])
    dc2 = duplicate_correlation(e, x, blk, weights=w)
    rho = dc2["consensus"]
    coef, su, s2, dfr, _ = gls_fit(e, x, blk, rho, c, weights=w)
    mean_expr = e.mean(axis=1)
    out, s20, d0 = _table(genes, mean_expr, coef, su, s2, dfr)
    out.attrs["fit"] = fit_info(design, s20, d0, rho, "counts", {
        "first_correlation": float(dc1["consensus"]),
        "correlation_note": dc2["note"],
        "filtered_genes": int((~keep).sum()),
        "norm_factors": {s: float(v) for s, v in zip(data.columns, nf)},
    })
    out.attrs["model"] = model_values(genes, mean_expr, sigma=np.sqrt(s2), df_residual=dfr)
    return out


def voom_fixed(counts: pd.DataFrame, design: pd.DataFrame, contrast) -> pd.DataFrame:
    """limma-voom without a random effect (filterByExpr, TMM, voom, weighted lmFit, eBayes):
    the paired baseline ``~ patient + timepoint`` that block designs are compared with."""
    data, x, _, c = _check_inputs(counts, design, pd.Series("b", index=design.index), contrast)
    y = data.to_numpy(float)
    keep = filter_by_expr(y, x)
    y = y[keep]
    genes = data.index.astype(str)[keep]
    lib = y.sum(axis=0)
    nf = tmm_factors(y, lib)
    e, w = voom(y, x, lib * nf)
    own = np.arange(len(data.columns)).astype(str)  # every sample its own block: lm.series
    coef, su, s2, dfr, _ = gls_fit(e, x, own, 0.0, c, weights=w)
    out, s20, d0 = _table(genes, e.mean(axis=1), coef, su, s2, dfr)
    out.attrs["fit"] = fit_info(design, s20, d0, 0.0, "counts", {"filtered_genes": int((~keep).sum())})
    return out
