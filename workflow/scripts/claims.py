"""Snakemake glue: the claims table across datasets, then each claim's random-effects pool and
forest plot (prepost.claims.job)."""

from prepost.claims.job import claims_job
from prepost.logs import log_to

with log_to(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    claims_job(
        snakemake.input.claims, p.schema, p.tables, out.table, out.meta, p.forest_dir,
        p.claim_ids, treatments=p.treatments, alpha=p.alpha, adjust=p.adjust,
        gmts=list(snakemake.input.gmts), cohorts=p.cohorts, published=p.published,
        threads=snakemake.threads,
    )
