import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The package lives in src/; make it importable here even without `pip install -e .`.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from prepost.datasets import remote_files  # noqa: E402

if not config:
    raise WorkflowError(
        "no configuration: pass --configfile config/config.yaml (the demo) or your own; "
        "profiles/default sets it when Snakemake loads the workflow profile"
    )
validate(config, "../schemas/config.schema.yaml")

RESULTS = config["results"]
RESOURCES = config["resources"]
LOGS = f"{RESULTS}/logs"
DATASETS = sorted(config["datasets"])
GEO_DATASETS = [
    d
    for d in DATASETS
    if config["datasets"][d]["kind"] not in ("local", "published_de")
]


def expression_datasets():
    """Datasets with an expression matrix (every kind but published_de): they get prepare, DE,
    enrichment and QC rules; a published DE table feeds only the claims engine."""
    return [d for d in DATASETS if config["datasets"][d]["kind"] != "published_de"]


def published_datasets():
    return [d for d in DATASETS if config["datasets"][d]["kind"] == "published_de"]


def claim_ids():
    """Claim ids of the catalogue, known at parse time (one forest plot each)."""
    import yaml

    with open(config["claims"]) as fh:
        return [c["id"] for c in yaml.safe_load(fh)["claims"]]


wildcard_constraints:
    ds="|".join(DATASETS),
    contrast="[a-z_]+",


def dataset(wildcards):
    return config["datasets"][wildcards.ds]


def contrasts_of(ds):
    return config["datasets"][ds].get("contrasts", ["post_vs_pre"])


def de_tables():
    return [
        f"{RESULTS}/{ds}/de/{contrast}.tsv"
        for ds in expression_datasets()
        for contrast in contrasts_of(ds)
    ]


def de_plots():
    return [
        f"{RESULTS}/{ds}/de/{contrast}.{kind}.png"
        for ds in expression_datasets()
        for contrast in contrasts_of(ds)
        for kind in ("volcano", "ma", "slopes")
    ]


def enrichment_targets():
    per_contrast = [
        f"{RESULTS}/{ds}/enrich/{contrast}/{name}"
        for ds in expression_datasets()
        for contrast in contrasts_of(ds)
        for name in ("gsea.tsv", "ora.tsv", "gsea.dotplot.png", "gsea.running.png")
    ]
    per_dataset = [
        f"{RESULTS}/{ds}/enrich/{name}"
        for ds in expression_datasets()
        for name in ("set_tests.tsv", "set_scores.slopes.png")
    ]
    return per_contrast + per_dataset


def all_targets():
    return [
        f"{RESULTS}/claims.tsv",
        f"{RESULTS}/claims_meta.tsv",
        *[f"{RESULTS}/claims/forest/{c}.png" for c in claim_ids()],
        *de_tables(),
        *de_plots(),
        *enrichment_targets(),
        *[f"{RESULTS}/{ds}/pairs.tsv" for ds in expression_datasets()],
        *qc_targets(),
        f"{RESULTS}/report.html",
    ]


def download_entries(wildcards):
    """(relative path under the GEO base URL, local file name) for each file of a dataset."""
    return [list(v) for v in remote_files(dataset(wildcards)).values()]


def base_url():
    """A local mirror folder is taken relative to the working directory."""
    return config["download"]["base_url"]


def prepare_input(wildcards):
    ds = dataset(wildcards)
    if ds["kind"] == "local":
        return {"expression": ds["expression"], "samples": ds["samples"]}
    return {"manifest": f"{RESOURCES}/geo/{wildcards.ds}/manifest.tsv"}


def prepare_files(wildcards):
    """Role -> local path of each input file of a dataset (series matrix, platform, counts)."""
    ds = dataset(wildcards)
    if ds["kind"] == "local":
        return {"expression": ds["expression"], "samples": ds["samples"]}
    return {
        role: f"{RESOURCES}/geo/{wildcards.ds}/{local}"
        for role, (_, local) in remote_files(ds).items()
    }


