"""The job of the enrich rule: every contrast of one dataset (prerank GSEA, ORA and their
plots) and the dataset's per-sample set scores, in one process.

One job per dataset rather than per contrast: each enrichment computes for about a second on
the demo, while a job's interpreter start and imports (gseapy, scipy.stats, matplotlib) cost
about 1.7 s. With threads > 1 the contrasts (and the set scores) run side by side in forked
workers (prepost.parallel), each with one thread."""

from __future__ import annotations

import logging

from prepost.enrich.run import (
    plot_contrast_enrichment,
    plot_set_slopes,
    run_contrast_enrichment,
    run_set_scores,
)
from prepost.parallel import run_pieces

log = logging.getLogger(__name__)


def dataset_enrichment_job(tables: dict[str, str], expression, samples, summary,
                           gmt_paths: dict[str, str], settings: dict, out: dict, *,
                           dataset: str, top_n: int = 20, running_n: int = 6, n_sets: int = 8,
                           threads: int = 1) -> dict:
    """``tables``: contrast -> DE table. ``out``: per contrast ``<c>_gsea``, ``<c>_ora``,
    ``<c>_report``, ``<c>_record``, ``<c>_dotplot``, ``<c>_running``; for the dataset
    ``scores``, ``tests``, ``slopes`` (prepost.paths names each). Returns what was written,
    by contrast and ``set_scores``. The set scores need no DE table; they come last, as the
    shortest piece."""
    pieces = [(lambda c=c: _contrast(c, tables[c], expression, gmt_paths, settings, out,
                                     dataset, top_n, running_n))
              for c in tables]
    pieces.append(lambda: _set_scores(expression, samples, summary, gmt_paths, settings, out,
                                      dataset, n_sets))
    results = run_pieces(pieces, threads)
    return dict(zip([*tables, "set_scores"], results))


def _contrast(c, table, expression, gmt_paths, settings, out, dataset, top_n, running_n) -> dict:
    """One contrast's GSEA (one thread: the contrasts are the parallel pieces), ORA, plots."""
    result = run_contrast_enrichment(
        table, expression, gmt_paths, settings, gsea_dest=out[f"{c}_gsea"],
        ora_dest=out[f"{c}_ora"], report_dest=out[f"{c}_report"], threads=1,
        record_dest=out[f"{c}_record"],
    )
    log.info("%s: %s", c, result)
    plots = plot_contrast_enrichment(
        out[f"{c}_gsea"], table, expression, gmt_paths, settings.get("alias_table") or "",
        f"{dataset}: {c}", dotplot_png=out[f"{c}_dotplot"], running_png=out[f"{c}_running"],
        top_n=top_n, running_n=running_n,
    )
    log.info("%s: %s", c, plots)
    return {**result, "plots": plots}


def _set_scores(expression, samples, summary, gmt_paths, settings, out, dataset, n_sets) -> dict:
    scored = run_set_scores(expression, samples, summary, gmt_paths, settings,
                            scores_dest=out["scores"], tests_dest=out["tests"])
    slopes = plot_set_slopes(out["scores"], out["tests"], samples, out["slopes"],
                             f"{dataset}: gene-set scores", n_sets=n_sets,
                             method=settings["score_method"])
    log.info("set scores: %s; %s", scored, slopes)
    return {**scored, "plots": slopes}
