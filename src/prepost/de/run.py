"""One contrast of one prepared dataset, from files to files: the de rule (its plots:
prepost.de.figures)."""

from __future__ import annotations

import pandas as pd

from prepost import files
from prepost.de.fit import fit_contrast
from prepost.prepare.dataset import read_prepared


def run_contrast(
    expression_path, samples_path, summary_path, contrast, dest, *, n_cpus=1, covariates=(),
    lfc_shrink="none",
) -> pd.DataFrame:
    """Fit one configured contrast (see prepost.de.contrasts) and write its DE table.
    n_cpus (the rule's threads) goes to the count solvers; covariates and lfc_shrink are the
    dataset's config keys."""
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
    )
    files.write_tsv(table, dest)
    return table
