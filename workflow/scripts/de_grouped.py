"""Snakemake glue: the DE of the contrasts that share one model (rule de_grouped), each
written and drawn as the de rule does, the fit made once (prepost.de.fit, ``shared``)."""

from prepost.de.job import contrast_job
from prepost.logs import log_to

with log_to(snakemake.log[0]):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    shared = {}
    for c in p.contrasts:
        contrast_job(
            inp.expression, inp.samples, inp.summary, c,
            {what: out[f"{c}_{what}"] for what in ("table", "fit", "model", "factors")},
            {kind: out[f"{c}_plot_{kind}"] for kind in p.plots},
            title=f"{p.dataset}: {c}", genes=p.genes, covariates=p.covariates,
            lfc_shrink=p.lfc_shrink, unwanted_factors=p.unwanted_factors, unpaired=p.unpaired,
            definitions=p.definitions, n_cpus=snakemake.threads, shared=shared,
        )
