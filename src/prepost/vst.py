"""DESeq2's variance-stabilising transformation, vectorised over genes.

``vst(counts)`` equals R's ``varianceStabilizingTransformation(dds, blind = TRUE,
fitType = "parametric")`` (DESeq2 1.38): median-of-ratios size factors; with the blind design
~ 1, gene-wise dispersions from DESeq2's moment/rough start and its backtracking line search
on the Cox-Reid adjusted likelihood (mu = the gene's normalised mean times the size factor,
grid fallback for non-converged genes); the parametric trend a + b / mean fitted by R's
iterated Gamma(identity) GLM on genes with dispersion > 1e-6; then the closed-form transform
log2((1 + b + 2 a q + 2 sqrt(a q (1 + b + a q))) / (4 a)) of the normalised counts q.

Why not pydeseq2's ``DeseqDataSet.vst()``: its gene-wise dispersions come from a different
optimiser (up to 20% off DESeq2's on tests/fixtures/vst) and its trend iteration differs, so
its values differ from R by up to ~3e-3 log2 units, and it fits one gene at a time (seconds for a
few hundred genes). This module agrees with R to ~1e-6 (tests/test_vst.py).

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
from scipy import special

from prepost.de.nb.constants import DISP_TOL, KAPPA_0, MAXIT, MIN_DISP, MINMU
from prepost.de.nb.trend import parametric_trend as _parametric_trend
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


def _log_post(a: np.ndarray, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Cox-Reid adjusted NB log likelihood for the intercept-only design (X'WX = sum w)."""
    alpha = np.exp(a)[:, None]
    inv = 1 / alpha
    w = 1 / (1 / mu + alpha)
    ll = np.sum(
        special.gammaln(y + inv) - special.gammaln(inv) - y * np.log(mu + inv)
        - inv * np.log1p(mu * alpha),
        axis=1,
    )
    return ll - 0.5 * np.log(np.sum(w, axis=1))


