"""Snakemake glue: post_vs_pre with and without the QC-flagged samples."""

from prepost.logs import log_to
from prepost.qc.impact import run_impact

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    out = run_impact(
        inp.expression, inp.samples, inp.samples_used, inp.pairs, inp.summary, inp.samples_qc,
        inp.fit, snakemake.output.impact, exclude=snakemake.params.exclude,
        listed=snakemake.params.listed, n_cpus=snakemake.threads,
    )
    log.info("%s", out.to_dict("records"))
