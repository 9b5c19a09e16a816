"""Snakemake glue: the self-contained HTML report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.logs import log_to  # noqa: E402
from prepost.report.build import build_report  # noqa: E402

with log_to(snakemake.log[0]) as log:
    summary = build_report(snakemake.params.layout, snakemake.output.html, dict(snakemake.params.config))
    log.info("%s", summary)
