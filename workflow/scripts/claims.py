"""Snakemake glue: the claims table across datasets."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.claims.evaluate import run_claims  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    table = run_claims(
        snakemake.input.claims, p.schema, p.tables, snakemake.output.table,
        treatments=p.treatments, alpha=p.alpha, adjust=p.adjust,
    )
    log.info("verdicts:\n%s", table["verdict"].value_counts().to_string())
