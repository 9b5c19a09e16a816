"""Snakemake glue: one dataset's files -> expression, sample sheet, pair ledger."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.logs import log_to  # noqa: E402
from prepost.prepare.dataset import prepare_dataset, write_prepared  # noqa: E402

with log_to(snakemake.log[0]) as log:
    out = snakemake.output
    prepared = prepare_dataset(snakemake.params.name, snakemake.params.dataset, snakemake.params.files)
    log.info("summary: %s", prepared.summary)
    log.info("pair ledger:\n%s", prepared.ledger.to_string())
    write_prepared(prepared, out.expression, out.samples, out.pairs, out.summary)
