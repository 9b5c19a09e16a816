"""QC of one prepared dataset, from files to files (the qc and qc_library_size rules)."""

from __future__ import annotations

import logging

from prepost import files
from prepost.plots.qc import correlation_heatmap, distribution_plot, library_size_plot, pca_plot
from prepost.prepare.dataset import read_prepared
from prepost.qc.samples import qc_dataset
from prepost.vocabulary import COUNTS

log = logging.getLogger(__name__)


def run_qc(expression_path, samples_path, summary_path, title: str, *, samples_qc, pair_identity_out,
           pca_png, correlation_png, distribution_png, library_size_png=None) -> dict:
    """Read a prepared dataset, write the QC tables and plots; returns QcResult.info."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    values = summary.get("values")
    res = qc_dataset(data, values, sheet)
    ident = res.pair_identity.copy()
    files.write_tsv(ident, pair_identity_out)
    files.write_tsv(res.samples, samples_qc)
    pca_plot(res, sheet, pca_png, title)
    correlation_heatmap(res, sheet, correlation_png, title)
    distribution_plot(res, sheet, distribution_png, title)
    if library_size_png:
        if values != COUNTS:
            raise ValueError(f"{summary_path}: library sizes need counts; this dataset has {values!r}")
        library_size_plot(data, sheet, library_size_png, title)
    log.info("qc %s: %s", title, res.info)
    return res.info


def run_library_size(expression_path, samples_path, summary_path, title: str, dest) -> dict:
    """Library-size bar plot of a prepared count dataset."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    if summary.get("values") != COUNTS:
        raise ValueError(
            f"{summary_path}: library sizes need counts; this dataset has {summary.get('values')!r}"
        )
    return library_size_plot(data, sheet, dest, title)
