"""Gene identifier maps: NCBI's gene_info, GEO's NCBI-counts annotation, org.Hs.eg.db dumps or
a two-column table, read into one tidy relation (entrez, ensembl, symbol).

The maps users have differ only in column names and in how Ensembl ids are stored (a column,
or NCBI's ``dbXrefs`` cell ``MIM:...|HGNC:HGNC:5|Ensembl:ENSG00000121410``), so one reader
recognises the columns by name and several maps are joined on the columns they share
(e.g. an Ensembl -> Entrez map with an Entrez -> symbol map).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from prepost.io import download
from prepost.io.geo import GeoFormatError, _is_gzip, _lines, _unquote

__all__ = ["GeneMapError", "read_gene_map", "read_gene_maps", "fetch_gene_map", "ID_COLUMNS"]

# Column names (lower case) recognised per identifier type, in priority order.
ID_COLUMNS = {
    "entrez": ["geneid", "entrez_id", "entrezid", "entrez", "entrez_gene_id", "ncbi_gene_id"],
    "ensembl": ["ensemblgeneid", "ensembl_gene_id", "ensembl", "ensembl_id", "ensembl gene id"],
    "symbol": ["symbol", "gene_symbol", "approved symbol", "hgnc_symbol", "gene_name", "gene symbol"],
}
MISSING = {"", "-", "NA", "na", "null", "NULL"}


class GeneMapError(GeoFormatError):
    """A gene identifier map that cannot be read or holds no usable columns."""


def _header(path: Path) -> tuple[list[str], int, str]:
    """Column names, the number of lines before the data, and the separator. NCBI's gene_info
    writes its header as a '#' comment line (``#tax_id\\tGeneID\\tSymbol...``)."""
    for n, line in _lines(path, GeneMapError):
        if line.strip() == "":
            continue
        sep = "\t" if "\t" in line else ","
        if line.startswith("#") and sep not in line:
            continue  # a free-text comment
        cells = [_unquote(c) for c in line.lstrip("#").split(sep)]
        return cells, n, sep
    raise GeneMapError(f"{path}: empty file; expected a header line then one row per gene")


def read_gene_map(path: str | os.PathLike) -> pd.DataFrame:
    """One map as a relation with the recognised columns among entrez, ensembl, symbol (str,
    one row per id pair; an Ensembl list in NCBI's dbXrefs becomes one row per Ensembl id).

    A table whose header names none of ID_COLUMNS and has exactly two columns is read as
    ``id, symbol`` (the id type is then detected from its values by the caller: column "id").
    """
    path = Path(path)
    names, header_line, sep = _header(path)
    lower = [c.strip().lower() for c in names]
    cols: dict[str, int] = {}
    for kind, options in ID_COLUMNS.items():
        hit = next((lower.index(o) for o in options if o in lower), None)
        if hit is not None:
            cols[kind] = hit
    xref = lower.index("dbxrefs") if "dbxrefs" in lower else None
    if len(cols) + (xref is not None and "ensembl" not in cols) < 2:
        if len(names) == 2 and "symbol" not in cols:
            cols = {"id": 0, "symbol": 1}
        elif len(names) == 2:
            cols = {"id": 1 - cols["symbol"], "symbol": cols["symbol"]}
        else:
            raise GeneMapError(
                f"{path}, line {header_line}: no gene id and symbol columns among {names}; expected "
                "NCBI gene_info (GeneID, Symbol, dbXrefs), GEO's annotation (GeneID, Symbol, "
                "EnsemblGeneID), columns like entrez_id/ensembl_gene_id/symbol, or two columns id, symbol"
            )
    use = sorted(set(cols.values()) | ({xref} if xref is not None else set()))
    try:
        raw = pd.read_csv(path, sep=sep, header=None, skiprows=header_line, usecols=use, dtype=str,
                          keep_default_na=False, quoting=3 if sep == "\t" else 0,
                          compression="gzip" if _is_gzip(path) else None,
                          encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError, OSError, EOFError) as exc:
        raise GeneMapError(f"{path}: cannot read the gene map ({exc})") from exc
    out = pd.DataFrame({k: raw[i].map(_unquote).str.strip() for k, i in cols.items()})
    if xref is not None and "ensembl" not in out.columns:
        ens = raw[xref].str.findall(r"Ensembl:(ENS[A-Z]*G\d+)")
        out = out.assign(ensembl=ens).explode("ensembl")
        out["ensembl"] = out["ensembl"].fillna("")
    for c in out.columns:
        out[c] = out[c].where(~out[c].isin(MISSING), "")
    if "ensembl" in out.columns:  # "ENSG1, ENSG2" or "ENSG1///ENSG2" in some annotations
        out["ensembl"] = out["ensembl"].str.split(r"\s*(?:,|;|///|\|)\s*", regex=True)
        out = out.explode("ensembl")
        out["ensembl"] = out["ensembl"].fillna("").str.replace(r"\.\d+$", "", regex=True)
    out = out.drop_duplicates().reset_index(drop=True)
    if out.empty:
        raise GeneMapError(f"{path}: no rows after the header (line {header_line})")
    return out


def read_gene_maps(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """Several maps joined on the columns they share (outer, so every id of each map stays)."""
    rel = None
    for p in paths:
        one = read_gene_map(p)
        if rel is None:
            rel = one
            continue
        shared = [c for c in one.columns if c in rel.columns and c != "symbol"] or \
                 [c for c in one.columns if c in rel.columns]
        if not shared:
            raise GeneMapError(
                f"{p}: shares no identifier column with the maps before it ({list(rel.columns)} vs "
                f"{list(one.columns)}); maps are joined on a common column, e.g. entrez"
            )
        rel = rel.merge(one, on=shared, how="outer", suffixes=("", "_2"))
        if "symbol_2" in rel.columns:
            rel["symbol"] = rel["symbol"].where(rel["symbol"].fillna("") != "", rel["symbol_2"])
            rel = rel.drop(columns="symbol_2")
    if rel is None:
        raise GeneMapError("no gene map given")
    return rel.fillna("").drop_duplicates().reset_index(drop=True)


def fetch_gene_map(source: dict, dest: str | os.PathLike, what: str, **fetch_kw) -> dict:
    """Copy (``path``) or download (``url``) one configured gene map to ``dest`` through the
    download client, check its sha256 when configured, and parse it once so a wrong file fails
    here, naming the config key ``what``."""
    src = source.get("url") or source["path"]
    want = source.get("sha256")
    expect = "gzip" if str(src).lower().endswith(".gz") else "text"
    row = download.fetch(src, dest, expect=expect, known_sha256=want, **fetch_kw)
    if want and row["sha256"] != want:
        Path(dest).unlink(missing_ok=True)
        raise download.DownloadError(f"{what} from {src}: sha256 {row['sha256']} does not match the configured {want}")
    row["rows"] = int(len(read_gene_map(dest)))
    return row
