import os
import re

from snakemake import __version__ as SNAKEMAKE_VERSION
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

# The package is installed (`make setup`: pip install -e .; the conda envs: their post-deploy
# script; a project using the workflow as a module: pip install <this repository>).
import prepost
from prepost.claims.catalogue import ClaimsError, genes_of_interest, load_claims
from prepost.enrich.genesets import GeneSetError, read_gmt
from prepost.io.datasets import dataset_params, rcc_files, remote_files, values_kind
from prepost.io.yamlio import ConfigError, check_scalars, load_strict
from prepost.paths import (
    DE_PLOTS,
    GSEA_PLOTS,
    QC_PLOTS,
    QC_TABLES,
    WORKFLOW_MARKER,
    Layout,
    resolve_workflow_paths,
)
from prepost.paths import qc_names as qc_names_of, report_layout as layout_of_report
from prepost.vocabulary import DEFAULT_CONTRASTS

min_version("9.0")

# The workflow's own folder (config/, resources/demo/, workflow/, src/), from this file's place
# (workflow/rules/): workflow.basedir is the main Snakefile's folder, which is the user's
# project when prepost runs as a module. A remote module (github(...)) gives a URL.
_here = workflow.current_basedir
WORKFLOW_DIR = (
    os.path.normpath(os.path.join(_here.get_path_or_uri(secret_free=False), "..", ".."))
    if os.path.isdir(_here.get_path_or_uri(secret_free=False))
    else _here.join("../..").get_path_or_uri(secret_free=False)
)


# Read by envs/*.post-deploy.sh, which installs this workflow's package into the rules' conda
# envs (Snakemake runs a copy of that script from .snakemake/conda/, away from the checkout).
os.environ.update(PREPOST_WORKFLOW_DIR=WORKFLOW_DIR)


def check_package_version():
    """The installed prepost package must be this workflow's (a module deployed from one tag
    and a package installed from another would mix code silently)."""
    import tomllib

    project = os.path.join(WORKFLOW_DIR, "pyproject.toml")
    if not os.path.isfile(project):
        return
    with open(project, "rb") as fh:
        wanted = tomllib.load(fh)["project"]["version"]
    if prepost.__version__ != wanted:
        raise WorkflowError(
            f"the installed prepost package is {prepost.__version__} ({prepost.__file__}) but "
            f"this workflow ({WORKFLOW_DIR}) is {wanted}: pip install {WORKFLOW_DIR}"
        )


check_package_version()

if not config:
    raise WorkflowError(
        "no configuration: pass --configfile config/config.yaml (the demo) or your own; "
        "profiles/default sets it when Snakemake loads the workflow profile"
    )


def check_config_files():
    """What Snakemake's YAML loading hides: a key given twice in a config file (the second
    silently replaces the first) and On/Off/Yes/No read as booleans where text is meant.
    """
    try:
        for path in workflow.configfiles:
            load_strict(path)
        check_scalars(config.get("datasets", {}), "datasets")
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


check_config_files()
validate(config, "../schemas/config.schema.yaml")
# `<workflow>/...` paths (the shipped demo mirror, claims, gene sets) -> this workflow's folder;
# every other relative path stays relative to the working directory. After validation, so that
# the schema's defaults are resolved too.
config.update(resolve_workflow_paths(dict(config), WORKFLOW_DIR))


def where_paths_are(path):
    """A hint for a relative path that was not found."""
    if os.path.isabs(str(path)):
        return ""
    return (
        f" (relative to the working directory {os.getcwd()}; start a path with "
        f"{WORKFLOW_MARKER}/ for the workflow's own copy in {WORKFLOW_DIR})"
    )


def check_datasets():
    """Per dataset what the schema cannot see: timepoints against pairing.timepoint.order,
    contrast names (prepost.prepare.pairing.check_dataset_config)."""
    from prepost.prepare.pairing import PairingError, check_dataset_config

    for name, ds in config["datasets"].items():
        try:
            check_dataset_config(name, ds)
        except PairingError as err:
            raise WorkflowError(str(err)) from None


check_datasets()

