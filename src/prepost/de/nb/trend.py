"""DESeq2's dispersion trend and prior variance (R's algorithms): the parametric trend
a0 + a1 / mean by iterated Gamma(identity) GLMs, the mean trend, R's trimmed mean, the MAD
and estimateDispersionsPriorVar."""

from __future__ import annotations

import numpy as np
from scipy import special

from prepost.de.nb.constants import MIN_DISP


def _gamma_identity_glm(y: np.ndarray, x: np.ndarray, start: np.ndarray):
    """R's glm.fit for family Gamma(link = "identity") from `start` (epsilon 1e-8, maxit 25)."""

    def deviance(mu):
        return -2 * np.sum(np.log(np.where(y == 0, 1, y / mu)) - (y - mu) / mu)

    X = np.column_stack([np.ones_like(x), x])
    coef = start.astype(float)
    mu = X @ coef
    dev_old = deviance(mu)
    for _ in range(25):
        w = 1 / mu
        z = mu + (y - mu)
        new, *_ = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)
        mu_new = X @ new
        halvings = 0
        while not (np.all(np.isfinite(mu_new)) and np.all(mu_new > 0)):  # step halving as glm.fit
            halvings += 1
            if halvings > 100:
                return coef, False
            new = (new + coef) / 2
            mu_new = X @ new
        coef, mu = new, mu_new
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-8:
            return coef, True
        dev_old = dev
    return coef, False


def parametric_trend(means: np.ndarray, disps: np.ndarray) -> np.ndarray:
    """DESeq2's parametricDispersionFit: disp = a + b / mean by iterated Gamma GLMs."""
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        resid = disps / (coefs[0] + coefs[1] / means)
        good = (resid > 1e-4) & (resid < 15)
        new, converged = _gamma_identity_glm(disps[good], 1 / means[good], coefs)
        if not np.all(new > 0):
            raise ArithmeticError("parametric dispersion fit failed")
        old, coefs = coefs, new
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            return coefs
    raise ArithmeticError("dispersion fit did not converge")


def _trend(bm: np.ndarray, disp_gene: np.ndarray):
    """Parametric dispersion trend a0 + a1 / baseMean: (fitted values, (a0, a1))."""
    use = disp_gene > 100 * MIN_DISP
    if not use.any():
        raise ValueError(
            "all gene-wise dispersion estimates are near the minimum: no trend can be fitted"
        )
    try:
        a0, a1 = parametric_trend(bm[use], disp_gene[use])
    except ArithmeticError as err:
        raise ArithmeticError(
            f"{err}: DESeq2 would switch to a local (locfit) trend, pydeseq2 to a mean trend; "
            "use prepost.de.general.deseq2"
        ) from None
    return a0 + a1 / bm, (a0, a1)


def r_trimmed_mean(x: np.ndarray, trim: float) -> np.ndarray:
    """R's mean(x, trim) along the last axis (floor(n * trim) values cut from each end)."""
    n = x.shape[-1]
    lo = int(np.floor(n * trim))
    return np.sort(x, axis=-1)[..., lo : n - lo].mean(axis=-1)


def mean_trend(disp_gene: np.ndarray) -> float:
    """DESeq2's fitType = "mean" (as pydeseq2's fallback when the parametric fit fails): the
    0.1%-trimmed mean of the gene-wise dispersions above 10 * MIN_DISP."""
    return float(r_trimmed_mean(disp_gene[disp_gene > 10 * MIN_DISP], 0.001))


def _mad(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _prior_var_small_df(resid: np.ndarray, df: int) -> float:
    """DESeq2's prior variance for <= 3 residual df: the normal variance whose convolution with
    log(chi2_df / df) best matches the residuals' histogram (KL), smoothed over the grid."""
    rng = np.random.default_rng(2)
    brks = np.arange(-20, 21) / 2
    obs = resid[(resid > brks[0]) & (resid < brks[-1])]
    obs_d, _ = np.histogram(obs, bins=brks, density=True)
    grid = np.linspace(0, 8, 200)
    kl = np.empty(grid.size)
    for k, v in enumerate(grid):  # 200 grid points, vectorised within
        r = np.log(rng.chisquare(df, 10000)) + rng.normal(0, np.sqrt(v), 10000) - np.log(df)
        r = r[(r > brks[0]) & (r < brks[-1])]
        rd, _ = np.histogram(r, bins=brks, density=True)
        z = np.concatenate([obs_d, rd])
        small = z[z > 0].min()
        kl[k] = np.sum(obs_d * (np.log(obs_d + small) - np.log(rd + small)))
    smooth = np.convolve(kl, np.ones(9) / 9, mode="same")
    smooth[:4], smooth[-4:] = kl[:4], kl[-4:]
    return max(float(grid[np.argmin(smooth)]), 0.25)


def _prior_var(disp_gene: np.ndarray, disp_fit: np.ndarray, df: int):
    """DESeq2's estimateDispersionsPriorVar: (prior variance, varLogDispEsts)."""
    above = disp_gene >= MIN_DISP * 100
    resid = np.log(disp_gene) - np.log(disp_fit)
    var_log = _mad(resid[above]) ** 2
    if df <= 3:
        return _prior_var_small_df(resid[above], df), var_log
    return max(var_log - float(special.polygamma(1, df / 2)), 0.25), var_log
