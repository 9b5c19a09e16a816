"""The t, normal, chi-square and F distribution functions the statistics use, straight from
scipy.special: the same routines scipy.stats calls (so the same numbers), without importing
scipy.stats, which costs about 0.6 s of every job's start (issue 19: 42 jobs in the demo).
Arguments broadcast like numpy; an infinite t df is the normal (stdtr handles it). Also the
Wilcoxon signed-rank test of the paired checks (signed_rank_p: its exact null distribution
or the normal approximation), for the same reason."""

from __future__ import annotations

import numpy as np
from scipy import special

_SQRT_2PI = np.sqrt(2 * np.pi)


def _bounded(q, out, lower: float):
    """scipy.stats' ppf convention at the ends: q = 0 gives the support's lower end, q = 1
    +inf, q outside [0, 1] NaN (the special functions alone give +inf at q = 0 for t)."""
    q, out = np.broadcast_arrays(q, out)
    out = np.where(q == 0, lower, np.where(q == 1, np.inf, out))
    out = np.where((q < 0) | (q > 1), np.nan, out)
    return out[()] if out.ndim == 0 else out


def norm_sf(x):
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_ppf(q):
    return special.ndtri(np.asarray(q, dtype=float))


def norm_pdf(x, scale=1.0):
    z = np.asarray(x, dtype=float) / scale
    return np.exp(-0.5 * z * z) / _SQRT_2PI / scale


def t_sf(x, df):
    return special.stdtr(np.asarray(df, dtype=float), -np.asarray(x, dtype=float))


def t_ppf(q, df):
    q = np.asarray(q, dtype=float)
    return _bounded(q, special.stdtrit(np.asarray(df, dtype=float), q), -np.inf)


def t_isf(q, df):
    return -t_ppf(q, df)


def chi2_sf(x, k):
    return special.chdtrc(np.asarray(k, dtype=float), np.asarray(x, dtype=float))


def chi2_ppf(q, k):
    q = np.asarray(q, dtype=float)
    return _bounded(q, 2.0 * special.gammaincinv(np.asarray(k, dtype=float) / 2, q), 0.0)


def f_sf(x, dfn, dfd):
    return special.fdtrc(np.asarray(dfn, dtype=float), np.asarray(dfd, dtype=float),
                         np.asarray(x, dtype=float))


def f_ppf(q, dfn, dfd):
    q = np.asarray(q, dtype=float)
    return _bounded(q, special.fdtri(np.asarray(dfn, dtype=float), np.asarray(dfd, dtype=float), q),
                    0.0)


_EXACT_MAX = 50  # R's wilcox.test: exact null distribution below 50 non-zero differences


def _signed_rank_null(n: int) -> np.ndarray:
    """Number of subsets of {1..n} with each rank sum 0..n(n+1)/2: the exact null counts of
    the signed-rank statistic V (R's dsignrank times 2^n). Integers below 2^50, exact in
    float64."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):  # subsets with rank k: every earlier sum shifted by k
        counts[k:] += counts[:-k].copy()
    return counts


def signed_rank_p(d) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-value per row of paired differences ``d`` (genes x
    pairs, NaN = missing pair), as R's wilcox.test(paired = TRUE) and
    scipy.stats.wilcoxon(zero_method="wilcox", correction=True) with the method R chooses:
    zero differences dropped; fewer than 50 non-zero differences, no ties and no zero: the
    exact null distribution, p = min(1, 2 min(P(V >= v), P(V <= v))); otherwise the normal approximation
    with the tie correction of the variance and the continuity correction. No non-zero
    difference: NaN. Vectorised over rows (one sort, no scipy.stats: its import is 0.9 s of
    every DE job, issue 19)."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    out = np.full(d.shape[0], np.nan)
    use = np.isfinite(d) & (d != 0)
    n = use.sum(axis=1)
    a = np.where(use, np.abs(d), np.inf)  # unused entries sort last
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    pos = np.take_along_axis(use & (d > 0), order, axis=1)
    m = d.shape[1]
    j = np.broadcast_to(np.arange(m), s.shape)
    valid = j < n[:, None]
    # ties: runs of equal |d| among the used entries; average rank = mean of the run's ranks
    starts = np.ones_like(valid)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    first = np.maximum.accumulate(np.where(starts, j, 0), axis=1)
    ends = np.ones_like(valid)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, j, m - 1)[:, ::-1], axis=1)[:, ::-1]
    size = np.where(valid, last - first + 1, 0)
    rank = (first + last) / 2 + 1
    v = np.sum(np.where(valid & pos, rank, 0.0), axis=1)
    tied = (size > 1).any(axis=1) | (np.isfinite(d) & (d == 0)).any(axis=1)  # R: TIES, ZEROES
    exact = (n > 0) & ~tied & (n < _EXACT_MAX)
    approx = (n > 0) & ~exact
    if approx.any():
        nn = n[approx].astype(float)
        ties = np.sum(np.where(valid, size.astype(float) ** 2 - 1, 0.0), axis=1)[approx]  # sum t^3 - t
        se = np.sqrt((nn * (nn + 1) * (2 * nn + 1) - ties / 2) / 24)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (v[approx] - nn * (nn + 1) / 4) / se
            z = z - np.sign(z) * 0.5 / se
        out[approx] = np.minimum(1.0, 2 * norm_sf(np.abs(z)))
    for k in np.unique(n[exact]):
        rows = np.flatnonzero(exact & (n == k))
        counts = _signed_rank_null(int(k))
        cdf = np.cumsum(counts) / counts.sum()  # P(V <= v)
        sf = np.cumsum(counts[::-1])[::-1] / counts.sum()  # P(V >= v)
        vk = v[rows].astype(int)
        out[rows] = np.minimum(1.0, 2 * np.minimum(sf[vk], cdf[vk]))
    return out
