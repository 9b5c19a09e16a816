"""Snakemake glue: random-effects pool per claim and the forest plots."""

from prepost.claims.meta import run_meta
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    meta = run_meta(
        snakemake.input.table, snakemake.output.meta, p.forest_dir, p.claim_ids, alpha=p.alpha,
        cohorts=p.cohorts, published=p.published,
    )
    log.info("verdicts:\n%s", meta["verdict"].value_counts().to_string())
