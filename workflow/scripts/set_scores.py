"""Snakemake glue: per-sample gene-set scores, their paired tests and slope plots."""

from prepost.enrich.run import plot_set_slopes, run_set_scores
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    result = run_set_scores(
        inp.expression, inp.samples, inp.summary, dict(zip(p.names, inp.gmts)), p.settings,
        scores_dest=out.scores, tests_dest=out.tests,
    )
    log.info("%s", result)
    plots = plot_set_slopes(
        out.scores, out.tests, inp.samples, out.slopes, p.title, n_sets=p.n_sets,
        method=p.settings["score_method"],
    )
    log.info("%s", plots)
