"""The figures of one contrast, from the de rule's files to PNGs: volcano, MA and paired slope
plots, and the model diagnostics (p-value histogram, dispersions or residual SD vs mean, PC1/PC2
by hidden factor: prepost.plots.model). Drawn in the de rule's job right after the fit (one
interpreter start per contrast, not two); kept apart from de.run so a fit alone does not load
matplotlib."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from prepost import files
from prepost.de import contrasts
from prepost.plots.de import ma_plot, slope_plot, volcano
from prepost.plots.model import dispersion_plot, factor_plot, pvalue_histogram, sa_plot
from prepost.prepare.pairing import complete_pairs
from prepost.prepare.prepared import read_prepared
from prepost.stats import control_genes_of, count_values, log2_scale, panel_size_factors, size_factors
from prepost.vocabulary import ALPHA, COUNTS, LOG2


def slope_samples(data: pd.DataFrame, values: str, sheet: pd.DataFrame, contrast: str,
                  dataset: str, covariates=(), control_genes=None, definitions=None,
                  unpaired: str = "drop") -> tuple[pd.DataFrame, pd.Series | None]:
    """The patients a contrast's slope plot draws and the size factors it normalises with.

    A paired contrast draws the pairs of its model (a within-group contrast: that group's) on
    the DE's size factors, i.e. median of ratios over the samples its model was fitted on, so
    each panel's mean change is on the scale of the table's log2fc. The unpaired pre-treatment
    contrast has no pairs: every complete pair of the sheet is drawn, normalised over the
    drawn samples (a panel's on its control genes, as its DE). Returns (sheet rows to draw,
    size factors; None for log2 values).
    Contrasts of other timepoints (on_vs_pre) or declared ones are drawn from their pairs,
    relabelled reference -> pre and target -> post (the slope plot's two ends)."""
    spec = contrasts.build_contrast(sheet, contrast, dataset, available=data.columns,
                                    covariates=list(covariates or []), definitions=definitions,
                                    unpaired=unpaired)
    if spec.kind == "two_group" or (spec.kind == "defined" and spec.pairs is None):
        if values != COUNTS:
            return sheet, None
        # the drawn samples taken pair by pair in patient order, as the paired models take
        # theirs: the same pairs then give post_vs_pre's factors bit for bit, and the figure,
        # equal to post_vs_pre's, is drawn once (prepost.plots.common.slope_figure)
        pairs = complete_pairs(data, sheet, f"{dataset}: {contrast}")
        return sheet, _drawn_size_factors(data, [s for p in pairs.itertuples()
                                                 for s in (p.pre, p.post)], control_genes)
    if spec.pairs is not None:  # within-group contrasts: the group's pairs
        drawn = set(spec.pairs["pre"]) | set(spec.pairs["post"])
    else:  # interaction: every pair in the model
        drawn = set(map(str, spec.samples.index))
    rows = sheet[sheet["sample"].astype(str).isin(drawn)]
    if spec.kind == "defined" or (spec.reference, spec.target) != ("pre", "post"):
        pairs = spec.pairs if spec.pairs is not None else contrasts._pairs_table(
            spec.samples[spec.samples.groupby("patient")["timepoint"].transform("nunique") == 2],
            spec.reference, spec.target)
        end = {**{s: "pre" for s in pairs["pre"]}, **{s: "post" for s in pairs["post"]}}
        who = {**{s: p for p, s in pairs["pre"].items()}, **{s: p for p, s in pairs["post"].items()}}
        rows = rows[rows["sample"].astype(str).isin(end)].copy()
        rows["timepoint"] = rows["sample"].astype(str).map(end)
        rows["patient"] = rows["sample"].astype(str).map(who)
        rows["in_pair"] = True
    if values != COUNTS:
        return rows, None
    return rows, _drawn_size_factors(data, [str(s) for s in spec.samples.index], control_genes)


def _drawn_size_factors(data: pd.DataFrame, samples: list[str], control_genes) -> pd.Series:
    """Median-of-ratios factors over ``samples`` (in this order), on a panel's control genes
    when it has them: as the DE's over the same samples."""
    sf = panel_size_factors(data[samples], control_genes)  # a panel: its control genes
    if sf is None:
        sf = pd.Series(size_factors(count_values(data[samples])), index=samples, name="size_factor")
    return sf


def factor_values(data: pd.DataFrame, values: str, factors: pd.DataFrame) -> pd.DataFrame | None:
    """The log2 values the factor PCA draws: the factors table's samples, counts normalised
    over those samples (the DE's size factors); None without factors."""
    if not any(str(c).startswith("sv") for c in factors.columns):
        return None
    samples = [str(s) for s in factors["sample"]]
    return log2_scale(data[samples], values)


def plot_diagnostics(de: pd.DataFrame, data: pd.DataFrame, values: str, title: str, *, fit_path,
                     model_path, factors_path, pvalues_png, model_png, factors_png) -> dict:
    """The p-value histogram, the model plot (dispersions vs mean for counts, sqrt residual SD
    vs mean for arrays and voom fits of counts) and the hidden-factor PCA of one contrast, from the de rule's fit
    record, model table and factors table."""
    fit = json.loads(Path(fit_path).read_text())
    model = files.read_tsv(model_path)
    factors = files.read_tsv(factors_path, dtype={"sample": str})
    if values == COUNTS and "sigma" not in model.columns:  # voom fits (block): limma's SA plot
        drawn = dispersion_plot(model, model_png, title, fit=fit)
    else:
        drawn = sa_plot(model, model_png, title, fit=fit)
    return {
        "pvalues": pvalue_histogram(de, pvalues_png, title),
        "model": drawn,
        "factors": factor_plot(factor_values(data, values, factors), factors, factors_png, title),
    }


def plot_contrast(
    de_path, expression_path, samples_path, summary_path, contrast, genes, title, *, volcano_png,
    ma_png, slopes_png, covariates=(), alpha=ALPHA, fit_path=None, model_path=None,
    factors_path=None, pvalues_png=None, model_png=None, factors_png=None, definitions=None,
    unpaired="drop",
) -> dict:
    """Volcano, MA and paired slope plots of one contrast, and with the de rule's fit, model
    and factors files the diagnostics of plot_diagnostics."""
    data, sheet, summary = read_prepared(expression_path, samples_path, summary_path)
    counts = summary["values"] == COUNTS
    de = files.read_tsv(de_path)
    rows, sf = slope_samples(data, summary["values"], sheet, contrast, summary["dataset"], covariates,
                             control_genes_of(summary), definitions=definitions, unpaired=unpaired)
    diagnostics = {}
    if fit_path is not None:
        diagnostics = plot_diagnostics(
            de, data, summary["values"], title, fit_path=fit_path, model_path=model_path,
            factors_path=factors_path, pvalues_png=pvalues_png, model_png=model_png,
            factors_png=factors_png,
        )
    return {
        **diagnostics,
        "volcano": volcano(de, volcano_png, title, alpha=alpha, label_genes=genes),
        # voom fits (pairing.unpaired: block) report mean log-cpm, not baseMean: linear axis
        "ma": ma_plot(de, ma_png, title, alpha=alpha, label_genes=genes,
                      log_x=counts and not (fit_path and "mixed" in str(json.loads(Path(fit_path).read_text()).get("engine")))),
        "slopes": slope_plot(data, rows, genes, slopes_png, title,
                             values=COUNTS if counts else LOG2, size_factors=sf),
    }
