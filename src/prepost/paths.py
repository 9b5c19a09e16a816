"""Every file the workflow writes, named once.

The rules, the target lists of the Snakefile and the report's inputs all take their paths from a
Layout, so a path is typed in one place. Pass a wildcard as its own pattern to get a rule's
output pattern (``layout.de_table("{ds}", "{contrast}")``) or real names to get a target.
"""

from __future__ import annotations

from dataclasses import dataclass

DE_PLOTS = ("volcano", "ma", "slopes", "pvalues", "model", "factors")
GSEA_PLOTS = ("dotplot", "running")
QC_TABLES = ("samples_qc", "pair_identity", "pair_distances", "pc_associations", "exclusions", "impact")
QC_PLOTS = ("pca", "correlation", "distribution", "scree", "associations")


@dataclass(frozen=True)
class Layout:
    """Paths under the results folder and the download cache (config keys results, resources)."""

    results: str = "results"
    resources: str = "resources"

    # download cache
    def geo_file(self, ds: str, name: str) -> str:
        return f"{self.resources}/geo/{ds}/{name}"

    def download_record(self, ds: str, name: str) -> str:
        """One file's manifest row, written by its download job."""
        return f"{self.resources}/geo/{ds}/.records/{name}.tsv"

    def manifest(self, ds: str) -> str:
        return f"{self.resources}/geo/{ds}/manifest.tsv"

    def published_table(self, ds: str) -> str:
        return f"{self.resources}/published/{ds}/table"

    def published_universe(self, ds: str) -> str:
        """The published table's assay gene list (``universe:``), one symbol a line."""
        return f"{self.resources}/published/{ds}/universe"

    def gene_map(self, ds: str, i: int | str) -> str:
        return f"{self.resources}/gene_maps/{ds}/map{i}"

    def gmt(self, collection: str) -> str:
        return f"{self.resources}/genesets/{collection}.gmt"

    # prepare
    def expression(self, ds: str) -> str:
        return f"{self.results}/{ds}/expression.parquet"

    def samples(self, ds: str) -> str:
        return f"{self.results}/{ds}/samples.tsv"

    def pairs(self, ds: str) -> str:
        return f"{self.results}/{ds}/pairs.tsv"

    def summary(self, ds: str) -> str:
        return f"{self.results}/{ds}/prepare.json"

    def prepared(self, ds: str) -> dict[str, str]:
        """The three files every downstream rule reads (prepare.prepared.read_prepared)."""
        return {"expression": self.expression(ds), "samples": self.samples(ds), "summary": self.summary(ds)}

    # qc
    def qc(self, ds: str, name: str) -> str:
        """name: one of QC_TABLES (TSV) or QC_PLOTS, library_size (PNG)."""
        suffix = "tsv" if name in QC_TABLES else "png"
        return f"{self.results}/{ds}/qc/{name}.{suffix}"

    def lanes(self, ds: str) -> str:
        """NanoString lane QC of a nanostring dataset (prepost.qc.lanes)."""
        return f"{self.results}/{ds}/qc/lanes.tsv"

    def analysis_samples(self, ds: str) -> str:
        """The sample sheet the models use: samples.tsv after qc.exclude (prepost.qc.exclude)."""
        return f"{self.results}/{ds}/qc/samples_used.tsv"

    def analysis_pairs(self, ds: str) -> str:
        """pairs.tsv with each sample's QC status and reason."""
        return f"{self.results}/{ds}/qc/pairs_used.tsv"

    def analysis(self, ds: str) -> dict[str, str]:
        """What the models read: prepared expression and summary, the sheet after QC."""
        return {"expression": self.expression(ds), "samples": self.analysis_samples(ds),
                "summary": self.summary(ds)}

    # de
    def de_table(self, ds: str, contrast: str) -> str:
        return f"{self.results}/{ds}/de/{contrast}.tsv"

    def de_fit(self, ds: str, contrast: str) -> str:
        """The contrast's fit record (engine, dispersion trend, counts; prepost.de.run)."""
        return f"{self.results}/{ds}/de/{contrast}.fit.json"

    def de_model(self, ds: str, contrast: str) -> str:
        """Per-gene model diagnostics (dispersions for counts, residual SD for arrays)."""
        return f"{self.results}/{ds}/de/{contrast}.model.tsv"

    def de_factors(self, ds: str, contrast: str) -> str:
        """The contrast's hidden factors (unwanted_factors: sv1..svk) per sample."""
        return f"{self.results}/{ds}/de/{contrast}.factors.tsv"

    def de_plot(self, ds: str, contrast: str, kind: str) -> str:
        """kind: volcano, ma, slopes, pvalues (p-value histogram), model (dispersions vs mean
        for counts, residual SD vs mean for arrays) or factors (PC1/PC2 by hidden factor)."""
        return f"{self.results}/{ds}/de/{contrast}.{kind}.png"

    # enrichment
    def collections(self) -> str:
        return f"{self.results}/genesets/collections.tsv"

    def enrich(self, ds: str, contrast: str, name: str) -> str:
        """name: gsea, ora or genesets_found (TSV)."""
        return f"{self.results}/{ds}/enrich/{contrast}/{name}.tsv"

    def enrich_record(self, ds: str, contrast: str) -> str:
        """The enrich step's settings and software (JSON)."""
        return f"{self.results}/{ds}/enrich/{contrast}/run.json"

    def gsea_plot(self, ds: str, contrast: str, kind: str) -> str:
        """kind: dotplot or running."""
        return f"{self.results}/{ds}/enrich/{contrast}/gsea.{kind}.png"

    def set_scores(self, ds: str) -> str:
        return f"{self.results}/{ds}/enrich/set_scores.tsv"

    def set_tests(self, ds: str) -> str:
        return f"{self.results}/{ds}/enrich/set_tests.tsv"

    def set_slopes(self, ds: str) -> str:
        return f"{self.results}/{ds}/enrich/set_scores.slopes.png"

    # claims and report
    def claims(self) -> str:
        return f"{self.results}/claims.tsv"

    def claims_meta(self) -> str:
        return f"{self.results}/claims_meta.tsv"

    def forest(self, claim: str) -> str:
        return f"{self.results}/claims/forest/{claim}.png"

    def report(self) -> str:
        return f"{self.results}/report.html"

    # logs and benchmarks: one per job, named by dataset (or "" for a cross-dataset job) and step
    def log(self, ds: str, step: str) -> str:
        return f"{self.results}/logs/{ds}/{step}.log" if ds else f"{self.results}/logs/{step}.log"

    def benchmark(self, ds: str, step: str) -> str:
        if ds:
            return f"{self.results}/benchmarks/{ds}/{step}.tsv"
        return f"{self.results}/benchmarks/{step}.tsv"


