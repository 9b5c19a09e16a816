"""The DE table every model writes, the sample-sheet check the paired models share and the
design formula a fit records."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

RESULT_COLUMNS = ["gene", "mean_expr", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
_FACTOR_COLUMN = re.compile(r"([^\[\]:]+)\[[^\]]*\]")


def design_text(design) -> str:
    """The design as a formula for the record of a fit (``table.attrs["fit"]["design"]``): a
    formula string as given; a design matrix (prepost.de.contrasts' column names) as
    ``~ term + ...``, one term per factor whose treatment-coded columns are ``name[level]``
    (``patient[P02]``, ``batch[b2]`` -> patient, batch), a numeric covariate by its name and an
    interaction column (``timepoint[post]:response[responder]``) as it is; the intercept is
    implied, as in R."""
    if isinstance(design, str):
        return design
    terms: list[str] = []
    for col in map(str, design.columns):
        if col == "Intercept":
            continue
        m = _FACTOR_COLUMN.fullmatch(col)
        term = m.group(1) if m else col
        if term not in terms:
            terms.append(term)
    return "~ " + (" + ".join(terms) if terms else "1")


def model_values(genes, mean_expr, **cols) -> dict:
    """Per-gene model diagnostics of a fit (``table.attrs["model"]``, written by the de rule as
    de/{contrast}.model.tsv for the dispersion and SA plots) as a dict of lists: gene,
    mean_expr, then ``cols``. Lists, not arrays, so tables' attrs stay comparable."""
    out = {"gene": [str(g) for g in genes], "mean_expr": np.asarray(mean_expr, float).tolist()}
    out.update({k: np.asarray(v).tolist() for k, v in cols.items()})
    return out


def check_samples(expr: pd.DataFrame, samples: pd.DataFrame, ref: str, alt: str) -> pd.DataFrame:
    """Validate the sample sheet against the matrix; return it with str patient/timepoint."""
    missing_cols = [c for c in ("patient", "timepoint") if c not in samples.columns]
    if missing_cols:
        raise ValueError(
            f"samples table lacks column(s) {missing_cols}; expected columns 'patient' and "
            f"'timepoint' indexed by sample id"
        )
    if samples.index.has_duplicates:
        dup = sorted(map(str, samples.index[samples.index.duplicated()].unique()))
        raise ValueError(f"samples table has duplicated sample id(s): {dup}")
    if samples["patient"].isna().any() or samples["timepoint"].isna().any():
        bad = sorted(map(str, samples.index[samples[["patient", "timepoint"]].isna().any(axis=1)]))
        raise ValueError(f"samples {bad} have no patient or timepoint")
    sheet = pd.DataFrame(
        {"patient": samples["patient"].astype(str), "timepoint": samples["timepoint"].astype(str)},
        index=samples.index.astype(str),
    )
    other = sorted(set(sheet["timepoint"]) - {ref, alt})
    if other:
        raise ValueError(
            f"samples table: timepoint value(s) {other} are neither ref {ref!r} nor alt {alt!r}"
        )
    have = set(map(str, expr.columns))
    absent = [s for s in sheet.index if s not in have]
    if absent:
        raise ValueError(f"sample(s) {absent} of the samples table are not columns of the matrix")
    has = sheet.groupby("patient")["timepoint"].agg(lambda t: {ref, alt} <= set(t))
    unpaired = sorted(has.index[~has])
    if unpaired:
        raise ValueError(
            f"patient(s) {unpaired} lack a {ref!r} or an {alt!r} sample; pass only samples of "
            f"patients that have both"
        )
    if len(has) < 2:
        raise ValueError(f"need at least 2 patients with both {ref!r} and {alt!r}, got {len(has)}")
    return sheet
