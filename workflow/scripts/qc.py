"""Snakemake glue: QC tables and plots of one dataset, and the sample sheet after qc.exclude."""

from prepost.logs import log_to
from prepost.qc.run import run_qc

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    info = run_qc(
        inp.expression, inp.samples, inp.summary, inp.pairs, snakemake.wildcards.ds,
        out=dict(snakemake.output.items()), exclude=snakemake.params.exclude,
        listed=snakemake.params.listed,
    )
    log.info("%s", info)
