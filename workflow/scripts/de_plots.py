"""Snakemake glue: volcano, MA, slope, p-value, model diagnostic and hidden-factor plots of
one contrast."""

from prepost.de.figures import genes_of_interest, plot_contrast
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    genes = genes_of_interest({"genes_of_interest": p.genes_of_interest}, inp.claims)
    summary = plot_contrast(
        inp.table, inp.expression, inp.samples, inp.summary, snakemake.wildcards.contrast, genes,
        p.title, volcano_png=out.volcano, ma_png=out.ma, slopes_png=out.slopes,
        covariates=p.covariates, fit_path=inp.fit, model_path=inp.model,
        factors_path=inp.factors, pvalues_png=out.pvalues, model_png=out.model,
        factors_png=out.factors, definitions=p.definitions, unpaired=p.unpaired,
    )
    log.info("%s", summary)
