"""One contrast of one prepared dataset, from files to files: the de rule (its plots:
prepost.de.figures)."""

from __future__ import annotations

import pandas as pd

from prepost import files
from prepost.de.fit import fit_contrast
from prepost.prepare.dataset import read_prepared
from prepost.vocabulary import COUNTS

PADJ_CUTS = (0.05, 0.1)


def fit_summary(table: pd.DataFrame, dataset: str, contrast: str, values: str, *, lfc_shrink="none") -> dict:
    """The contrast's record written next to its table (de/{contrast}.fit.json): what produced
    it (``table.attrs["fit"]``: engine, method, design, dispersion trend and coefficients,
    prior, optim genes, fallback; see prepost.de.fit.fit_contrast), the contrast's samples
    (``attrs["contrast"]``) and the counts of the table: genes (rows), genes_tested (with a
    p-value) and genes below each padj cut."""
    padj = table["padj"] if "padj" in table else pd.Series(dtype=float)
    record = {
        "dataset": dataset,
        "contrast": contrast,
        "values": values,
        **table.attrs.get("contrast", {}),
        "genes": int(len(table)),
        "genes_tested": int(table["pvalue"].notna().sum()) if "pvalue" in table else int(len(table)),
        **{f"genes_padj_below_{cut:g}": int((padj < cut).sum()) for cut in PADJ_CUTS},
        **table.attrs.get("fit", {}),
    }
    if values == COUNTS:
        record["lfc_shrink"] = lfc_shrink
    return record


def run_contrast(
    expression_path, samples_path, summary_path, contrast, dest, *, fit_dest=None, n_cpus=1,
    covariates=(), lfc_shrink="none",
) -> pd.DataFrame:
    """Fit one configured contrast (see prepost.de.contrasts) and write its DE table, and with
    ``fit_dest`` its fit_summary as JSON (both atomically). n_cpus (the rule's threads) goes to
    the count solvers; covariates and lfc_shrink are the dataset's config keys."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    table = fit_contrast(
        data,
        summary["values"],
        sheet,
        contrast,
        summary["dataset"],
        n_cpus=n_cpus,
        covariates=list(covariates or []),
        lfc_shrink=lfc_shrink,
        control_genes=(summary.get("size_factors") or {}).get("control_genes"),
        not_tested=summary.get("not_tested"),
    )
    files.write_tsv(table, dest)
    if fit_dest is not None:
        record = fit_summary(table, summary["dataset"], contrast, summary["values"], lfc_shrink=lfc_shrink)
        files.write_json(record, fit_dest)
    return table
