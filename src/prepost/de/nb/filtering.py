"""DESeq2's independent filtering (pvalueAdjustment) and R's lowess, which it uses."""

from __future__ import annotations

import numpy as np

from prepost.stats import bh_adjust
from prepost.vocabulary import FILTER_ALPHA


def r_lowess(x: np.ndarray, y: np.ndarray, f: float = 2 / 3, iters: int = 3) -> np.ndarray:
    """R's lowess (clowess) for sorted, distinct x spaced more than delta = 1% of the range
    apart (then every point is fitted, as in R); returns the smoothed y."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    if n < 2:
        return y.copy()
    ns = max(min(int(f * n + 1e-7), n), 2)
    rng_x = x[-1] - x[0]
    rw = np.ones(n)
    ys = np.empty(n)
    for it in range(iters + 1):
        nleft, nright = 0, ns - 1
        for i in range(n):  # 50 points in DESeq2's use: a loop over theta, not over genes
            while nright < n - 1 and x[i] - x[nleft] > x[nright + 1] - x[i]:
                nleft += 1
                nright += 1
            h = max(x[i] - x[nleft], x[nright] - x[i])
            r = np.abs(x - x[i])
            inwin = np.arange(n) >= nleft
            wt = np.where(r <= 0.001 * h, 1.0, (1 - (r / h) ** 3) ** 3) if h > 0 else np.ones(n)
            wt = np.where(inwin & (r <= 0.999 * h), wt, 0.0)
            # R stops at the first point beyond the window on the right
            wt[nright + 1 :] = np.where(r[nright + 1 :] <= 0.999 * h, wt[nright + 1 :], 0.0)
            if it > 0:
                wt = wt * rw
            a = wt.sum()
            if a <= 0:
                ys[i] = y[i]
                continue
            wt = wt / a
            if h > 0:
                m = np.sum(wt * x)
                cc = np.sum(wt * (x - m) ** 2)
                if np.sqrt(cc) > 0.001 * rng_x:
                    wt = wt * ((x[i] - m) / cc * (x - m) + 1)
            ys[i] = np.sum(wt * y)
        res = y - ys
        if it == iters:
            break
        sc = np.mean(np.abs(res))
        ar = np.sort(np.abs(res))
        m1 = n // 2
        cmad = 3 * (ar[m1] + ar[n - m1 - 1]) if n % 2 == 0 else 6 * ar[m1]
        if cmad < 1e-7 * sc:
            break
        r = np.abs(res)
        rw = np.where(
            r <= 0.001 * cmad, 1.0, np.where(r <= 0.999 * cmad, (1 - (r / cmad) ** 2) ** 2, 0.0)
        )
    return ys


def independent_filtering(
    base_mean: np.ndarray, pvalue: np.ndarray, alpha: float = FILTER_ALPHA
) -> np.ndarray:
    """DESeq2's pvalueAdjustment: BH within genes above each of 50 baseMean quantiles, keep the
    first threshold whose rejections reach the lowess maximum minus the residual RMS."""
    lower = np.mean(base_mean == 0)
    theta = np.linspace(lower, 0.95 if lower < 0.95 else 1.0, 50)
    cutoffs = np.quantile(base_mean, theta)  # R's quantile type 7
    padj = np.full((len(theta), len(base_mean)), np.nan)
    for k, cut in enumerate(cutoffs):  # 50 thresholds
        use = base_mean >= cut
        if use.any():
            padj[k, use] = bh_adjust(pvalue[use])
    num_rej = np.sum(padj < alpha, axis=1)
    fit = r_lowess(theta, num_rej.astype(float), f=1 / 5)
    if num_rej.max() <= 10:
        j = 0
    else:
        resid = num_rej[num_rej > 0] - fit[num_rej > 0] if np.any(num_rej > 0) else np.zeros(1)
        thresh = fit.max() - np.sqrt(np.mean(resid**2))
        j = int(np.flatnonzero(num_rej > thresh)[0]) if np.any(num_rej > thresh) else 0
    return padj[j]