QC_LABELS = {
    "pca": "PCA",
    "correlation": "Sample correlation",
    "distribution": "Distribution",
    "library_size": "Library size",
    "scree": "Scree plot",
    "associations": "PC-field associations",
}


def qc_names(contrasts, counts: bool) -> list[str]:
    """QC outputs of a dataset; impact (with vs without QC-flagged samples) refits post_vs_pre,
    so only where that contrast is configured; library sizes only for counts."""
    tables = [t for t in QC_TABLES if t != "impact" or "post_vs_pre" in contrasts]
    return [*tables, *QC_PLOTS, *(["library_size"] if counts else [])]


def report_layout(P: Layout, datasets: dict[str, dict], claim_ids) -> dict:
    """Result paths the HTML report reads (prepost.report.build). ``datasets``: name ->
    {"contrasts": [...], "counts": bool, "geo": bool (has a download manifest), "nanostring":
    bool (has lane QC)}, the expression datasets only. Shared by the report rule and the scale
    benchmark, so both read the same files."""
    out = {}
    for ds, d in datasets.items():
        names = qc_names(d["contrasts"], d["counts"])
        out[ds] = {
            "samples": P.samples(ds),
            "pairs": P.analysis_pairs(ds),
            "expression": P.expression(ds),
            "analysis_samples": P.analysis_samples(ds),
            "set_scores": P.set_scores(ds),
            "summary": P.summary(ds),
            "manifest": P.manifest(ds) if d.get("geo") else None,
            "lanes": P.lanes(ds) if d.get("nanostring") else None,
            "qc": {
                "samples_qc": P.qc(ds, "samples_qc"),
                "pair_identity": P.qc(ds, "pair_identity"),
                **{t: P.qc(ds, t) for t in ("exclusions", "pc_associations", "impact") if t in names},
                "plots": {QC_LABELS[n]: P.qc(ds, n) for n in names if n not in QC_TABLES},
            },
            "contrasts": {
                c: {
                    "table": P.de_table(ds, c),
                    "fit": P.de_fit(ds, c),
                    **{kind: P.de_plot(ds, c, kind) for kind in DE_PLOTS},
                    "gsea": P.enrich(ds, c, "gsea"),
                    "genesets_found": P.enrich(ds, c, "genesets_found"),
                    "enrich_record": P.enrich_record(ds, c),
                    "dotplot": P.gsea_plot(ds, c, "dotplot"),
                }
                for c in d["contrasts"]
            },
            "set_slopes": P.set_slopes(ds),
        }
    return {
        "datasets": out,
        "claims": P.claims(),
        "claims_meta": P.claims_meta(),
        "forest": {c: P.forest(c) for c in claim_ids},
    }


# The workflow's own files in a config: `<workflow>/config/claims.yaml` is the claims catalogue
# shipped with the workflow, wherever it was deployed (a clone, or a module of another project).
# Every other relative path is relative to the working directory (the user's project).
WORKFLOW_MARKER = "<workflow>"


def resolve_workflow_paths(tree, workflow_dir: str):
    """``tree`` (a config: dicts, lists, strings) with every string that starts with
    ``<workflow>/`` rooted at ``workflow_dir`` (a folder, or a URL for a remote module).
    Returns a new tree; other values are kept as they are."""
    if isinstance(tree, dict):
        return {k: resolve_workflow_paths(v, workflow_dir) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve_workflow_paths(v, workflow_dir) for v in tree]
    if isinstance(tree, str) and (tree == WORKFLOW_MARKER or tree.startswith(WORKFLOW_MARKER + "/")):
        rest = tree[len(WORKFLOW_MARKER):].lstrip("/")
        base = str(workflow_dir).rstrip("/")
        return f"{base}/{rest}" if rest else base
    return tree
