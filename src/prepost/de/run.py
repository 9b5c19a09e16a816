"""Dispatch a contrast to the right paired model: counts to pydeseq2, log2 values to the
moderated t."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from prepost import io


def run_contrast(
    expression_path, samples_path, summary_path, contrast, dest, *, n_cpus=1, covariates=(),
    lfc_shrink="none",
) -> pd.DataFrame:
    """Fit one configured contrast (see prepost.contrasts) and write its DE table.
    n_cpus (the rule's threads) goes to the count solvers; covariates and lfc_shrink are the
    dataset's config keys."""
    from prepost.de import contrasts

    summary = json.loads(Path(summary_path).read_text())
    data = pd.read_parquet(expression_path)
    sheet = io.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    table = contrasts.run_contrast(
        data,
        summary["values"],
        sheet,
        contrast,
        summary["dataset"],
        n_cpus=n_cpus,
        covariates=list(covariates or []),
        lfc_shrink=lfc_shrink,
    )
    io.write_tsv(table, dest)
    return table


def genes_of_interest(dataset: dict, claims_path) -> list[str]:
    """The dataset's configured genes of interest, else every gene named in the claims."""
    if dataset.get("genes_of_interest"):
        return list(dataset["genes_of_interest"])
    from prepost.claims import load_claims

    seen: dict[str, None] = {}
    for claim in load_claims(claims_path):
        for gene in claim.get("genes", []):
            seen.setdefault(gene, None)
    return list(seen)


def plot_contrast(
    de_path, expression_path, samples_path, summary_path, genes, title, *, volcano, ma, slopes, alpha=0.05
) -> dict:
    """Volcano, MA and paired slope plots of one contrast."""
    from prepost import plots

    summary = json.loads(Path(summary_path).read_text())
    counts = summary["values"] == "counts"
    de = io.read_tsv(de_path)
    data = pd.read_parquet(expression_path)
    sheet = io.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    out = {
        "volcano": plots.volcano(de, volcano, title, alpha=alpha, label_genes=genes),
        "ma": plots.ma_plot(de, ma, title, alpha=alpha, log_x=counts, label_genes=genes),
        "slopes": plots.slope_plot(
            data, sheet, genes, slopes, title, values="counts" if counts else "log2"
        ),
    }
    return out
