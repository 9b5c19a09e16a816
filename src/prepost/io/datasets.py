"""What each configured dataset needs from GEO, and where it lands locally.

One place maps a dataset's config to file names, so the download rule, the prepare rule and the
tests agree without repeating the GEO layout.
"""

from __future__ import annotations

from prepost.io import download


def remote_files(ds: dict) -> dict[str, tuple[str, str]]:
    """Role -> (path relative to the GEO base URL, local file name) for one dataset."""
    kind = ds["kind"]
    if kind in ("local", "published_de"):  # no GEO files (a published table has its own rule)
        return {}
    gse = ds["accession"]
    sm_name = ds.get("series_matrix_file") or f"{gse}_series_matrix.txt.gz"
    files = {"series_matrix": (download.series_matrix_relpath(gse, sm_name), sm_name)}
    if kind == "geo_series_matrix":
        plat = ds["platform"]
        rel = download.platform_relpath(plat["accession"], plat.get("file", "annot"))
        files["platform"] = (rel, rel.rsplit("/", 1)[-1])
    elif kind == "geo_counts":
        name = ds["counts"]["file"]
        files["counts"] = (download.suppl_relpath(gse, name), name)
    return files


def values_kind(ds: dict) -> str:
    """'counts' for count models, 'log2' or 'intensity' for arrays (log2 decided at prepare)."""
    if ds["kind"] == "geo_counts":
        return "counts"
    if ds["kind"] == "local":
        return ds["values"]
    return "intensity"


def has_expression(ds: dict) -> bool:
    """False for a published DE table: no matrix, so no prepare/DE/enrichment/QC rules."""
    return ds["kind"] != "published_de"


def is_counts(ds: dict) -> bool:
    return values_kind(ds) == "counts"
