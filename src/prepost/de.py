"""Dispatch a contrast to the right paired model: counts to pydeseq2, log2 values to the
moderated t."""

from __future__ import annotations

import json

import pandas as pd

from prepost import io, pairing


def run_contrast(expression_path, samples_path, summary_path, contrast, dest, *, n_cpus=1) -> pd.DataFrame:
    summary = json.loads(open(summary_path).read())
    data = pd.read_parquet(expression_path)
    sheet = io.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    sheet["in_pair"] = sheet["in_pair"].astype(str).str.lower() == "true"
    if contrast != "post_vs_pre":  # the schema admits only known contrasts
        raise ValueError(f"unknown contrast {contrast!r}")
    kept = pairing.paired_samples(sheet)[["patient", "timepoint"]]
    data = data[kept.index]
    if summary["values"] == "counts":
        from prepost.de_counts import paired_deseq2

        table = paired_deseq2(data, kept, ref="pre", alt="post", n_cpus=n_cpus)
    else:
        from prepost.de_arrays import paired_moderated_t

        table = paired_moderated_t(data, kept, ref="pre", alt="post")
    io.write_tsv(table, dest)
    return table
