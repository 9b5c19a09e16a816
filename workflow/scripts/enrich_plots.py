"""Snakemake glue: GSEA dot plot and running-score plots of one contrast."""

from prepost.enrich.run import plot_contrast_enrichment
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    summary = plot_contrast_enrichment(
        inp.gsea, inp.table, inp.expression, dict(zip(p.names, inp.gmts)), p.alias_table, p.title,
        dotplot_png=out.dotplot, running_png=out.running, top_n=p.top_n, running_n=p.running_n,
    )
    log.info("%s", summary)
