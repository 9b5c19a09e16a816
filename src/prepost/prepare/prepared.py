"""Reading a prepared dataset (what prepost.prepare.dataset.write_prepared wrote). Its own
small module because every downstream job (de, enrich, qc, claims) starts here and should not
import the download and parsing stack of prepare.dataset to do so (~0.3-0.7 s per job)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from prepost import files


def read_prepared(
    expression_path, samples_path, summary_path
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What write_prepared wrote: (expression genes x samples, sample sheet, summary dict with
    ``values`` and ``dataset``), ids read as strings. Every downstream stage starts here."""
    summary = json.loads(Path(summary_path).read_text())
    data = pd.read_parquet(expression_path)
    sheet = files.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    return data, sheet, summary
