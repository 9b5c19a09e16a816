"""Statistics every stage shares: BH adjustment, count checks, median-of-ratios size factors
and the normalised log2 scale.

One implementation of each, so the DE, the standardised effects, the set scores and the plots
put counts on the same scale (a slope plot's mean change is the DE's log2 fold change's
companion, not a library-size approximation of it). A leaf module: numpy, pandas and the
shared vocabulary only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prepost.vocabulary import COUNTS


def bh_adjust(p) -> np.ndarray:
    """Benjamini-Hochberg as R's p.adjust(method="BH"): NaN kept, n = number of finite p."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    pv = p[ok]
    n = len(pv)
    if n == 0:
        return out
    order = np.argsort(-pv, kind="stable")
    ranks = np.arange(n, 0, -1)
    adj = np.minimum.accumulate(n / ranks * pv[order])
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def count_values(counts: pd.DataFrame) -> np.ndarray:
    """Counts as float64, after checking they are finite non-negative integers, unique ids."""
    if counts.index.has_duplicates:
        raise ValueError(
            f"count matrix has duplicated gene id {counts.index[counts.index.duplicated()][0]!r}"
        )
    try:
        values = counts.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"count matrix has non-numeric values: {err}") from None
    bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"count matrix: gene {counts.index[i]!r}, sample {counts.columns[j]!r} has value "
            f"{values[i, j]!r}; expected a non-negative integer"
        )
    return values


def size_factors(counts: np.ndarray, control=None) -> np.ndarray:
    """DESeq2's median-of-ratios size factors (estimateSizeFactorsForMatrix, type "ratio"),
    over the genes with no zero count (Anders & Huber 2010). ``control``: a boolean mask over
    the rows (or row indices) of the genes to compute them on, as DESeq2's
    ``estimateSizeFactors(controlGenes = ...)`` (housekeeping genes of a NanoString panel);
    the geometric means are then those of the control genes only, as in DESeq2."""
    counts = np.asarray(counts, dtype=float)
    if control is not None:
        idx = np.asarray(control)
        counts = counts[idx]
        if counts.shape[0] == 0:
            raise ValueError("no control gene: cannot compute size factors from control genes")
    with np.errstate(divide="ignore"):
        logc = np.log(counts)
    loggeo = logc.mean(axis=1)
    use = np.isfinite(loggeo)
    if not use.any():
        raise ValueError("every gene contains at least one zero count: cannot compute size factors")
    sub = logc[use]  # a copy; logc is let go before the median's own copies
    del logc
    sub -= loggeo[use, None]
    sub[~np.isfinite(sub)] = np.nan  # zero counts are left out of each sample's median
    return np.exp(np.nanmedian(sub, axis=0))


def control_mask(genes, control_genes) -> np.ndarray | None:
    """Boolean mask of ``control_genes`` over ``genes`` (None when no control genes are set);
    a control gene missing from ``genes`` is an error, never silently dropped."""
    if control_genes is None:
        return None
    genes = pd.Index(genes).astype(str)
    missing = [g for g in control_genes if g not in genes]
    if missing:
        raise ValueError(f"control gene(s) {missing[:5]} are not in the count matrix")
    return genes.isin(list(control_genes))


def normalised_log2(counts: pd.DataFrame, sf=None) -> pd.DataFrame:
    """log2(count / size factor + 1), genes x samples. ``sf``: one factor per column (array or
    Series over the columns); default the median-of-ratios factors of these columns, which are
    the DE's when the columns are the contrast's samples."""
    if sf is None:
        sf = size_factors(count_values(counts))
    elif isinstance(sf, pd.Series):
        lacking = [s for s in counts.columns if s not in sf.index]
        if lacking:
            raise ValueError(f"size factors lack sample(s) {', '.join(map(str, lacking))}")
        sf = sf.reindex(counts.columns).to_numpy(dtype=float)
    sf = np.asarray(sf, dtype=float)
    if sf.shape != (counts.shape[1],) or not (np.isfinite(sf) & (sf > 0)).all():
        raise ValueError(
            f"size factors: expected {counts.shape[1]} finite values > 0, got {sf.tolist()[:5]}"
        )
    return np.log2(counts.astype(float) / sf + 1)


def control_genes_of(summary: dict) -> list[str] | None:
    """The size-factor control genes prepare recorded (a NanoString panel's retained
    housekeeping genes, prepare.json ``size_factors.control_genes``), else None."""
    return (summary.get("size_factors") or {}).get("control_genes")


def panel_size_factors(counts: pd.DataFrame, control_genes) -> pd.Series | None:
    """Size factors of these columns from control genes (None without control genes)."""
    if control_genes is None:
        return None
    sf = size_factors(count_values(counts), control=control_mask(counts.index, control_genes))
    return pd.Series(sf, index=counts.columns, name="size_factor")


def log2_scale(data: pd.DataFrame, values: str, sf=None) -> pd.DataFrame:
    """The log2 scale every per-sample comparison uses: counts -> normalised_log2 (``sf`` as
    there), log2 array values as they are. ``values`` is prepare's COUNTS or LOG2."""
    return normalised_log2(data, sf) if values == COUNTS else data.astype(float)


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
        from prepost.distributions import norm_sf

        out[approx] = np.minimum(1.0, 2 * norm_sf(np.abs(z)))
    for k in np.unique(n[exact]):
        rows = np.flatnonzero(exact & (n == k))
        counts = _signed_rank_null(int(k))
        cdf = np.cumsum(counts) / counts.sum()  # P(V <= v)
        sf = np.cumsum(counts[::-1])[::-1] / counts.sum()  # P(V >= v)
        vk = v[rows].astype(int)
        out[rows] = np.minimum(1.0, 2 * np.minimum(sf[vk], cdf[vk]))
    return out
