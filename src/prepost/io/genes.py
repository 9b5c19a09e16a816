"""Gene annotation files that come with expression data (GEO's NCBI-generated RNA-seq counts).

GEO serves one annotation per genome build next to its NCBI-generated counts, e.g.
``Human.GRCh38.p13.annot.tsv.gz``: tab-separated, one row per NCBI Gene (Entrez) id, columns
GeneID, Symbol, Description, ..., GeneType, EnsemblGeneID, ... The counts' first column is that
GeneID, so this table maps their rows to symbols.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from prepost.io.geo import GeoFormatError, _is_gzip, _lines

__all__ = ["GeneAnnotationError", "NCBI_ANNOT_COLUMNS", "read_ncbi_annot"]

# annotation column -> our column; all four must be present
NCBI_ANNOT_COLUMNS = {
    "GeneID": "entrez_id",
    "Symbol": "symbol",
    "EnsemblGeneID": "ensembl_gene_id",
    "GeneType": "gene_type",
}


class GeneAnnotationError(GeoFormatError):
    """Malformed gene annotation table."""


def read_ncbi_annot(path: str | os.PathLike) -> pd.DataFrame:
    """GEO's NCBI gene annotation -> columns entrez_id, symbol, ensembl_gene_id, gene_type (str).

    One row per GeneID, in file order. ``ensembl_gene_id`` is "" where NCBI has none; a GeneID
    without a symbol keeps symbol "" (the mapping step reports such genes). Stops, naming file
    and line, on a missing column, an empty or non-numeric GeneID, or a GeneID listed twice.
    """
    path = Path(path)
    E = GeneAnnotationError
    header = None
    for n, line in _lines(path, E):
        header = line
        break
    if header is None:
        raise E(f"{path}: empty file; expected a tab-separated header with {list(NCBI_ANNOT_COLUMNS)}")
    names = [c.strip().strip('"') for c in header.split("\t")]
    missing = [c for c in NCBI_ANNOT_COLUMNS if c not in names]
    if missing:
        raise E(
            f"{path}, line 1: column(s) {missing} missing (header: {names[:10]}); expected GEO's "
            f"NCBI gene annotation (e.g. Human.GRCh38.p13.annot.tsv.gz) with {list(NCBI_ANNOT_COLUMNS)}"
        )
    try:
        raw = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=3, usecols=list(NCBI_ANNOT_COLUMNS),
            compression="gzip" if _is_gzip(path) else None, encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, ValueError, EOFError, OSError) as exc:
        raise E(f"{path}: cannot parse the gene annotation ({exc})") from exc
    out = raw[list(NCBI_ANNOT_COLUMNS)].rename(columns=NCBI_ANNOT_COLUMNS)
    for c in out.columns:
        out[c] = out[c].str.strip().str.strip('"')
    ids = out["entrez_id"]
    bad = ~ids.str.fullmatch(r"\d+")
    if bad.any():
        j = int(np.flatnonzero(bad.to_numpy())[0])
        raise E(f"{path}, line {j + 2}: GeneID {ids.iloc[j]!r} is not an NCBI Gene id; expected digits")
    dup = ids.duplicated()
    if dup.any():
        j = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((ids == ids.iloc[j]).to_numpy())[0])
        raise E(f"{path}, line {j + 2}: GeneID {ids.iloc[j]} listed twice (first on line {first + 2})")
    return out.reset_index(drop=True)
