"""Snakemake glue: fetch one published table's universe (assay gene list) into the cache."""

from prepost.claims.published import fetch_universe
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    row = fetch_universe(p.dataset, snakemake.wildcards.ds, snakemake.output.universe, **p.settings)
    log.info("%s", row)
