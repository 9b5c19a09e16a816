"""Snakemake glue: the claims table across datasets."""

from prepost.claims.evaluate import run_claims
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    table = run_claims(
        snakemake.input.claims, p.schema, p.tables, snakemake.output.table,
        treatments=p.treatments, alpha=p.alpha, adjust=p.adjust,
        gmts=list(snakemake.input.gmts),
    )
    log.info("verdicts:\n%s", table["verdict"].value_counts().to_string())
