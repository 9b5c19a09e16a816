"""Snakemake glue: library-size bar plot of one count dataset."""

from prepost.logs import log_to
from prepost.qc.run import run_library_size

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    info = run_library_size(
        inp.expression, inp.samples, inp.summary, snakemake.wildcards.ds,
        snakemake.output.library_size,
    )
    log.info("%s", info)
