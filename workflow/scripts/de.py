"""Snakemake glue: paired DE of every contrast of one dataset, each contrast's figures drawn
from the files just written (prepost.de.job)."""

from prepost.de.job import dataset_de_job
from prepost.logs import log_to

with log_to(snakemake.log[0]):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    dataset_de_job(
        inp.expression, inp.samples, inp.summary, p.contrasts, dict(out.items()),
        dataset=p.dataset, genes=p.genes, covariates=p.covariates, lfc_shrink=p.lfc_shrink,
        unwanted_factors=p.unwanted_factors, unpaired=p.unpaired, definitions=p.definitions,
        threads=snakemake.threads,
    )
