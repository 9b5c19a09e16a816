"""Snakemake glue: fetch one published DE table into the cache and check it parses."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.logs import log_to  # noqa: E402
from prepost.claims.published import fetch_published  # noqa: E402

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    row = fetch_published(
        p.dataset, p.name, snakemake.output.table, offline=p.offline, timeout=p.timeout,
        retries=p.retries, backoff=p.backoff,
    )
    log.info("%s", row)
