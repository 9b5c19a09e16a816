"""Snakemake glue: the DE of the contrasts that share one model (rule de_grouped), each
written and drawn as the de rule does, the fit made once (prepost.de.fit, ``shared``)."""

from prepost.de.figures import plot_contrast
from prepost.de.run import run_contrast
from prepost.logs import log_to

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    shared = {}
    for c in p.contrasts:
        o = {what: out[f"{c}_{what}"] for what in ("table", "fit", "model", "factors")}
        png = {kind: out[f"{c}_plot_{kind}"] for kind in p.plots}
        table = run_contrast(
            inp.expression, inp.samples, inp.summary, c, o["table"], fit_dest=o["fit"],
            n_cpus=snakemake.threads, covariates=p.covariates, lfc_shrink=p.lfc_shrink,
            unwanted_factors=p.unwanted_factors, model_dest=o["model"],
            factors_dest=o["factors"], unpaired=p.unpaired, definitions=p.definitions,
            shared=shared,
        )
        fit = table.attrs.get("fit", {})
        log.info("%s: %d genes tested; %d with padj < 0.05; engine %s, dispersion trend %s", c,
                 len(table), int((table["padj"] < 0.05).sum()), fit.get("engine"),
                 fit.get("dispersion_trend"))
        drawn = plot_contrast(
            o["table"], inp.expression, inp.samples, inp.summary, c, p.genes,
            f"{p.dataset}: {c}", volcano_png=png["volcano"], ma_png=png["ma"],
            slopes_png=png["slopes"], covariates=p.covariates, fit_path=o["fit"],
            model_path=o["model"], factors_path=o["factors"], pvalues_png=png["pvalues"],
            model_png=png["model"], factors_png=png["factors"], definitions=p.definitions,
            unpaired=p.unpaired,
        )
        log.info("%s: %s", c, drawn)
