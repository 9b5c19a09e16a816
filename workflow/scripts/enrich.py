"""Snakemake glue: prerank GSEA and ORA of one contrast."""

from prepost.enrich.run import run_contrast_enrichment
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    result = run_contrast_enrichment(
        inp.table, inp.expression, dict(zip(p.names, inp.gmts)), p.settings,
        gsea_dest=out.gsea, ora_dest=out.ora, report_dest=out.report, threads=snakemake.threads,
        record_dest=out.record,
    )
    log.info("%s", result)
