"""Paired negative-binomial test for RNA-seq counts with pydeseq2 (DESeq2 in Python).

Design ``~ patient + timepoint`` with DESeq2's defaults: ratio size factors, parametric
dispersion trend, Wald test, Cook's distance outlier handling (refit_cooks) and independent
filtering at alpha = 0.1 (R's results() default; pydeseq2's own default is 0.05). Both factors
are passed as pandas Categoricals: pydeseq2/formulaic would otherwise sort the timepoint levels
("post" < "pre", making alt the reference) and could read numeric-looking patient ids as
numbers. tests/test_de_counts.py compares the output with DESeq2 1.38.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prepost.de_arrays import RESULT_COLUMNS, _check_samples

ALPHA = 0.1  # DESeq2 results(alpha=0.1): drives the independent-filtering threshold


def _check_counts(counts: pd.DataFrame) -> np.ndarray:
    """Counts must be finite non-negative integers with unique gene ids."""
    if counts.index.has_duplicates:
        dup = counts.index[counts.index.duplicated()][0]
        raise ValueError(f"count matrix has duplicated gene id {dup!r}")
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
    return values.astype(np.int64)


def paired_deseq2(
    counts: pd.DataFrame,
    samples: pd.DataFrame,
    ref: str = "pre",
    alt: str = "post",
    n_cpus: int = 1,
) -> pd.DataFrame:
    """DESeq2 paired test of alt vs ref on raw counts (genes x samples).

    samples: indexed by sample id with 'patient' and 'timepoint' (ref/alt); only these samples
    are used and every patient must have both. Returns the contract columns with mean_expr =
    baseMean. As in DESeq2, genes with all-zero counts are kept with NaN statistics, and genes
    removed by independent filtering or flagged as Cook's outliers keep their pvalue/log2fc but
    get padj (or pvalue) NaN.
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    sheet = _check_samples(counts, samples, ref, alt)
    data = counts.copy()
    data.columns = data.columns.astype(str)
    data = data[list(sheet.index)]
    values = _check_counts(data)
    genes = data.index.astype(str)

    patients = sorted(sheet["patient"].unique())
    metadata = pd.DataFrame(
        {
            "patient": pd.Categorical(sheet["patient"], categories=patients),
            "timepoint": pd.Categorical(sheet["timepoint"], categories=[ref, alt]),
        },
        index=sheet.index,
    )
    mat = pd.DataFrame(values.T, index=sheet.index, columns=genes)

    dds = DeseqDataSet(
        counts=mat,
        metadata=metadata,
        design="~patient + timepoint",
        refit_cooks=True,
        n_cpus=n_cpus,
        quiet=True,
    )
    dds.deseq2()
    stats = DeseqStats(
        dds,
        contrast=["timepoint", alt, ref],
        alpha=ALPHA,
        cooks_filter=True,
        independent_filter=True,
        quiet=True,
        n_cpus=n_cpus,
    )
    stats.summary()
    res = stats.results_df.reindex(genes)
    out = pd.DataFrame(
        {
            "gene": genes,
            "mean_expr": res["baseMean"].to_numpy(float),
            "log2fc": res["log2FoldChange"].to_numpy(float),
            "lfc_se": res["lfcSE"].to_numpy(float),
            "stat": res["stat"].to_numpy(float),
            "pvalue": res["pvalue"].to_numpy(float),
            "padj": res["padj"].to_numpy(float),
        }
    )[RESULT_COLUMNS]
    return out.sort_values(["pvalue", "gene"], kind="stable", na_position="last").reset_index(
        drop=True
    )
