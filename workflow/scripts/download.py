"""Snakemake glue: fetch one GEO file into the cache and record its manifest row."""

from prepost.io.download import download_file
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p, out = snakemake.params, snakemake.output
    row = download_file(p.relpath, p.base_url, out.file, out.record, **p.settings)
    log.info("%s", row)
