"""Snakemake glue: paired DE of one dataset for one contrast."""

from prepost.de.run import run_contrast
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, p = snakemake.input, snakemake.params
    table = run_contrast(
        inp.expression, inp.samples, inp.summary, snakemake.wildcards.contrast,
        snakemake.output.table, fit_dest=snakemake.output.fit, n_cpus=snakemake.threads,
        covariates=p.covariates, lfc_shrink=p.lfc_shrink, unwanted_factors=p.unwanted_factors,
        model_dest=snakemake.output.model, factors_dest=snakemake.output.factors,
        unpaired=p.unpaired, definitions=p.definitions,
    )
    fit = table.attrs.get("fit", {})
    log.info("%d genes tested; %d with padj < 0.05; engine %s, dispersion trend %s", len(table),
             int((table["padj"] < 0.05).sum()), fit.get("engine"), fit.get("dispersion_trend"))
