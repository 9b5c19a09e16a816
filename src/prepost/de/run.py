"""One contrast of one prepared dataset, from files to files: the de rule (its plots:
prepost.de.figures)."""

from __future__ import annotations

import pandas as pd

from prepost import files
from prepost.de.fit import fit_contrast
from prepost.prepare.prepared import read_prepared
from prepost.provenance import software_versions
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


def model_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-gene model diagnostics of a fitted table (``attrs["model"]``: dispersions for
    counts, residual SD for arrays; prepost.de.fit), as written to de/{contrast}.model.tsv."""
    return pd.DataFrame(table.attrs.get("model") or {"gene": [], "mean_expr": []})


def factors_table(table: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """The hidden factors of a fitted table (``attrs["factors"]``) per sample with the sample's
    patient and timepoint, as written to de/{contrast}.factors.tsv; only the sample columns
    when the contrast has none (unwanted_factors 0)."""
    factors = table.attrs.get("factors")
    info = sheet.copy()
    if "sample" in info.columns:
        info = info.set_index("sample")
    info.index = info.index.astype(str)
    if factors is None:
        return pd.DataFrame(columns=["sample", "patient", "timepoint"])
    out = factors.copy()
    out.index = out.index.astype(str)
    out.insert(0, "timepoint", info.loc[out.index, "timepoint"].astype(str).to_numpy())
    out.insert(0, "patient", info.loc[out.index, "patient"].astype(str).to_numpy())
    return out.rename_axis("sample").reset_index()


def run_contrast(
    expression_path, samples_path, summary_path, contrast, dest, *, fit_dest=None, n_cpus=1,
    covariates=(), lfc_shrink="none", unwanted_factors=0, model_dest=None, factors_dest=None,
    unpaired="drop", definitions=None, shared=None,
) -> pd.DataFrame:
    """Fit one configured contrast (see prepost.de.contrasts) and write its DE table, and with
    ``fit_dest`` its fit_summary as JSON, with ``model_dest`` its per-gene model diagnostics
    (model_table) and with ``factors_dest`` its hidden factors (factors_table), all atomically.
    n_cpus (the rule's threads) goes to the count solvers; covariates, lfc_shrink and
    unwanted_factors are the dataset's config keys, unpaired its pairing.unpaired,
    definitions its contrasts declared as data ({name: declaration}); ``shared``: a dict
    kept across the contrasts of one job, so contrasts of one model share its fit
    (prepost.de.fit.fit_contrast)."""
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
        unwanted_factors=unwanted_factors,
        unpaired=unpaired,
        definitions=definitions,
        shared=shared,
    )
    files.write_tsv(table, dest)
    if model_dest is not None:
        files.write_tsv(model_table(table), model_dest)
    if factors_dest is not None:
        files.write_tsv(factors_table(table, sheet), factors_dest)
    if fit_dest is not None:
        record = fit_summary(table, summary["dataset"], contrast, summary["values"], lfc_shrink=lfc_shrink)
        engine = ["pydeseq2"] if record.get("engine") == "pydeseq2" else []
        record["software"] = software_versions("numpy", "scipy", "pandas", *engine)
        files.write_json(record, fit_dest)
    return table