P = Layout(config["results"], config["resources"])
DATASETS = sorted(config["datasets"])
KIND = {ds: config["datasets"][ds]["kind"] for ds in DATASETS}
GEO_DATASETS = [
    d
    for d in DATASETS
    if KIND[d] not in ("local", "published_de")
    and not (KIND[d] == "nanostring" and "accession" not in config["datasets"][d])
]
# NanoString RCC datasets: lane QC (workflow/rules/lanes.smk)
NANOSTRING = [d for d in DATASETS if KIND[d] == "nanostring"]
# expression datasets get prepare, DE, enrichment and QC; a published DE table only claims
EXPRESSION = [d for d in DATASETS if KIND[d] != "published_de"]
PUBLISHED = [d for d in DATASETS if KIND[d] == "published_de"]
COUNT_DATASETS = [
    d for d in EXPRESSION if values_kind(config["datasets"][d]) == "counts"
]
# GEO files per dataset: local name -> path relative to the GEO base URL
GEO_FILES = {
    ds: {local: rel for rel, local in remote_files(config["datasets"][ds]).values()}
    for ds in GEO_DATASETS
}


def load_catalogue():
    """The claims catalogue, validated at parse time, so a typo stops the run before any job,
    not after DE and enrichment."""
    try:
        claims = load_claims(
            config["claims"],
            os.path.join(WORKFLOW_DIR, "workflow/schemas/claims.schema.yaml"),
        )
    except FileNotFoundError as err:
        raise WorkflowError(f"{err}{where_paths_are(config['claims'])}") from None
    except ClaimsError as err:
        raise WorkflowError(str(err)) from None
    return claims


def check_collections():
    """Every local GMT collection and the alias table exist and parse, checked at start."""
    for c in config["enrichment"]["collections"]:
        if "path" not in c:
            continue  # fetched by the genesets rule, checked there
        try:
            read_gmt(c["path"])
        except (GeneSetError, OSError) as err:
            raise WorkflowError(
                f"enrichment.collections {c['name']!r}: {c['path']} cannot be used as a GMT "
                f"collection ({err})"
                + (where_paths_are(c["path"]) if not os.path.exists(c["path"]) else "")
            ) from None
    alias = config["enrichment"].get("alias_table")
    if alias and not os.path.isfile(alias):
        raise WorkflowError(
            f"enrichment.alias_table: {alias}: no such file{where_paths_are(alias)}"
        )


check_collections()


CATALOGUE = load_catalogue()
CLAIM_IDS = [c["id"] for c in CATALOGUE]  # one forest plot each


def slope_genes(ds):
    """The genes whose paired slopes the DE job draws (the dataset's genes_of_interest, else
    every gene named in the claims); a param, so the DE reruns only when this list changes.
    """
    return genes_of_interest(config["datasets"][ds], CATALOGUE)


wildcard_constraints:
    ds="|".join(DATASETS),
    contrast="[a-z][a-z0-9_]*",
    i="[0-9]+",
    file="|".join(
        sorted({re.escape(f) for files in GEO_FILES.values() for f in files}) or ["^$"]
    ),


def contrasts_of(ds):
    """The dataset's contrast names (named presets and contrasts declared as data)."""
    entries = config["datasets"][ds].get("contrasts", list(DEFAULT_CONTRASTS))
    return [e["name"] if isinstance(e, dict) else e for e in entries]


def declared_contrasts(ds):
    """The dataset's contrasts declared as data, by name (prepost.de.contrasts)."""
    entries = config["datasets"][ds].get("contrasts", [])
    return {e["name"]: e for e in entries if isinstance(e, dict)}


DE_REPORTED = ("volcano", "pvalues", "model", "factors")  # the de figures in the report


def contrast_groups():
    """[(contrasts, datasets)]: the expression datasets by their list of contrasts, in the
    order first met (sorted datasets). The de and enrich jobs cover a whole dataset, and a
    rule's outputs cannot depend on the dataset: one de and one enrich rule per group (de,
    de_2, ...; enrich, enrich_2, ...)."""
    groups = {}
    for ds in EXPRESSION:
        groups.setdefault(tuple(contrasts_of(ds)), []).append(ds)
    return list(groups.items())


CONTRAST_GROUPS = contrast_groups()

