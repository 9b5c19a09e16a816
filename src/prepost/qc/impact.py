"""What QC exclusion changes: post_vs_pre with and without the samples QC flags.

Run when QC flagged samples (or some were excluded): the contrast is refitted on the other
sample sheet (the flagged samples and their partners out, when ``qc.exclude`` is none; every
sample in, when they were excluded) and the numbers of genes below each padj cut are set side by
side with the main fit's, so the report can say what excluding them changes.
"""

from __future__ import annotations

import json

import pandas as pd

from prepost import files
from prepost.de.fit import fit_contrast
from prepost.de.run import PADJ_CUTS
from prepost.prepare.prepared import read_prepared
from prepost.qc.exclude import apply_exclusion
from prepost.vocabulary import POST_VS_PRE

COLUMNS = ["analysis", "excluded_samples", "pairs", "genes_tested",
           *[f"genes_padj_below_{c:g}" for c in PADJ_CUTS], "note"]


def _row(name, excluded, record_or_table, note=""):
    if isinstance(record_or_table, dict):
        r = record_or_table
        pairs = r.get("n_pairs", r.get("pairs"))
        counts = [r.get(f"genes_padj_below_{c:g}") for c in PADJ_CUTS]
        tested = r.get("genes_tested")
    else:
        t = record_or_table
        pairs = t.attrs.get("contrast", {}).get("n_pairs", t.attrs.get("contrast", {}).get("pairs"))
        counts = [int((t["padj"] < c).sum()) for c in PADJ_CUTS]
        tested = int(t["pvalue"].notna().sum())
    return [name, excluded, pairs if not isinstance(pairs, list) else len(pairs), tested, *counts, note]


def run_impact(expression_path, samples_path, used_path, pairs_path, summary_path, samples_qc_path,
               fit_path, dest, *, exclude: str = "none", listed=(), n_cpus: int = 1) -> pd.DataFrame:
    """Write the comparison table (COLUMNS); one row saying so when QC flagged nothing."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    used = files.read_tsv(used_path, dtype={"sample": str, "patient": str})
    sq = files.read_tsv(samples_qc_path, dtype={"sample": str, "patient": str})
    record = json.loads(open(fit_path).read())
    excluded = used.loc[used["qc_excluded"].astype(str).str.lower() == "true", "sample"].tolist()
    would = sq.loc[(sq["outlier"].astype(str).str.lower() == "true")
                   | (sq["pair_identity"] == "mismatch")
                   | (sq["sex_mismatch"].astype(str).str.lower() == "true"), "sample"].tolist()
    main_name = "as run" + (f" (qc.exclude: {exclude})")
    rows = [_row(main_name, ", ".join(excluded), record)]
    if exclude == "none" and not would:
        rows[0][-1] = "QC flagged no sample: nothing to compare"
    else:
        pairs = files.read_tsv(pairs_path, dtype={"sample": str, "patient": str})
        if exclude == "none":
            alt, _, _ = apply_exclusion(sheet, pairs, sq, "outliers", (), summary["dataset"])
            name, gone = "QC-flagged samples excluded", ", ".join(would)
        else:
            alt, name, gone = sheet, "no sample excluded", ""
        try:
            table = fit_contrast(data, summary["values"], alt, POST_VS_PRE, summary["dataset"],
                                 n_cpus=n_cpus)
            rows.append(_row(name, gone, table))
        except ValueError as err:  # e.g. too few pairs left
            rows.append([name, gone, None, None, *[None] * len(PADJ_CUTS), f"not estimable: {err}"])
    out = pd.DataFrame(rows, columns=COLUMNS)
    files.write_tsv(out, dest)
    return out
