"""What each configured dataset needs from GEO, and where it lands locally.

One place maps a dataset's config to file names, so the download rule, the prepare rule and the
tests agree without repeating the GEO layout, and names the config keys each rule reads.
"""

from __future__ import annotations

from prepost.io import download
from prepost.io.rcc import RccError, rcc_paths


def series_matrix_names(ds: dict) -> list[str]:
    """The series matrix file name(s): ``series_matrix_file`` (a name or a list, GEO's
    GSEnnn-GPLmmm_series_matrix.txt.gz of a series split per platform), else GEO's default."""
    names = ds.get("series_matrix_file") or f"{ds['accession']}_series_matrix.txt.gz"
    return [names] if isinstance(names, str) else list(names)


def series_matrix_roles(n: int) -> list[str]:
    """Roles of n series matrices in the prepare files dict: series_matrix, series_matrix_2, ..."""
    return ["series_matrix"] + [f"series_matrix_{i}" for i in range(2, n + 1)]


def counts_source(ds: dict) -> str:
    return ds.get("counts", {}).get("source", "supplementary")


def counts_sample_key(ds: dict) -> str:
    """Which sample field the count table's columns hold: configured, else GSM ids for GEO's
    NCBI-generated counts (their columns are GSM accessions) and titles for a supplementary file."""
    counts = ds.get("counts", {})
    if "sample_key" in counts:
        return counts["sample_key"]
    return "geo_accession" if counts_source(ds) == "ncbi" else "title"


def rcc_files(ds: dict) -> list[str]:
    """A nanostring dataset's input files: ``rcc.path`` as a folder (its *.RCC / *.RCC.gz,
    listed when the workflow is parsed), a tar (GEO's GSEnnn_RAW.tar) or a list of files."""
    try:
        return rcc_paths(ds["rcc"]["path"])
    except RccError as err:
        raise ValueError(f"rcc.path: {err}") from None


def rcc_roles(files: dict) -> list[str]:
    """The rcc_0, rcc_1, ... roles of a prepare files dict, in order."""
    return sorted((k for k in files if k.startswith("rcc_") and k[4:].isdigit()), key=lambda k: int(k[4:]))


def remote_files(ds: dict) -> dict[str, tuple[str, str]]:
    """Role -> (path relative to the GEO base URL, local file name) for one dataset.

    Paths under ``rnaseq_counts/`` are NCBI-generated counts, fetched from
    ``download.ncbi_download_url`` (see :func:`prepost.io.download.source_base`).
    """
    kind = ds["kind"]
    if kind in ("local", "published_de"):  # no GEO files (a published table has its own rule)
        return {}
    if kind == "nanostring" and "accession" not in ds:  # RCC files only, no GEO sample sheet
        return {}
    gse = ds["accession"]
    if kind == "geo_series_matrix" and ds.get("family_soft"):
        name = f"{gse}_family.soft.gz"
        files = {"family_soft": (download.family_soft_relpath(gse), name)}
    else:
        names = series_matrix_names(ds)
        files = {
            role: (download.series_matrix_relpath(gse, name), name)
            for role, name in zip(series_matrix_roles(len(names)), names)
        }
    if kind == "geo_series_matrix":
        plat = ds["platform"]
        if plat.get("file", "annot") != "family":  # "family": the family SOFT's ^PLATFORM section
            rel = download.platform_relpath(plat["accession"], plat.get("file", "annot"))
            files["platform"] = (rel, rel.rsplit("/", 1)[-1])
    elif kind == "geo_counts":
        counts = ds["counts"]
        if counts_source(ds) == "ncbi":
            rel = download.ncbi_counts_relpath(gse, counts.get("file"))
            files["counts"] = (rel, rel.rsplit("/", 1)[-1])
            annot = counts.get("annotation_file", download.NCBI_ANNOT_FILE)
            files["gene_annotation"] = (download.ncbi_annot_relpath(annot), annot)
        else:
            name = counts["file"]
            files["counts"] = (download.suppl_relpath(gse, name), name)
    return files


def values_kind(ds: dict) -> str:
    """'counts' for count models, 'log2' or 'intensity' for arrays (log2 decided at prepare)."""
    if ds["kind"] in ("geo_counts", "nanostring"):
        return "counts"
    if ds["kind"] == "local":
        return ds["values"]
    return ds.get("values", "intensity")  # geo_series_matrix: log2 decided at prepare unless set


# The dataset config keys each rule reads. Snakemake reruns a job when its params change, so a
# rule is given only these: editing a dataset's description or citation reruns nothing.
RULE_KEYS = {
    "prepare": ("kind", "accession", "series_matrix_file", "platform", "counts", "expression",
                "samples", "values", "pairing", "contrasts", "family_soft", "sample_column",
                "sample_sheet", "gene_ids", "gene_map", "gene_merge", "rcc"),
    "published_table": ("kind", "table", "columns", "sep", "ci_level", "ci_df", "contrast",
                        "n_pairs", "n_groups", "significant_only", "universe"),
    "published_universe": ("universe",),
}


def dataset_params(ds: dict, rule: str) -> dict:
    """The part of one dataset's config that ``rule`` reads (RULE_KEYS)."""
    return {k: ds[k] for k in RULE_KEYS[rule] if k in ds}
