"""DESeq2's variance-stabilising transformation, vectorised over genes.

``vst(counts)`` equals R's ``varianceStabilizingTransformation(dds, blind = TRUE,
fitType = "parametric")`` (DESeq2 1.38): median-of-ratios size factors; with the blind design
~ 1, gene-wise dispersions from DESeq2's moment/rough start and its backtracking line search
on the Cox-Reid adjusted likelihood (mu = the gene's normalised mean times the size factor,
grid fallback for non-converged genes); the parametric trend a + b / mean fitted by R's
iterated Gamma(identity) GLM on genes with dispersion > 1e-6; then the closed-form transform
log2((1 + b + 2 a q + 2 sqrt(a q (1 + b + a q))) / (4 a)) of the normalised counts q. The
dispersion and trend steps are prepost.de.nb's (dispersion, trend) on the intercept-only
design (linalg.INTERCEPT: X'WX is the sum of the weights), the code the DE fits use.

Why not pydeseq2's ``DeseqDataSet.vst()``: its gene-wise dispersions come from a different
optimiser (up to 20% off DESeq2's on tests/fixtures/vst) and its trend iteration differs, so
its values differ from R by up to ~3e-3 log2 units, and it fits one gene at a time (seconds for a
few hundred genes). This module agrees with R at rounding level (max |difference| 7e-15 log2
units on the fixtures of tests/test_vst.py).

One documented difference: when the parametric trend fails (coefficients not positive, or no
convergence; e.g. blind dispersions dominated by patient effects), R substitutes a locfit trend
and integrates numerically; here DESeq2's fitType = "mean" closed form is used instead
(2 asinh(sqrt(alpha q)) - log(alpha) - log 4) / log 2 with alpha the (0.1%-trimmed) mean
gene-wise dispersion, which equals R's ``fitType = "mean"`` output. ``vst_fit`` reports which
trend was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prepost.de.nb.constants import MIN_DISP, MINMU
from prepost.de.nb.dispersion import genewise_dispersions, start_dispersion
from prepost.de.nb.linalg import INTERCEPT
from prepost.de.nb.trend import mean_trend, parametric_trend
from prepost.stats import count_values, size_factors

__all__ = ["VstFit", "vst", "vst_fit"]


@dataclass
class VstFit:
    """The fitted pieces of the transform (for logs and tests)."""

    size_factors: pd.Series
    base_mean: pd.Series
    disp_gene_est: pd.Series  # NaN for all-zero genes, as DESeq2
    fit_type: str  # "parametric" or "mean"
    coefficients: dict  # asymptDisp, extraPois (parametric) or mean (mean)
    values: pd.DataFrame  # the transformed matrix, genes x samples (log2 scale)
    trend_genes: int = 0  # genes whose dispersions fed the trend (nsub subset or all non-zero)


def _gene_dispersions(y: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """estimateDispersionsGeneEst for design ~ 1 (rows with a non-zero count only): DESeq2's
    start and line search of prepost.de.nb.dispersion on the intercept-only design, with
    mu = the gene's normalised mean times the size factor."""
    m = y.shape[1]
    nc = y / sf
    base_mean = nc.mean(axis=1)
    base_var = nc.var(axis=1, ddof=1)
    mu_rough = np.maximum(1.0, base_mean)[:, None]
    alpha_init = start_dispersion(nc, mu_rough, base_mean, base_var, sf, m - 1, m)
    mu = np.maximum(base_mean[:, None] * sf[None, :], MINMU)
    return genewise_dispersions(y[..., None], mu[..., None], alpha_init, m, INTERCEPT)


NSUB = 1000  # DESeq2 vst()'s default number of genes for the dispersion trend
NSUB_MIN_MEAN = 5  # ... drawn from the genes with a normalised mean above this


def trend_subset(base_mean: np.ndarray, nsub: int = NSUB) -> np.ndarray | None:
    """The genes DESeq2's ``vst(nsub=)`` fits the dispersion trend on: of the genes with a
    normalised mean > 5, ``nsub`` evenly spaced in the order of their means (R: ``o <-
    order(baseMean); o[round(seq(1, length(o), length = nsub))]``, ties in index order, round
    half to even). None where fewer than nsub genes qualify: DESeq2 stops there and
    recommends the full varianceStabilizingTransformation, which the caller then uses."""
    eligible = np.flatnonzero(base_mean > NSUB_MIN_MEAN)
    if len(eligible) < nsub:
        return None
    order = eligible[np.argsort(base_mean[eligible], kind="stable")]
    step = (len(order) - 1) / (nsub - 1)  # R's seq(from, to, length.out): from + k * by
    pos = np.r_[1.0, 1 + np.arange(1, nsub - 1) * step, float(len(order))] if nsub > 1 else np.array([1.0])
    return np.sort(order[np.round(pos).astype(int) - 1])


def vst_fit(counts: pd.DataFrame, nsub: int | None = None) -> VstFit:
    """Size factors, blind dispersions, trend and the transformed matrix (see module doc).

    ``nsub``: as DESeq2's ``vst(object, blind = TRUE, nsub = nsub)``, the gene-wise
    dispersions and the trend come from the trend_subset genes only (size factors and the
    transform use every gene); ``disp_gene_est`` is then NaN outside the subset. With fewer
    than nsub genes of normalised mean > 5 every gene is used (the full transform);
    ``trend_genes`` says how many genes the trend came from either way."""
    y = count_values(counts)
    if y.shape[1] < 2:
        raise ValueError(f"vst: {y.shape[1]} sample(s); the dispersion needs at least 2")
    sf = size_factors(y)
    nc = y / sf
    base_mean = nc.mean(axis=1)
    nonzero = y.sum(axis=1) > 0
    fitted = nonzero
    subset = trend_subset(base_mean, nsub) if nsub else None
    if subset is not None:
        fitted = np.zeros(len(y), dtype=bool)
        fitted[subset] = True
    disp = np.full(len(y), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        disp[fitted] = _gene_dispersions(y[fitted], sf)
    use = fitted & (disp > 100 * MIN_DISP)
    if not use.any():
        raise ValueError(
            "vst: every gene-wise dispersion is within 2 orders of magnitude of the minimum; "
            "no dispersion trend can be fitted"
        )
    try:
        a, b = parametric_trend(base_mean[use], disp[use])
        fit_type, coefs = "parametric", {"asymptDisp": float(a), "extraPois": float(b)}
        values = np.log2(
            (1 + b + 2 * a * nc + 2 * np.sqrt(a * nc * (1 + b + a * nc))) / (4 * a)
        )
    except ArithmeticError:
        alpha = mean_trend(disp[fitted])
        fit_type, coefs = "mean", {"mean": alpha}
        values = (2 * np.arcsinh(np.sqrt(alpha * nc)) - np.log(alpha) - np.log(4)) / np.log(2)
    return VstFit(
        size_factors=pd.Series(sf, index=counts.columns, name="size_factor"),
        base_mean=pd.Series(base_mean, index=counts.index, name="baseMean"),
        disp_gene_est=pd.Series(disp, index=counts.index, name="dispGeneEst"),
        fit_type=fit_type,
        coefficients=coefs,
        values=pd.DataFrame(values, index=counts.index, columns=counts.columns),
        trend_genes=int(fitted.sum()),
    )


def vst(counts: pd.DataFrame, nsub: int | None = None) -> pd.DataFrame:
    """DESeq2's blind parametric VST of a genes x samples count matrix (log2-like scale):
    ``varianceStabilizingTransformation``, or with ``nsub`` ``vst(nsub = nsub)`` (vst_fit)."""
    return vst_fit(counts, nsub).values
