"""Snakemake glue: paired slope plots of per-sample gene-set scores."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost import io, plots  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    scores = io.read_tsv(inp.scores, dtype={"sample": str})
    tests = io.read_tsv(inp.tests)
    sheet = io.read_tsv(inp.samples, dtype={"sample": str, "patient": str})
    tests = tests[tests["group"] == "all"].sort_values(["p_ttest", "set"])
    chosen = tests["set"].head(p.n_sets).tolist()
    ylabel = {"zmean": "set score (mean z)", "ssgsea": "set score (ssGSEA NES)"}[p.method]
    log.info("%s", plots.set_slope_plot(scores, sheet, chosen, out.slopes, p.title, ylabel=ylabel))
