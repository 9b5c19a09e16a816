"""Snakemake glue: paired DE of one dataset for one contrast."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.de.run import run_contrast  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    table = run_contrast(
        inp.expression, inp.samples, inp.summary, snakemake.params.contrast,
        snakemake.output.table, n_cpus=snakemake.threads,
        covariates=snakemake.params.covariates, lfc_shrink=snakemake.params.lfc_shrink,
    )
    log.info("%d genes tested; %d with padj < 0.05", len(table), int((table["padj"] < 0.05).sum()))
