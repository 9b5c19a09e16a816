"""Snakemake glue: fetch and check the configured gene-set collections."""

from prepost.enrich.collections import fetch_collections
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    table = fetch_collections(p.collections, p.outdir, snakemake.output.provenance, **p.settings)
    log.info("\n%s", table.to_string())