# Threads of a de or enrich job (a whole dataset): 2, its contrasts side by side in two forked
# workers (prepost.parallel), when the run has fewer expression datasets than cores (one
# 200-sample cohort on 2 cores); else 1, the datasets' own jobs fill the cores, each job's
# pieces in order (two 2-thread jobs on 2 cores would run one after the other, the pieces of
# each unevenly long). profiles/slurm sets 2 for cluster jobs.
DATASET_JOB_THREADS = 2 if len(EXPRESSION) < (workflow.cores or 1) else 1


def de_outputs(contrasts):
    """A de job's outputs: per contrast <c>_<what> (table, fit, model, factors) and
    <c>_plot_<kind> (DE_PLOTS; the DE_REPORTED ones with their report entries)."""
    out = {}
    for c in contrasts:
        out[f"{c}_table"] = P.de_table("{ds}", c)
        out[f"{c}_fit"] = P.de_fit("{ds}", c)
        out[f"{c}_model"] = P.de_model("{ds}", c)
        out[f"{c}_factors"] = P.de_factors("{ds}", c)
        for kind in DE_PLOTS:
            path = P.de_plot("{ds}", c, kind)
            if kind in DE_REPORTED:
                path = report(
                    path,
                    caption=f"../report/{kind}.rst",
                    category="Differential expression",
                    subcategory="{ds}",
                )
            out[f"{c}_plot_{kind}"] = path
    return out


def enrich_outputs(contrasts):
    """An enrich job's outputs: per contrast <c>_gsea, <c>_ora, <c>_report (genesets_found),
    <c>_record, <c>_dotplot, <c>_running; the dataset's scores, tests and slopes."""
    out = {}
    for c in contrasts:
        out[f"{c}_gsea"] = P.enrich("{ds}", c, "gsea")
        out[f"{c}_ora"] = P.enrich("{ds}", c, "ora")
        out[f"{c}_report"] = P.enrich("{ds}", c, "genesets_found")
        out[f"{c}_record"] = P.enrich_record("{ds}", c)
        for kind in GSEA_PLOTS:
            out[f"{c}_{kind}"] = P.gsea_plot("{ds}", c, kind)
    out["scores"] = P.set_scores("{ds}")
    out["tests"] = P.set_tests("{ds}")
    out["slopes"] = P.set_slopes("{ds}")
    return out


def params_of(wildcards, rule):
    """The dataset config keys one rule reads (so editing another key reruns nothing)."""
    return dataset_params(config["datasets"][wildcards.ds], rule)


def geo_files(ds):
    return [P.geo_file(ds, name) for name in GEO_FILES[ds]]


def geo_base_url(relpath):
    """Where a GEO file comes from: GEO's download endpoint for the NCBI-generated counts
    (download.ncbi_download_url), download.base_url for everything else."""
    from prepost.io.download import source_base

    return source_base(
        relpath,
        config["download"]["base_url"],
        config["download"].get("ncbi_download_url"),
    )


def prepare_files(wildcards):
    """Role -> local path of each input file of a dataset: series_matrix (more files:
    series_matrix_2, ...), family_soft, platform, counts, gene_annotation."""
    ds = config["datasets"][wildcards.ds]
    if ds["kind"] == "local":
        return {"expression": ds["expression"], "samples": ds["samples"]}
    # nanostring: the RCC files, and the series matrix with an accession
    if ds["kind"] == "nanostring":
        return {
            **{f"rcc_{i}": p for i, p in enumerate(rcc_files(ds))},
            **{
                role: P.geo_file(wildcards.ds, local)
                for role, (_, local) in remote_files(ds).items()
            },
        }
    return {
        role: P.geo_file(wildcards.ds, local)
        for role, (_, local) in remote_files(ds).items()
    }


def gene_maps_of(ds):
    """A dataset's configured gene maps (a list; one map may be given alone)."""
    maps = config["datasets"][ds].get("gene_map", [])
    return [maps] if isinstance(maps, dict) else maps


def prepare_input(wildcards):
    """The dataset's own files, its sample sheet, its gene maps (fetched into the cache) and
    the gene-set collections (an id type matching no set stops prepare, not enrichment).
    """
    files = prepare_files(wildcards)
    ds = config["datasets"][wildcards.ds]
    if wildcards.ds in GEO_DATASETS:
        files["manifest"] = P.manifest(wildcards.ds)
    if "sample_sheet" in ds:
        files["sample_sheet"] = ds["sample_sheet"]["path"]
    for i, _ in enumerate(gene_maps_of(wildcards.ds)):
        files[f"gene_map_{i}"] = P.gene_map(wildcards.ds, i)
    for i, c in enumerate(config["enrichment"]["collections"]):
        files[f"gmt_{i}"] = P.gmt(c["name"])
    return files


