"""Snakemake glue: one dataset's files -> expression, sample sheet, pair ledger."""

from prepost.logs import log_to
from prepost.prepare.dataset import prepare_dataset, write_prepared

with log_to(snakemake.log[0]) as log:
    out = snakemake.output
    files = {role: path for role, path in snakemake.input.items() if role != "manifest"}
    prepared = prepare_dataset(snakemake.wildcards.ds, snakemake.params.dataset, files)
    log.info("summary: %s", prepared.summary)
    log.info("pair ledger:\n%s", prepared.ledger.to_string())
    write_prepared(prepared, out.expression, out.samples, out.pairs, out.summary)
