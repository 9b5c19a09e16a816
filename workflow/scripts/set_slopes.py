"""Snakemake glue: paired slope plots of per-sample gene-set scores."""

from prepost.enrich.run import plot_set_slopes
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, p = snakemake.input, snakemake.params
    summary = plot_set_slopes(
        inp.scores, inp.tests, inp.samples, snakemake.output.slopes, p.title, n_sets=p.n_sets,
        method=p.method,
    )
    log.info("%s", summary)
