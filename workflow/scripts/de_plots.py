"""Snakemake glue: volcano, MA and slope plots of one contrast."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.de.run import genes_of_interest, plot_contrast  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    inp, out = snakemake.input, snakemake.output
    genes = genes_of_interest(snakemake.params.dataset, inp.claims)
    summary = plot_contrast(
        inp.table, inp.expression, inp.samples, inp.summary, genes, snakemake.params.title,
        volcano=out.volcano, ma=out.ma, slopes=out.slopes,
    )
    log.info("%s", summary)