def de_targets():
    """Each contrast's DE table and fit record."""
    return [
        path
        for ds in EXPRESSION
        for c in contrasts_of(ds)
        for path in (P.de_table(ds, c), P.de_fit(ds, c))
    ]


def de_figures():
    return [
        P.de_plot(ds, c, kind)
        for ds in EXPRESSION
        for c in contrasts_of(ds)
        for kind in DE_PLOTS
    ]


def enrichment_targets():
    per_contrast = [
        path
        for ds in EXPRESSION
        for c in contrasts_of(ds)
        for path in (
            P.enrich(ds, c, "gsea"),
            P.enrich(ds, c, "ora"),
            *[P.gsea_plot(ds, c, kind) for kind in GSEA_PLOTS],
        )
    ]
    per_dataset = [p for ds in EXPRESSION for p in (P.set_tests(ds), P.set_slopes(ds))]
    return per_contrast + per_dataset


def qc_names(ds):
    """QC outputs of a dataset (prepost.paths.qc_names)."""
    return qc_names_of(contrasts_of(ds), ds in COUNT_DATASETS)


def qc_targets():
    return [P.qc(ds, name) for ds in EXPRESSION for name in qc_names(ds)] + [
        P.lanes(ds) for ds in NANOSTRING
    ]


def all_targets():
    """Everything a run leaves. The cached GEO files are targets too, so one that went missing
    is fetched again (a missing intermediate file alone would not trigger its rule)."""
    return [
        *[path for ds in GEO_DATASETS for path in (*geo_files(ds), P.manifest(ds))],
        P.claims(),
        P.claims_meta(),
        *[P.forest(c) for c in CLAIM_IDS],
        *de_targets(),
        *de_figures(),
        *enrichment_targets(),
        *[P.pairs(ds) for ds in EXPRESSION],
        *qc_targets(),
        P.report(),
    ]


def download_settings():
    d = config["download"]
    return {k: d[k] for k in ("offline", "timeout", "retries", "backoff")}


def published_input(wildcards):
    """A published table's local source file (none for a URL)."""
    table = config["datasets"][wildcards.ds].get("table", {})
    return [table["path"]] if "path" in table else []


def universe_input(wildcards):
    """A published table's local universe file (none for a URL)."""
    universe = config["datasets"][wildcards.ds].get("universe", {})
    return [universe["path"]] if "path" in universe else []


def alias_table():
    """The configured gene alias table as a rule input (none when not configured)."""
    path = config["enrichment"].get("alias_table")
    return [path] if path else []


def claims_tables():
    """Per dataset, the tables the claims engine reads (per-sample files for the standardised
    effects; a published DE table's fetched copy and the config keys its reader uses).
    """
    tables = {
        ds: {
            "de": {c: P.de_table(ds, c) for c in contrasts_of(ds)},
            "gsea": {c: P.enrich(ds, c, "gsea") for c in contrasts_of(ds)},
            "set_tests": P.set_tests(ds),
            "set_scores": P.set_scores(ds),
            # gene-set coverage (the same genes in every contrast): why a collection was skipped
            "coverage": P.enrich(ds, contrasts_of(ds)[0], "genesets_found"),
            **P.analysis(ds),
        }
        for ds in EXPRESSION
    }
    for ds in PUBLISHED:
        tables[ds] = {
            "published": P.published_table(ds),
            "config": dataset_params(config["datasets"][ds], "published_table"),
            **(
                {"universe": P.published_universe(ds)}
                if "universe" in config["datasets"][ds]
                else {}
            ),
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


def report_layout():
    """Result paths the HTML report reads, per dataset (prepost.paths.report_layout)."""
    datasets = {
        ds: {
            "contrasts": contrasts_of(ds),
            "counts": ds in COUNT_DATASETS,
            "geo": ds in GEO_DATASETS,
            "nanostring": ds in NANOSTRING,
        }
        for ds in EXPRESSION
    }
    return layout_of_report(P, datasets, CLAIM_IDS)


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
