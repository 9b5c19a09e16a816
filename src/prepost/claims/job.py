"""The job of the claims rule: every claim checked in every dataset (prepost.claims.evaluate),
then pooled across datasets with a forest plot per claim (prepost.claims.meta)."""

from __future__ import annotations

import logging

import pandas as pd

from prepost.claims.evaluate import run_claims
from prepost.claims.meta import run_meta

log = logging.getLogger(__name__)


def claims_job(claims_path, schema, tables: dict, table_dest, meta_dest, forest_dir,
               claim_ids: list[str], *, treatments: dict, alpha: float, adjust: str,
               gmts: list[str], cohorts: dict, published: list[str],
               threads: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Writes the claims table (``table_dest``), the pooled table (``meta_dest``) and
    ``forest_dir``/<claim>.png (drawn by ``threads`` forked workers); returns both tables."""
    table = run_claims(claims_path, schema, tables, table_dest, treatments=treatments,
                       alpha=alpha, adjust=adjust, gmts=gmts)
    log.info("verdicts:\n%s", table["verdict"].value_counts().to_string())
    meta = run_meta(table_dest, meta_dest, forest_dir, claim_ids, alpha=alpha, cohorts=cohorts,
                    published=published, threads=threads)
    log.info("pooled verdicts:\n%s", meta["verdict"].value_counts().to_string())
    return table, meta
