"""Snakemake glue: QC tables and plots of one dataset."""

from prepost.logs import log_to
from prepost.qc.run import run_qc

with log_to(snakemake.log[0]) as log:
    inp, out = snakemake.input, snakemake.output
    info = run_qc(
        inp.expression, inp.samples, inp.summary, snakemake.wildcards.ds,
        samples_qc=out.samples_qc, pair_identity_out=out.pair_identity, pca_png=out.pca,
        correlation_png=out.correlation, distribution_png=out.distribution,
    )
    log.info("%s", info)
