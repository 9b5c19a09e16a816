"""Snakemake glue: fetch one published DE table into the cache and check it parses."""

from prepost.claims.published import fetch_published
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    row = fetch_published(p.dataset, snakemake.wildcards.ds, snakemake.output.table, **p.settings)
    log.info("%s", row)
