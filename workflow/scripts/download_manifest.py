"""Snakemake glue: a dataset's download manifest from its files' records."""

from prepost.io.download import write_manifest
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    rows = write_manifest(inp.files, inp.records, snakemake.output.manifest)
    log.info("%s: %d file(s)", snakemake.wildcards.ds, len(rows))
    for row in rows:
        log.info("%s", row)
