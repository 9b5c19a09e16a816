"""Snakemake glue: the enrichment of every contrast of one dataset and its set scores."""

from prepost.enrich.job import dataset_enrichment_job
from prepost.logs import log_to

with log_to(snakemake.log[0]):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    dataset_enrichment_job(
        dict(zip(p.contrasts, inp.tables)), inp.expression, inp.samples, inp.summary,
        dict(zip(p.names, inp.gmts)), p.settings, dict(out.items()), dataset=p.dataset,
        top_n=p.top_n, running_n=p.running_n, n_sets=p.n_sets, threads=snakemake.threads,
    )