def _dlog_post(a: np.ndarray, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Derivative of _log_post in log(alpha), as DESeq2's dlog_posterior (no prior)."""
    alpha = np.exp(a)
    al = alpha[:, None]
    inv = 1 / al
    w = 1 / (1 / mu + al)
    tr = np.sum(-w * w, axis=1) / np.sum(w, axis=1)
    am = mu * al
    ll = (1 / alpha**2) * np.sum(
        special.digamma(inv) + np.log1p(am) - am / (1 + am) - special.digamma(y + inv)
        + y / (mu + inv),
        axis=1,
    )
    return (ll - 0.5 * tr) * alpha


def _line_search(y: np.ndarray, mu: np.ndarray, log_alpha: np.ndarray):
    """DESeq2's fitDisp backtracking ascent on log(alpha), all genes in lockstep.

    Returns (log_alpha, iterations, initial log posterior, last log posterior)."""
    g = y.shape[0]
    a = log_alpha.astype(float).copy()
    lp = _log_post(a, y, mu)
    dlp = _dlog_post(a, y, mu)
    initial_lp = lp.copy()
    kappa = np.full(g, KAPPA_0)
    iters = np.zeros(g, dtype=int)
    accepted = np.zeros(g, dtype=int)
    min_log_alpha = np.log(MIN_DISP / 10)
    active = np.arange(g)
    for _ in range(MAXIT):
        if active.size == 0:
            break
        aa, dl, kk, ll = a[active], dlp[active], kappa[active], lp[active]
        iters[active] += 1
        prop = aa + kk * dl
        kk = np.where(prop < -30.0, (-30.0 - aa) / dl, kk)
        kk = np.where(prop > 10.0, (10.0 - aa) / dl, kk)
        newa = aa + kk * dl
        lp_new = _log_post(newa, y[active], mu[active])
        ok = -lp_new <= -ll - kk * 1e-4 * dl**2
        kappa[active[~ok]] = kk[~ok] / 2  # rejected: halve the step
        acc = active[ok]
        a[acc] = newa[ok]
        accepted[acc] += 1
        change = lp_new[ok] - ll[ok]
        stop = change < DISP_TOL
        lp[acc[stop]] = lp_new[ok][stop]
        below = ~stop & (newa[ok] < min_log_alpha)  # stops without updating lp, as DESeq2
        cont = ~stop & ~below
        cidx = acc[cont]
        lp[cidx] = lp_new[ok][cont]
        if cidx.size:
            dlp[cidx] = _dlog_post(a[cidx], y[cidx], mu[cidx])
            kc = np.minimum(kk[ok][cont] * 1.1, KAPPA_0)
            kappa[cidx] = np.where(accepted[cidx] % 5 == 0, kc / 2, kc)
        done = np.zeros(active.size, dtype=bool)
        done[np.flatnonzero(ok)[stop | below]] = True
        active = active[~done]
    return a, iters, initial_lp, lp


def _grid(y: np.ndarray, mu: np.ndarray, n_samples: int) -> np.ndarray:
    """DESeq2's fitDispGrid: 20 points on log alpha, then 20 around the best; returns alpha."""
    g = y.shape[0]
    grid = np.linspace(np.log(1e-8), np.log(max(10, n_samples)), 20)
    lps = np.stack([_log_post(np.full(g, v), y, mu) for v in grid], axis=1)
    best = grid[np.argmax(np.where(np.isnan(lps), -np.inf, lps), axis=1)]
    delta = grid[1] - grid[0]
    fine = best[:, None] + np.linspace(-delta, delta, 20)[None, :]
    lps = np.stack([_log_post(fine[:, k], y, mu) for k in range(20)], axis=1)
    return np.exp(fine[np.arange(g), np.argmax(np.where(np.isnan(lps), -np.inf, lps), axis=1)])


def _gene_dispersions(y: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """estimateDispersionsGeneEst for design ~ 1 (rows with a non-zero count only)."""
    m = y.shape[1]
    nc = y / sf
    base_mean = nc.mean(axis=1)
    base_var = nc.var(axis=1, ddof=1)
    mu_rough = np.maximum(1.0, base_mean)[:, None]
    rough = np.maximum(np.sum(((nc - mu_rough) ** 2 - mu_rough) / mu_rough**2, axis=1) / (m - 1), 0)
    moments = (base_var - np.mean(1 / sf) * base_mean) / base_mean**2
    max_disp = max(10.0, m)
    alpha_init = np.clip(np.minimum(rough, moments), MIN_DISP, max_disp)
    mu = np.maximum(base_mean[:, None] * sf[None, :], MINMU)
    log_a, iters, initial_lp, last_lp = _line_search(y, mu, np.log(alpha_init))
    disp = np.minimum(np.exp(log_a), max_disp)
    no_increase = last_lp < initial_lp + np.abs(initial_lp) / 1e6
    disp[no_increase] = alpha_init[no_increase]
    refit = ~((iters < MAXIT) & (iters != 1)) & (disp > MIN_DISP * 10)
    if refit.any():
        disp[refit] = _grid(y[refit], mu[refit], m)
    return np.clip(disp, MIN_DISP, max_disp)


def _r_trimmed_mean(x: np.ndarray, trim: float) -> float:
    """R's mean(x, trim = trim): drop floor(n * trim) values at each end."""
    x = np.sort(x)
    lo = int(np.floor(len(x) * trim))
    return float(np.mean(x[lo : len(x) - lo]))


def vst_fit(counts: pd.DataFrame) -> VstFit:
    """Size factors, blind dispersions, trend and the transformed matrix (see module doc)."""
    y = count_values(counts)
    if y.shape[1] < 2:
        raise ValueError(f"vst: {y.shape[1]} sample(s); the dispersion needs at least 2")
    sf = size_factors(y)
    nc = y / sf
    base_mean = nc.mean(axis=1)
    nonzero = y.sum(axis=1) > 0
    disp = np.full(len(y), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        disp[nonzero] = _gene_dispersions(y[nonzero], sf)
    use = nonzero & (disp > 100 * MIN_DISP)
    if not use.any():
        raise ValueError(
            "vst: every gene-wise dispersion is within 2 orders of magnitude of the minimum; "
            "no dispersion trend can be fitted"
        )
    try:
        a, b = _parametric_trend(base_mean[use], disp[use])
        fit_type, coefs = "parametric", {"asymptDisp": float(a), "extraPois": float(b)}
        values = np.log2(
            (1 + b + 2 * a * nc + 2 * np.sqrt(a * nc * (1 + b + a * nc))) / (4 * a)
        )
    except ArithmeticError:
        alpha = _r_trimmed_mean(disp[nonzero & (disp > 10 * MIN_DISP)], 0.001)
        fit_type, coefs = "mean", {"mean": alpha}
        values = (2 * np.arcsinh(np.sqrt(alpha * nc)) - np.log(alpha) - np.log(4)) / np.log(2)
    return VstFit(
        size_factors=pd.Series(sf, index=counts.columns, name="size_factor"),
        base_mean=pd.Series(base_mean, index=counts.index, name="baseMean"),
        disp_gene_est=pd.Series(disp, index=counts.index, name="dispGeneEst"),
        fit_type=fit_type,
        coefficients=coefs,
        values=pd.DataFrame(values, index=counts.index, columns=counts.columns),
    )


def vst(counts: pd.DataFrame) -> pd.DataFrame:
    """DESeq2's blind parametric VST of a genes x samples count matrix (log2-like scale)."""
    return vst_fit(counts).values
