"""Snakemake glue: paired DE of one dataset for one contrast, then the contrast's figures from
the files just written (same job: the plots need nothing the fit does not already have)."""

from prepost.de.figures import plot_contrast
from prepost.de.run import run_contrast
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    contrast = snakemake.wildcards.contrast
    table = run_contrast(
        inp.expression, inp.samples, inp.summary, contrast, out.table, fit_dest=out.fit,
        n_cpus=snakemake.threads, covariates=p.covariates, lfc_shrink=p.lfc_shrink,
        unwanted_factors=p.unwanted_factors, model_dest=out.model, factors_dest=out.factors,
        unpaired=p.unpaired, definitions=p.definitions,
    )
    fit = table.attrs.get("fit", {})
    log.info("%d genes tested; %d with padj < 0.05; engine %s, dispersion trend %s", len(table),
             int((table["padj"] < 0.05).sum()), fit.get("engine"), fit.get("dispersion_trend"))
    drawn = plot_contrast(
        out.table, inp.expression, inp.samples, inp.summary, contrast, p.genes, p.title,
        volcano_png=out.volcano, ma_png=out.ma, slopes_png=out.slopes, covariates=p.covariates,
        fit_path=out.fit, model_path=out.model, factors_path=out.factors,
        pvalues_png=out.pvalues, model_png=out.model_plot, factors_png=out.factors_plot,
        definitions=p.definitions, unpaired=p.unpaired,
    )
    log.info("%s", drawn)
