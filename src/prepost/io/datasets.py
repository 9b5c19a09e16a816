"""What each configured dataset needs from GEO, and where it lands locally.

One place maps a dataset's config to file names, so the download rule, the prepare rule and the
tests agree without repeating the GEO layout, and names the config keys each rule reads.
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


# The dataset config keys each rule reads. Snakemake reruns a job when its params change, so a
# rule is given only these: editing a dataset's description or citation reruns nothing.
RULE_KEYS = {
    "prepare": ("kind", "accession", "series_matrix_file", "platform", "counts", "expression",
                "samples", "values", "pairing", "contrasts", "sample_column", "sample_sheet",
                "gene_ids", "gene_map", "gene_merge"),
    "de_plots": ("genes_of_interest",),
    "published_table": ("kind", "table", "columns", "sep", "ci_level", "ci_df", "contrast",
                        "n_pairs", "n_groups", "significant_only"),
}


def dataset_params(ds: dict, rule: str) -> dict:
    """The part of one dataset's config that ``rule`` reads (RULE_KEYS)."""
    return {k: ds[k] for k in RULE_KEYS[rule] if k in ds}
