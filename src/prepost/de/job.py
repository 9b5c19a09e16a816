"""The job of the de rule: every contrast of one dataset, each fitted and written
(run_contrast), then drawn from the files just written (plot_contrast)."""

from __future__ import annotations

import logging

from prepost.de.figures import plot_contrast
from prepost.de.run import run_contrast
from prepost.parallel import run_pieces
from prepost.paths import DE_PLOTS
from prepost.vocabulary import GROUPED

log = logging.getLogger(__name__)

DE_FILES = ("table", "fit", "model", "factors")  # a contrast's files besides its plots


def contrast_job(expression, samples, summary, contrast: str, files: dict, png: dict, *,
                 title: str, genes, covariates=(), lfc_shrink="none", unwanted_factors=0,
                 unpaired="drop", definitions=None, n_cpus=1, shared=None) -> dict:
    """``files``: destinations table, fit, model, factors; ``png``: volcano, ma, slopes,
    pvalues, model, factors (prepost.paths.DE_PLOTS). ``shared``: kept across the contrasts of
    one job (fit_contrast). Returns what was drawn; logs the fit's summary."""
    table = run_contrast(
        expression, samples, summary, contrast, files["table"], fit_dest=files["fit"],
        n_cpus=n_cpus, covariates=covariates, lfc_shrink=lfc_shrink,
        unwanted_factors=unwanted_factors, model_dest=files["model"],
        factors_dest=files["factors"], unpaired=unpaired, definitions=definitions, shared=shared,
    )
    fit = table.attrs.get("fit", {})
    log.info("%s: %d genes tested; %d with padj < 0.05; engine %s, dispersion trend %s",
             contrast, len(table), int((table["padj"] < 0.05).sum()), fit.get("engine"),
             fit.get("dispersion_trend"))
    drawn = plot_contrast(
        files["table"], expression, samples, summary, contrast, genes, title,
        volcano_png=png["volcano"], ma_png=png["ma"], slopes_png=png["slopes"],
        covariates=covariates, fit_path=files["fit"], model_path=files["model"],
        factors_path=files["factors"], pvalues_png=png["pvalues"], model_png=png["model"],
        factors_png=png["factors"], definitions=definitions, unpaired=unpaired,
    )
    log.info("%s: %s", contrast, drawn)
    return drawn


def dataset_de_job(expression, samples, summary, contrasts: list[str], out: dict, *,
                   dataset: str, genes, covariates=(), lfc_shrink="none", unwanted_factors=0,
                   unpaired="drop", definitions=None, threads: int = 1) -> dict:
    """Every contrast of a dataset. ``out``: per contrast ``<c>_<file>`` (DE_FILES) and
    ``<c>_plot_<kind>`` (prepost.paths.DE_PLOTS).

    The within-group and interaction presets (GROUPED) are one piece: for counts they are
    three Wald tests of one fit of ~ patient + post:response, made once (``shared``, as one
    DESeq() call and three results() in R). Every other contrast is a piece of its own. With
    ``threads`` > 1 the pieces run side by side (prepost.parallel), the grouped one first
    (the longest), each with one core; a lone piece gets them all."""
    definitions = definitions or {}
    grouped = [c for c in contrasts if c in GROUPED and c not in definitions]
    pieces = ([grouped] if grouped else []) + [[c] for c in contrasts if c not in grouped]
    n_cpus = threads if len(pieces) == 1 else 1

    def piece(names: list[str]):
        def run() -> dict:
            shared: dict = {}
            return {c: contrast_job(
                expression, samples, summary, c, {w: out[f"{c}_{w}"] for w in DE_FILES},
                {k: out[f"{c}_plot_{k}"] for k in DE_PLOTS}, title=f"{dataset}: {c}", genes=genes,
                covariates=covariates, lfc_shrink=lfc_shrink, unwanted_factors=unwanted_factors,
                unpaired=unpaired, definitions=definitions, n_cpus=n_cpus, shared=shared,
            ) for c in names}
        return run

    done: dict = {}
    for result in run_pieces([piece(p) for p in pieces], threads):
        done.update(result)
    return {c: done[c] for c in contrasts}
