"""Snakemake glue: the self-contained HTML report."""

from prepost.logs import log_to
from prepost.report.build import build_report

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    summary = build_report(p.layout, snakemake.output.html, dict(p.config),
                           snakemake_version=p.snakemake_version, threads=snakemake.threads)
    log.info("%s", summary)
