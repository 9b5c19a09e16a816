"""Snakemake glue: library-size bar plot of one count dataset."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.logs import log_to  # noqa: E402
from prepost.qc.run import run_library_size  # noqa: E402

with log_to(snakemake.log[0]) as log:
    inp = snakemake.input
    info = run_library_size(
        inp.expression, inp.samples, inp.summary, snakemake.params.title,
        snakemake.output.library_size,
    )
    log.info("%s", info)
