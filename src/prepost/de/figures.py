"""The figures of one contrast, from files to files (the de_plots rule): volcano, MA and paired
slope plots. Kept apart from de.run so drawing does not load the model stack."""

from __future__ import annotations

import pandas as pd

from prepost import files
from prepost.claims.catalogue import load_claims
from prepost.de import contrasts
from prepost.plots.de import ma_plot, slope_plot, volcano
from prepost.prepare.dataset import read_prepared
from prepost.stats import control_genes_of, count_values, panel_size_factors, size_factors
from prepost.vocabulary import ALPHA, COUNTS, LOG2, PAIRED


def genes_of_interest(dataset: dict, claims_path) -> list[str]:
    """The dataset's configured genes of interest, else every gene named in the claims."""
    if dataset.get("genes_of_interest"):
        return list(dataset["genes_of_interest"])
    seen: dict[str, None] = {}
    for claim in load_claims(claims_path):
        for gene in claim.get("genes", []):
            seen.setdefault(gene, None)
    return list(seen)


def slope_samples(data: pd.DataFrame, values: str, sheet: pd.DataFrame, contrast: str,
                  dataset: str, covariates=(), control_genes=None) -> tuple[pd.DataFrame, pd.Series | None]:
    """The patients a contrast's slope plot draws and the size factors it normalises with.

    A paired contrast draws the pairs of its model (a within-group contrast: that group's) on
    the DE's size factors, i.e. median of ratios over the samples its model was fitted on, so
    each panel's mean change is on the scale of the table's log2fc. The unpaired pre-treatment
    contrast has no pairs: every complete pair of the sheet is drawn, normalised over the
    drawn samples. Returns (sheet rows to draw, size factors; None for log2 values)."""
    spec = contrasts.build_contrast(sheet, contrast, dataset, available=data.columns,
                                    covariates=list(covariates or []))
    if contrast not in PAIRED:
        return sheet, None
    if spec.pairs is not None:  # within-group contrasts: the group's pairs
        drawn = set(spec.pairs["pre"]) | set(spec.pairs["post"])
    else:  # interaction: every pair in the model
        drawn = set(map(str, spec.samples.index))
    rows = sheet[sheet["sample"].astype(str).isin(drawn)]
    if values != COUNTS:
        return rows, None
    samples = [str(s) for s in spec.samples.index]
    sf = panel_size_factors(data[samples], control_genes)  # a panel: its control genes
    if sf is None:
        sf = pd.Series(size_factors(count_values(data[samples])), index=samples, name="size_factor")
    return rows, sf


def plot_contrast(
    de_path, expression_path, samples_path, summary_path, contrast, genes, title, *, volcano_png,
    ma_png, slopes_png, covariates=(), alpha=ALPHA,
) -> dict:
    """Volcano, MA and paired slope plots of one contrast."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    counts = summary["values"] == COUNTS
    de = files.read_tsv(de_path)
    rows, sf = slope_samples(data, summary["values"], sheet, contrast, summary["dataset"], covariates,
                             control_genes_of(summary))
    return {
        "volcano": volcano(de, volcano_png, title, alpha=alpha, label_genes=genes),
        "ma": ma_plot(de, ma_png, title, alpha=alpha, log_x=counts, label_genes=genes),
        "slopes": slope_plot(data, rows, genes, slopes_png, title,
                             values=COUNTS if counts else LOG2, size_factors=sf),
    }
