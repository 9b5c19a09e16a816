"""Snakemake glue: one configured gene identifier map into the cache."""

from prepost.io.gene_maps import fetch_gene_map
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    w = snakemake.wildcards
    what = f"datasets.{w.ds}.gene_map[{w.i}]"
    log.info("%s", fetch_gene_map(snakemake.params.source, snakemake.output[0], what, **snakemake.params.settings))
