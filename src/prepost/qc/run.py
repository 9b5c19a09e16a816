"""QC of one prepared dataset, from files to files (the qc and qc_library_size rules)."""

from __future__ import annotations

import logging

from prepost import files
from prepost.plots.qc import (
    association_heatmap, correlation_heatmap, distribution_plot, library_size_plot, pca_plot,
    scree_plot,
)
from prepost.prepare.prepared import read_prepared
from prepost.qc.exclude import apply_exclusion
from prepost.qc.samples import qc_dataset
from prepost.vocabulary import COUNTS

log = logging.getLogger(__name__)


def run_qc(expression_path, samples_path, summary_path, pairs_path, title: str, *, out: dict,
           exclude: str = "none", listed=()) -> dict:
    """Read a prepared dataset; write the QC tables and plots and, after ``qc.exclude``
    (prepost.qc.exclude), the analysis sheet and pairs table every model reads. ``out`` maps
    samples_qc, pair_identity, pair_distances, pc_associations, exclusions, samples_used,
    pairs_used (TSV) and pca, correlation, distribution, scree, associations (PNG) to paths."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    values = summary.get("values")
    res = qc_dataset(data, values, sheet)
    files.write_tsv(res.pair_identity, out["pair_identity"])
    files.write_tsv(res.pair_rule, out["pair_distances"])
    files.write_tsv(res.associations, out["pc_associations"])
    files.write_tsv(res.samples, out["samples_qc"])
    pairs = files.read_tsv(pairs_path, dtype={"sample": str, "patient": str})
    used, used_pairs, table = apply_exclusion(sheet, pairs, res.samples, exclude, listed,
                                              summary.get("dataset", title))
    files.write_tsv(table, out["exclusions"])
    pca_plot(res, sheet, out["pca"], title)
    correlation_heatmap(res, sheet, out["correlation"], title)
    distribution_plot(res, sheet, out["distribution"], title)
    scree_plot(res, out["scree"], title)
    association_heatmap(res, out["associations"], title)
    files.write_tsv(used_pairs, out["pairs_used"])
    files.write_tsv(used, out["samples_used"])
    info = {**res.info, "exclude": exclude, "excluded": table.loc[table["excluded"], "sample"].tolist()}
    log.info("qc %s: %s", title, info)
    return info


def run_library_size(expression_path, samples_path, summary_path, title: str, dest) -> dict:
    """Library-size bar plot of a prepared count dataset."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    if summary.get("values") != COUNTS:
        raise ValueError(
            f"{summary_path}: library sizes need counts; this dataset has {summary.get('values')!r}"
        )
    return library_size_plot(data, sheet, dest, title)
