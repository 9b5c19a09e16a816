"""Enrichment of one dataset: collections in, tidy tables out (glue between files and enrich).

Kept apart from ``gsea`` and ``scores`` (the statistics) so the functions there stay DataFrame-in,
DataFrame-out and testable without files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from prepost import files
from prepost.enrich import genesets
from prepost.enrich import gsea as gsea_stats
from prepost.enrich.scores import paired_set_test, set_scores
from prepost.prepare.prepared import read_prepared
from prepost.plots.enrich import gsea_dotplot, running_score_plot, set_slope_plot
from prepost.provenance import software_versions
from prepost.stats import control_genes_of, log2_scale, panel_size_factors
from prepost.vocabulary import ALL_PATIENTS, COUNTS

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.2  # enrichment.min_coverage default
# fewer genes of a collection than this among the data's: not a panel, another id type (as
# prepare.dataset.MIN_SET_GENES_FOUND)
MIN_GENES_FOUND = 10
SET_COLUMNS = ["set", "description", "gene", "gene_set_id", "collection"]


def load_sets(gmt_paths: dict[str, str], genes, aliases=None, min_coverage: float = MIN_COVERAGE,
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All collections mapped onto the data's genes (GMT names are unique within a collection;
    a clash across collections is an error). ``aliases``: a path to an alias table (HGNC
    download or alias/symbol TSV) so previous symbols and aliases still match.

    The measured genes are the universe: each set is tested on its overlap with them, and the
    report (genesets_found.tsv) gives every set's coverage (n_found / n_genes). A collection
    whose typical set (median over its sets) covers less than ``min_coverage`` of its genes
    (a targeted panel against genome-wide sets, or ids of another type) is skipped, not
    fatal: its rows in the report say ``skipped`` and why, the other collections are tested.
    Report column ``collection_status``: ``tested`` or ``skipped: <reason>``."""
    if isinstance(aliases, (str, Path)) and str(aliases):
        aliases = genesets.read_alias_table(aliases)
    elif not isinstance(aliases, pd.DataFrame):
        aliases = None
    mapped, reports = [], []
    for name, path in gmt_paths.items():
        sets = genesets.read_gmt(path)
        try:
            m, rep = genesets.harmonise(sets, genes, collection=name, aliases=aliases,
                                        min_median_fraction=0.0)
        except genesets.OverlapError as err:
            raise genesets.OverlapError(f"{path}: {err}") from None
        median = float(rep["fraction"].median())
        n_all, n_hit = sets["gene"].nunique(), m["gene"].nunique()
        if median < min_coverage and n_hit < min(MIN_GENES_FOUND, n_all):  # ids of another type or species
            raise genesets.OverlapError(
                f"{path}: {name}: only {median:.1%} of a typical set's genes are in the data, and "
                f"{n_hit} of the collection's {n_all} genes at all (data ids e.g. "
                f"{list(pd.Index(genes)[:5])}). Are the identifiers of the same type (symbols vs "
                "Ensembl/Entrez, species)?"
            )
        if median < min_coverage:
            why = (f"skipped: only {median:.1%} of a typical set's genes are among the "
                   f"{len(pd.Index(genes))} measured genes (median over {len(rep)} sets; "
                   f"enrichment.min_coverage {min_coverage:.0%})")
            log.warning("%s: collection %s %s", path, name, why)
            reports.append(rep.assign(collection_status=why))
            continue
        mapped.append(m.assign(collection=name))
        reports.append(rep.assign(collection_status="tested"))
    sets = pd.concat(mapped, ignore_index=True) if mapped else pd.DataFrame(columns=SET_COLUMNS)
    clash = sets.groupby("set")["collection"].nunique()
    if (clash > 1).any():
        raise ValueError(f"gene-set name(s) in several collections: {list(clash.index[clash > 1][:5])}")
    return sets, pd.concat(reports, ignore_index=True)


