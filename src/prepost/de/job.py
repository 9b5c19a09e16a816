"""The job of the de and de_grouped rules for one contrast: fit and write it (run_contrast),
then draw its figures from the files just written (plot_contrast), one home for both rules."""

from __future__ import annotations

import logging

from prepost.de.figures import plot_contrast
from prepost.de.run import run_contrast

log = logging.getLogger(__name__)


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