def claims_tables():
    """Per dataset, the tables the claims engine reads (per-sample files for the standardised
    effects; a published DE table's fetched copy and its config)."""
    tables = {
        ds: {
            "de": {c: f"{RESULTS}/{ds}/de/{c}.tsv" for c in contrasts_of(ds)},
            "gsea": {
                c: f"{RESULTS}/{ds}/enrich/{c}/gsea.tsv" for c in contrasts_of(ds)
            },
            "set_tests": f"{RESULTS}/{ds}/enrich/set_tests.tsv",
            "set_scores": f"{RESULTS}/{ds}/enrich/set_scores.tsv",
            "expression": f"{RESULTS}/{ds}/expression.parquet",
            "samples": f"{RESULTS}/{ds}/samples.tsv",
            "summary": f"{RESULTS}/{ds}/prepare.json",
        }
        for ds in expression_datasets()
    }
    for ds in published_datasets():
        tables[ds] = {
            "published": f"{RESOURCES}/published/{ds}/table",
            "config": config["datasets"][ds],
        }
    return tables


def claims_inputs():
    """Every file claims_tables() names, as the claims rule's input."""
    return sorted(
        {
            path
            for entry in claims_tables().values()
            for key, value in entry.items()
            if key != "config"
            for path in (value.values() if isinstance(value, dict) else [value])
        }
    )


def published_input(wildcards):
    """A published table's local source file (none for a URL)."""
    table = config["datasets"][wildcards.ds].get("table", {})
    return [table["path"]] if "path" in table else []


def alias_table():
    """The configured gene alias table as a rule input (none when not configured)."""
    path = config["enrichment"].get("alias_table")
    return [path] if path else []


def count_datasets():
    from prepost.datasets import values_kind

    return [
        ds
        for ds in expression_datasets()
        if values_kind(config["datasets"][ds]) == "counts"
    ]


def qc_targets():
    per_dataset = [
        f"{RESULTS}/{ds}/qc/{name}"
        for ds in expression_datasets()
        for name in (
            "samples_qc.tsv",
            "pair_identity.tsv",
            "pca.png",
            "correlation.png",
            "distribution.png",
        )
    ]
    return per_dataset + [
        f"{RESULTS}/{ds}/qc/library_size.png" for ds in count_datasets()
    ]


def report_layout():
    """Result paths the HTML report reads, per dataset (see prepost.report)."""
    datasets = {}
    for ds in expression_datasets():
        qc_dir = f"{RESULTS}/{ds}/qc"
        plots = {
            "PCA": f"{qc_dir}/pca.png",
            "Sample correlation": f"{qc_dir}/correlation.png",
            "Distribution": f"{qc_dir}/distribution.png",
        }
        if ds in count_datasets():
            plots["Library size"] = f"{qc_dir}/library_size.png"
        datasets[ds] = {
            "samples": f"{RESULTS}/{ds}/samples.tsv",
            "pairs": f"{RESULTS}/{ds}/pairs.tsv",
            "summary": f"{RESULTS}/{ds}/prepare.json",
            "manifest": (
                f"{RESOURCES}/geo/{ds}/manifest.tsv" if ds in GEO_DATASETS else None
            ),
            "qc": {
                "samples_qc": f"{qc_dir}/samples_qc.tsv",
                "pair_identity": f"{qc_dir}/pair_identity.tsv",
                "plots": plots,
            },
            "contrasts": {
                c: {
                    "table": f"{RESULTS}/{ds}/de/{c}.tsv",
                    "volcano": f"{RESULTS}/{ds}/de/{c}.volcano.png",
                    "ma": f"{RESULTS}/{ds}/de/{c}.ma.png",
                    "slopes": f"{RESULTS}/{ds}/de/{c}.slopes.png",
                    "gsea": f"{RESULTS}/{ds}/enrich/{c}/gsea.tsv",
                    "dotplot": f"{RESULTS}/{ds}/enrich/{c}/gsea.dotplot.png",
                }
                for c in contrasts_of(ds)
            },
            "set_slopes": f"{RESULTS}/{ds}/enrich/set_scores.slopes.png",
        }
    return {
        "datasets": datasets,
        "claims": f"{RESULTS}/claims.tsv",
        "claims_meta": f"{RESULTS}/claims_meta.tsv",
        "forest": {c: f"{RESULTS}/claims/forest/{c}.png" for c in claim_ids()},
    }


def report_inputs():
    """Every file of report_layout(), flattened (the rule's inputs)."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, str):
            found.append(x)

    walk(report_layout())
    return sorted(set(found))
