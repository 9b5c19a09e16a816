"""Snakemake glue: prerank GSEA and ORA of one contrast, and their plots."""

from prepost.enrich.run import plot_contrast_enrichment, run_contrast_enrichment
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    gmts = dict(zip(p.names, inp.gmts))
    result = run_contrast_enrichment(
        inp.table, inp.expression, gmts, p.settings,
        gsea_dest=out.gsea, ora_dest=out.ora, report_dest=out.report, threads=snakemake.threads,
        record_dest=out.record,
    )
    log.info("%s", result)
    plots = plot_contrast_enrichment(
        out.gsea, inp.table, inp.expression, gmts, p.settings.get("alias_table") or "", p.title,
        dotplot_png=out.dotplot, running_png=out.running, top_n=p.top_n, running_n=p.running_n,
    )
    log.info("%s", plots)
