"""Snakemake glue: NanoString lane QC of one nanostring dataset."""

from prepost.logs import log_to
from prepost.qc.lanes import run_lane_qc

with log_to(snakemake.log[0]) as log:
    info = run_lane_qc(
        list(snakemake.input.rcc), snakemake.params.settings, snakemake.output.lanes
    )
    log.info("%s", info)
