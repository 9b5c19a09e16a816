"""Fit one contrast in memory: the model each kind of data and design goes to, and the paired
cross-checks every paired table carries (the contrast's samples and design: de.contrasts)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost.de import contrasts, hidden, mixed, nb
from prepost.de.general import deseq2
from prepost.de.limma import moderated_t
from prepost.stats import count_values, log2_scale, size_factors
from prepost.stats import panel_size_factors as stats_panel_size_factors
from prepost.vocabulary import COUNTS

CHECK_COLUMNS = ["n_pairs", "n_up", "n_down", "paired_t_p", "wilcoxon_p"]
SHRINK = ("none", "apeglm")
NB_ENGINE = "prepost.de.nb"

log = logging.getLogger(__name__)


def paired_checks(values: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per gene, on log-scale values: post - pre differences d of each pair, then
    n_pairs (finite d), n_up (d > 0), n_down (d < 0), the paired t-test p (as
    scipy.stats.ttest_rel / R t.test(paired=TRUE), NaN pairs omitted) and the Wilcoxon
    signed-rank p as R's wilcox.test(paired=TRUE) (prepost.distributions.signed_rank_p: zero
    differences dropped, exact null distribution below 50 pairs without ties or zeros, else
    the normal approximation with tie and continuity corrections; all differences zero: NaN).
    Vectorised over genes, missing pairs included."""
    pre = values[list(pairs["pre"])].to_numpy(float)
    post = values[list(pairs["post"])].to_numpy(float)
    d = post - pre
    ok = np.isfinite(d)
    n = ok.sum(axis=1)
    dz = np.where(ok, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = dz.sum(axis=1) / n
        var = np.where(ok, (d - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
        t = mean / np.sqrt(var / n)
        p_t = np.where(n >= 2, 2 * D.t_sf(np.abs(t), n - 1), np.nan)
    p_w = D.signed_rank_p(d)
    return pd.DataFrame(
        {
            "n_pairs": n,
            "n_up": (ok & (d > 0)).sum(axis=1),
            "n_down": (ok & (d < 0)).sum(axis=1),
            "paired_t_p": p_t,
            "wilcoxon_p": p_w,
        },
        index=values.index.astype(str),
    )


def panel_size_factors(counts: pd.DataFrame, values: str, control_genes) -> pd.Series | None:
    """Size factors of a contrast's samples from control genes (DESeq2's
    ``estimateSizeFactors(controlGenes = ...)``: housekeeping genes of a targeted panel), over
    all the matrix's genes; None when no control genes are set or the values are not counts."""
    if values != COUNTS:
        return None
    return stats_panel_size_factors(counts, control_genes)


def fit_contrast(
    data: pd.DataFrame,
    values: str,
    sheet: pd.DataFrame,
    name: str,
    dataset: str = "dataset",
    *,
    n_cpus: int = 1,
    covariates: list[str] | None = None,
    lfc_shrink: str = "none",
    control_genes: list[str] | None = None,
    not_tested: list[str] | None = None,
    unwanted_factors: int = 0,
    unpaired: str = "drop",
    definitions: dict | None = None,
    shared: dict | None = None,
) -> pd.DataFrame:
    """DE table of one contrast: DESeq2 for ``values == "counts"``, else the moderated t on
    log2 values; paired contrasts get the cross-check columns (CHECK_COLUMNS) appended. For
    counts the cross-check uses log2(normalised count + 1) with the DESeq2 size factors of the
    fit. Counts without covariates go to prepost.de.nb for post_vs_pre and, when lfc_shrink is
    "none", for the within-group, interaction and unpaired responder contrasts; everything else
    to pydeseq2 (and
    to it as well when nb's parametric dispersion trend fails). ``lfc_shrink="apeglm"``
    (counts only) adds ``log2fc_shrunk`` (apeGLM prior: nb's own MAP for post_vs_pre,
    pydeseq2's lfc_shrink otherwise; p-values unchanged, as DESeq2's lfcShrink).

    The table's ``attrs["fit"]`` records what produced it (engine, method, design, dispersion
    trend and its coefficients, prior; see prepost.de.nb.wald.fit_info, general.fit_info,
    limma.fit_info); a contrast that nb gave to pydeseq2 also has ``fallback`` (nb's error)
    and ``fallback_from`` ("prepost.de.nb"). ``attrs["contrast"]`` is the contrast's summary
    (samples, coefficients, df_residual, pairs, group sizes, covariates; see
    contrasts.build_contrast), the coefficient weights tested and their meaning.
    ``control_genes`` (counts): size factors from these genes (panel_size_factors) on all genes
    of the contrast's samples; ``not_tested``: genes left out of the model after that
    (a panel's housekeeping genes).

    ``unwanted_factors`` k > 0: k surrogate variables (prepost.de.hidden, svaseq on the
    contrast's samples) are appended to the design as numeric covariates sv1..svk, so counts go
    through pydeseq2 (a design with covariates); ``attrs["fit"]["unwanted_factors"]`` records
    k and the method and ``attrs["factors"]`` holds the surrogates (samples x sv1..svk).
    ``attrs["model"]`` holds the per-gene values of the diagnostic plots: gene-wise, trend and
    final dispersions and the outlier flag (counts), residual SD and df (arrays).

    ``unpaired="block"`` (the dataset's pairing.unpaired): paired contrasts keep the samples of
    patients with one sample and model the patient as a random effect (prepost.de.mixed:
    limma duplicateCorrelation + lmFit(block=) for log2 values, the voom pipeline for counts);
    ``attrs["contrast"]`` then records the consensus correlation.

    ``shared``: a dict kept across calls on the same data (one per job): the within-group and
    interaction contrasts of counts are three Wald tests of one fit (``~ patient +
    post:response``, as one DESeq() call and three results() in R), so the fit is made once and
    its tables (or its failure) reused; nothing else is shared."""
    if lfc_shrink not in SHRINK:
        raise contrasts.ContrastError(f"dataset {dataset!r}: lfc_shrink {lfc_shrink!r}; expected one of {list(SHRINK)}")
    spec = contrasts.build_contrast(
        sheet, name, dataset, available=data.columns, covariates=covariates, unpaired=unpaired,
        definitions=definitions,
    )
    sub = data[list(spec.samples.index)]
    # -- targeted panels (NanoString): size factors from control genes, genes not tested --
    given_sf = panel_size_factors(sub, values, control_genes)
    if not_tested:
        sub = sub.drop(index=[g for g in not_tested if g in sub.index])
    sfkw = {} if given_sf is None else {"size_factors": given_sf}
    # -- end targeted panels --
    factors, factor_info = None, None
    if unwanted_factors:
        spec, factors, factor_info = hidden.add_factors(spec, sub, values, unwanted_factors)
    if spec.block is not None:
        table, logv = _fit_block(spec, sub, values, dataset, lfc_shrink, given_sf)
    elif values == COUNTS:
        table = None
        fallback = None  # why prepost.de.nb gave the contrast to pydeseq2
        ends = {"ref": spec.reference, "alt": spec.target}
        if spec.kind == "paired" and not spec.summary.get("covariates"):
            # One pre and one post sample per patient, no covariate: the vectorised DESeq2 of
            # prepost.de.nb (equal to DESeq2 1.38 by tools/deseq2_agreement.py's rule on real
            # GSE91061 counts and a stress simulation: tests/test_nb_real.py, test_nb_stress.py).
            # Covariates go through pydeseq2 (general designs).
            try:
                table = nb.fast_paired_deseq2(
                    sub, spec.samples, n_cpus=n_cpus, lfc_shrink=lfc_shrink, **ends, **sfkw
                )
            except ArithmeticError as err:  # parametric trend failed: pydeseq2 (mean trend)
                fallback = str(err)
        elif spec.kind in ("grouped", "interaction") and not spec.summary.get("covariates") and lfc_shrink == "none":
            # ~ patient + post:non_responder + post:responder: X'WX splits into one arrow
            # block per response group, so prepost.de.nb fits it vectorised as well (equal to
            # DESeq2 1.38, tests/test_nb.py, test_nb_real.py). With one group only the design is the plain
            # paired one. apeglm shrinkage of these coefficients stays with pydeseq2.
            groups = sorted(spec.samples["response"].unique())
            try:
                # nb names its tables as the pre/post contrasts: which one this contrast is
                key = "interaction" if spec.kind == "interaction" else \
                    f"post_vs_pre_{str(spec.contrast.idxmax()).split('response[')[1].rstrip(']')}"
                if len(groups) == 1:
                    table = nb.fast_paired_deseq2(sub, spec.samples, n_cpus=n_cpus, **ends, **sfkw)
                else:
                    table = _grouped_fit(shared, sub, spec, n_cpus, ends, sfkw)[key]
            except ArithmeticError as err:  # parametric trend failed: pydeseq2 (mean trend)
                fallback = str(err)
        elif spec.kind == "two_group" and not spec.summary.get("covariates") and lfc_shrink == "none":
            # ~ response on pre samples: X'WX is diagonal in the cell-means basis, so
            # prepost.de.nb fits it vectorised too, with DESeq2's Cook's outlier replacement and
            # filtering (equal to DESeq2 1.38, tests/test_nb.py, test_nb_real.py). Covariates and apeglm
            # shrinkage stay with pydeseq2.
            try:
                table = nb.fast_two_group_deseq2(sub, spec.samples, n_cpus=n_cpus, given=given_sf)
            except ArithmeticError as err:  # parametric trend failed: pydeseq2 (mean trend)
                fallback = str(err)
        if table is not None:
            sf = size_factors(count_values(sub)) if given_sf is None else given_sf.to_numpy()
        if table is None:
            if fallback is not None:
                log.warning(
                    "dataset %r, contrast %r: %s; falling back to pydeseq2", dataset, name, fallback
                )
            table, fitted_sf = deseq2(
                sub,
                spec.samples,
                spec.design,
                spec.contrast,
                n_cpus=n_cpus,
                return_size_factors=True,
                lfc_shrink=lfc_shrink,
                **sfkw,
            )
            sf = fitted_sf[sub.columns].to_numpy()
            if fallback is not None:
                table.attrs["fit"] = {
                    **table.attrs["fit"], "fallback": fallback, "fallback_from": NB_ENGINE,
                }
        logv = log2_scale(sub, values, sf)
    else:
        if lfc_shrink != "none":
            log.info("dataset %r: lfc_shrink applies to counts only; ignored for log2 values", dataset)
        table = moderated_t(sub, spec.design, spec.contrast)
        logv = log2_scale(sub, values)
    fit = dict(table.attrs.get("fit") or {})  # captured: join need not keep attrs
    if given_sf is not None:  # targeted panels
        fit["size_factors"] = {"method": "control genes", "control_genes": sorted(control_genes)}
    if not_tested:
        fit["not_tested"] = sorted(g for g in not_tested if g in data.index)
    model = table.attrs.get("model")
    if factor_info is not None:
        fit[hidden.KEY] = factor_info
    table.attrs = {}  # captured above; pandas would deep-copy the per-gene model into the join
    if spec.pairs is not None:
        checks = paired_checks(logv, spec.pairs)
        table = table.join(checks, on="gene")
    table.attrs["fit"] = fit
    table.attrs["model"] = model
    table.attrs["factors"] = factors
    rho = fit.get("consensus_correlation")
    summary = dict(spec.summary)
    if rho is not None:
        summary["patient_model_reason"] += f"; consensus within-patient correlation {rho:.3f}"
    table.attrs["contrast"] = {
        **summary,
        "consensus_correlation": rho,
        "tested": {str(k): float(v) for k, v in spec.contrast.items() if v != 0},
        "meaning": spec.meaning,
    }
    return table


def _grouped_fit(shared: dict | None, sub: pd.DataFrame, spec, n_cpus: int, ends: dict, sfkw: dict) -> dict:
    """nb.fast_grouped_paired_deseq2 on the contrast's samples, made once per ``shared`` dict
    and samples/ends/size factors: its three tables are handed out as fresh copies (the
    caller edits attrs), a failed fit's ArithmeticError raised again."""
    given = sfkw.get("size_factors")
    key = ("grouped", tuple(sub.columns), tuple(sorted(ends.items())),
           None if given is None else tuple(given.to_numpy()))
    if shared is None or key not in shared:
        try:
            made = nb.fast_grouped_paired_deseq2(sub, spec.samples, n_cpus=n_cpus, **ends, **sfkw)
        except ArithmeticError as err:
            made = err
        if shared is not None:
            shared[key] = made
    else:
        made = shared[key]
    if isinstance(made, ArithmeticError):
        raise made
    out = {}
    for name, table in made.items():
        attrs, table.attrs = table.attrs, {}  # not deep-copied by copy(): read-only here
        out[name] = table.copy()
        out[name].attrs, table.attrs = dict(attrs), attrs
    return out


def _fit_block(spec, sub: pd.DataFrame, values: str, dataset: str, lfc_shrink: str, given_sf):
    """A contrast whose patient is a random effect (spec.block): limma's duplicateCorrelation +
    lmFit(block=) on log2 values, the voom pipeline on counts (prepost.de.mixed). Returns the
    table and the log-scale values of the paired cross-checks (counts: log2 of DESeq2-normalised
    counts + 1, as the other count paths)."""
    if lfc_shrink != "none":
        log.info("dataset %r, contrast %r: lfc_shrink does not apply to the voom (random "
                 "patient effect) fit; ignored", dataset, spec.name)
    if values == COUNTS:
        table = mixed.voom_block(sub, spec.design, spec.contrast, spec.block)
        sf = size_factors(count_values(sub)) if given_sf is None else given_sf.to_numpy()
        return table, log2_scale(sub, values, sf)
    return mixed.block_moderated_t(sub, spec.design, spec.contrast, spec.block), log2_scale(sub, values)