def run_contrast_enrichment(
    de_path, expression_path, gmt_paths: dict[str, str], settings: dict, *, gsea_dest, ora_dest,
    report_dest, threads: int = 1, record_dest=None,
) -> dict:
    """Prerank GSEA on the DE statistic and ORA of significant up/down genes, one contrast;
    ``record_dest``: a JSON record of the settings and the software this step ran with."""
    de = files.read_tsv(de_path)
    genes = pd.Index(de["gene"].astype(str))  # the genes the DE measured (a panel: its genes)
    sets, report = load_sets(gmt_paths, genes, settings.get("alias_table"),
                             settings.get("min_coverage", MIN_COVERAGE))
    gsea = gsea_stats.prerank(
        de, sets, method=settings["method"], permutations=settings["permutations"],
        seed=settings["seed"], threads=threads, min_size=settings["min_size"],
        max_size=settings["max_size"],
    )
    coll = sets.drop_duplicates("set").set_index("set")["collection"]
    gsea.insert(0, "collection", gsea["set"].map(coll))
    ora_table = pd.concat(
        [gsea_stats.ora(de, sets, alpha=settings["ora_alpha"], lfc=settings["ora_lfc"], direction=d)
         for d in ("up", "down")],
        ignore_index=True,
    )
    ora_table.insert(0, "collection", ora_table["set"].map(coll))
    files.write_tsv(gsea, gsea_dest)
    files.write_tsv(ora_table, ora_dest)
    files.write_tsv(report, report_dest)
    result = {"sets_tested": len(gsea), "gsea_padj_lt_0.05": int((gsea["padj"] < 0.05).sum())}
    if record_dest is not None:
        keys = ("method", "permutations", "seed", "min_size", "max_size", "ora_alpha", "ora_lfc")
        files.write_json({**{k: settings.get(k) for k in keys}, **result,
                          "software": software_versions("gseapy", "numpy", "pandas")}, record_dest)
    return result


def run_set_scores(
    expression_path, samples_path, summary_path, gmt_paths: dict[str, str], settings: dict, *,
    scores_dest, tests_dest,
) -> dict:
    """Per-sample set scores, and their paired change per patient (all, and by response)."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    sf = panel_size_factors(data, control_genes_of(summary)) if summary["values"] == COUNTS else None
    data = log2_scale(data, summary["values"], sf)  # a panel: size factors from its control genes
    sets, _ = load_sets(gmt_paths, data.index, settings.get("alias_table"),
                        settings.get("min_coverage", MIN_COVERAGE))
    scores = set_scores(data, sets, method=settings["score_method"], min_size=settings["min_size"])
    paired = sheet[sheet["in_pair"].astype(str).str.lower() == "true"]
    by = "response" if paired["response"].notna().any() else None
    tests = paired_set_test(scores, paired, by=by)
    files.write_tsv(scores, scores_dest)
    files.write_tsv(tests, tests_dest)
    return {"sets_scored": int(scores["set"].nunique())}


def plot_contrast_enrichment(
    gsea_path, de_path, expression_path, gmt_paths: dict[str, str], alias_table, title, *,
    dotplot_png, running_png, top_n: int = 20, running_n: int = 6,
) -> dict:
    """GSEA dot plot and running-score plots of the ``running_n`` sets with the smallest padj,
    on the same harmonised sets prerank used."""
    gsea = files.read_tsv(gsea_path)
    de = files.read_tsv(de_path)
    genes = pd.read_parquet(expression_path).index
    # only the sets of the GSEA table are drawn: no collection needs skipping here
    sets, _ = load_sets(gmt_paths, genes, alias_table or None, min_coverage=0.0)
    top = gsea.sort_values(["padj", "pvalue", "set"]).head(running_n)["set"].tolist()
    dot = gsea_dotplot(gsea, dotplot_png, title, top_n=top_n)
    running = running_score_plot(de, sets, top, running_png, title, gsea=gsea)
    return {"dotplot": dot, "running": {k: v for k, v in running.items() if k != "leading_edge"}}


def plot_set_slopes(scores_path, tests_path, samples_path, dest, title, *, n_sets: int = 8,
                    method: str = "zmean") -> dict:
    """Paired slope plots of the ``n_sets`` sets with the smallest paired-t p over all pairs."""
    scores = files.read_tsv(scores_path, dtype={"sample": str})
    tests = files.read_tsv(tests_path)
    sheet = files.read_tsv(samples_path, dtype={"sample": str, "patient": str})
    tests = tests[tests["group"] == ALL_PATIENTS].sort_values(["p_ttest", "set"])
    chosen = tests["set"].head(n_sets).tolist()
    ylabel = {"zmean": "set score (mean z)", "ssgsea": "set score (ssGSEA NES)"}[method]
    return set_slope_plot(scores, sheet, chosen, dest, title, ylabel=ylabel)
