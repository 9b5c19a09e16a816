"""Snakemake glue: a dataset's download manifest from its files' records."""

from prepost.io.download import write_manifest
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    table = write_manifest(inp.files, inp.records, snakemake.output.manifest)
    log.info("%s: %d file(s)\n%s", snakemake.wildcards.ds, len(table), table.to_string())
