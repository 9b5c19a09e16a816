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
