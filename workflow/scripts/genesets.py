"""Snakemake glue: fetch and check the configured gene-set collections."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.enrich.run import fetch_collections  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    table = fetch_collections(
        p.collections, p.outdir, snakemake.output.provenance,
        offline=p.offline, timeout=p.timeout, retries=p.retries, backoff=p.backoff,
    )
    log.info("\n%s", table.to_string())
