"""Array expression clean-up: GEO2R's log2 decision and transform, and probe -> gene collapse."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

__all__ = ["ExpressionError", "needs_log2", "log2_transform", "collapse_probes", "GEO2R_QUANTILES"]

log = logging.getLogger(__name__)

GEO2R_QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.99, 1.0)
MULTI_GENE_SEP = "///"
MIN_ANNOTATED_FRACTION = 0.5


class ExpressionError(ValueError):
    """Expression values or probe annotation unusable as given; the message says what was expected."""


def needs_log2(df: pd.DataFrame) -> bool:
    """GEO2R's rule for "these values are not yet log-scale".

    qx = quantiles (R type 7 = numpy "linear") at 0, .25, .5, .75, .99, 1 of all values, NaN
    ignored; log2 is needed when qx[4] > 100 or (qx[5] - qx[0] > 50 and qx[1] > 0).
    Infinite values are ignored like NaN (R's quantile would propagate them).
    """
    x = np.asarray(df, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ExpressionError("needs_log2: no finite values in the expression table; expected numbers")
    qx = np.quantile(x, GEO2R_QUANTILES)
    return bool(qx[4] > 100 or (qx[5] - qx[0] > 50 and qx[1] > 0))


def log2_transform(df: pd.DataFrame) -> pd.DataFrame:
    """log2 of the values with values <= 0 set to NaN first, as GEO2R does (no pseudo-count)."""
    x = df.astype("float64")
    x = x.mask(x <= 0)
    return np.log2(x)


def collapse_probes(table: pd.DataFrame, platform: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per gene symbol from a probes x samples table and a parse_platform() table.

    Rule: drop probes absent from the annotation, with no symbol, with several symbols
    ("A /// B", ambiguous), or with no value at all; then for each symbol keep the probe with
    the highest mean over samples (NaN ignored; computed on the values as passed, so call it
    after log2 to rank on the analysed scale); ties go to the first probe ID in sorted (string)
    order. Returns (genes x samples sorted by gene with index "gene", counts) where counts has
    int entries: probes, not_in_platform, no_symbol, multi_symbol, no_values,
    not_highest_mean, genes. Raises ExpressionError when fewer than half of the table's probe
    IDs are in the annotation (wrong platform file).
    """
    if not {"ID", "symbol"} <= set(platform.columns):
        raise ExpressionError(f"platform table needs columns ['ID', 'symbol']; found {list(platform.columns)}")
    n = len(table)
    if n == 0:
        raise ExpressionError("collapse_probes: the expression table has no probes (RNA-seq series? use the count table)")
    ann = platform.assign(ID=platform["ID"].astype(str), symbol=platform["symbol"].fillna("").astype(str))
    if ann["ID"].duplicated().any():
        dups = sorted(set(ann.loc[ann["ID"].duplicated(), "ID"]))[:5]
        raise ExpressionError(f"platform table has duplicate probe IDs {dups}")
    ids = pd.Index(table.index.astype(str))
    if ids.has_duplicates:
        raise ExpressionError(f"expression table has duplicate probe IDs {sorted(set(ids[ids.duplicated()]))[:5]}")
    sym = pd.Series(ids.map(ann.set_index("ID")["symbol"]), index=ids)  # NaN = not in platform
    found = int(sym.notna().sum())
    if found < MIN_ANNOTATED_FRACTION * n:
        raise ExpressionError(
            f"only {found} of the {n} probe IDs in the series matrix table are in the platform "
            f"annotation ({len(ann)} IDs, e.g. table {list(ids[:3])} vs annotation "
            f"{list(ann['ID'].head(3))}); expected at least {MIN_ANNOTATED_FRACTION:.0%}: wrong platform?"
        )
    sym = sym.fillna("\0missing").astype(str).str.strip()
    not_in = (sym == "\0missing").to_numpy()
    empty = (sym == "").to_numpy() & ~not_in
    multi = sym.str.contains(MULTI_GENE_SEP, regex=False).to_numpy() & ~not_in
    values = table.to_numpy(dtype="float64")
    finite = np.isfinite(values)
    cnt = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    mean = np.full(n, np.nan)
    np.divide(total, cnt, out=mean, where=cnt > 0)  # mean of the finite values; NaN if none
    no_val = np.isnan(mean) & ~(not_in | empty | multi)
    keep = ~(not_in | empty | multi | no_val)

    cand = pd.DataFrame({"gene": sym.to_numpy()[keep], "probe": ids.to_numpy()[keep], "mean": mean[keep]})
    cand["row"] = np.flatnonzero(keep)
    cand = cand.sort_values(["gene", "mean", "probe"], ascending=[True, False, True], kind="mergesort")
    best = cand.drop_duplicates("gene", keep="first")
    out = pd.DataFrame(values[best["row"].to_numpy()], columns=table.columns,
                       index=pd.Index(best["gene"].to_numpy(dtype=object), name="gene"))
    out = out.sort_index()
    counts = {
        "probes": n,
        "not_in_platform": int(not_in.sum()),
        "no_symbol": int(empty.sum()),
        "multi_symbol": int(multi.sum()),
        "no_values": int(no_val.sum()),
        "not_highest_mean": int(len(cand) - len(best)),
        "genes": int(len(out)),
    }
    log.info("collapse_probes: %s", counts)
    return out, counts
