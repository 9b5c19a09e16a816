"""Snakemake glue: paired DE of one dataset for one contrast, then the contrast's figures from
the files just written (same job: the plots need nothing the fit does not already have)."""

from prepost.de.job import contrast_job
from prepost.logs import log_to

with log_to(snakemake.log[0]):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    contrast_job(
        inp.expression, inp.samples, inp.summary, snakemake.wildcards.contrast,
        {k: out[k] for k in ("table", "fit", "model", "factors")},
        {"volcano": out.volcano, "ma": out.ma, "slopes": out.slopes, "pvalues": out.pvalues,
         "model": out.model_plot, "factors": out.factors_plot},
        title=p.title, genes=p.genes, covariates=p.covariates, lfc_shrink=p.lfc_shrink,
        unwanted_factors=p.unwanted_factors, unpaired=p.unpaired, definitions=p.definitions,
        n_cpus=snakemake.threads,
    )
