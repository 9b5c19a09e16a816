"""IRLS for the NB GLM (DESeq2's fitBeta) of the patient-blocked designs, all genes at once,
and the NB log-density pieces it shares with the two-group fit."""

from __future__ import annotations

import numpy as np
from scipy import special

from prepost.de.nb.constants import BETA_TOL, LAMBDA, MAXIT, MINMU
from prepost.de.nb.linalg import _arrow, _gexp, _gsum


def _nb_const(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per-gene sum of the mu-free part of the NB log density."""
    size = 1 / alpha[:, None, None]
    return np.sum(
        special.gammaln(y + size) - special.gammaln(size) - special.gammaln(y + 1), axis=(1, 2)
    )


def _nb_mu_part(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per-gene sum of the mu-dependent part of the NB log density (stable for tiny alpha)."""
    a = alpha[:, None, None]
    am = a * mu
    l1p = np.log1p(am)
    return np.sum(-l1p / a + y * (np.log(am) - l1p), axis=(1, 2))


def _irls(y: np.ndarray, sf: np.ndarray, alpha: np.ndarray, grp=None):
    """DESeq2's IRLS (fitBeta) for one gene block. y: genes x P x 2, sf: P x 2; grp: P x G
    one-hot patient groups with one alt coefficient each (None: one group).

    Returns (beta_alt (genes x G, or genes when grp is None), gamma (patient effects), mu
    unclamped, var_alt (ridge sandwich, same shape as beta), iters, stable) on the natural-log
    scale. DESeq2 starts from the least-squares fit of log(normalised counts + 0.1), which in
    this design is closed-form (per group: the mean within-patient difference)."""
    g = y.shape[0]
    logn = np.log(y / sf + 0.1)
    diff = logn[..., 1] - logn[..., 0]
    beta = _gsum(diff, grp) / (diff.shape[1] if grp is None else grp.sum(axis=0))
    gam = 0.5 * (logn[..., 0] + logn[..., 1] - _gexp(beta, grp))
    offs = np.array([0.0, 1.0])
    mu = sf * np.exp(gam[..., None] + _gexp(beta, grp)[..., None] * offs)
    const = _nb_const(y, alpha)
    dev_old = np.zeros(g)
    iters = np.zeros(g, dtype=int)
    stable = np.ones(g, dtype=bool)
    active = np.arange(g)
    logsf = np.log(sf)
    for t in range(MAXIT):
        ya, mua, al = y[active], mu[active], alpha[active]
        w = mua / (1 + al[:, None, None] * mua)
        z = np.log(mua) - logsf + (ya - mua) / mua
        d, b, c = _arrow(w, LAMBDA, grp)
        rp = np.sum(w * z, axis=2)
        rb = _gsum(w[..., 1] * z[..., 1], grp)
        s = c - _gsum(b * b / d, grp)
        ba = (rb - _gsum(b * rp / d, grp)) / s
        bp = _gexp(ba, grp)
        ga = (rp - b * bp) / d
        iters[active] += 1
        big = (
            np.any(np.abs(ba) > 30, axis=1)
            | (np.abs(ga[:, 0]) > 30)
            | np.any(np.abs(ga - ga[:, :1]) > 30, axis=1)
        )
        stable[active[big]] = False  # DESeq2 would hand these to optim
        mua = np.maximum(sf * np.exp(ga[..., None] + bp[..., None] * offs), MINMU)
        dev = -2 * (const[active] + _nb_mu_part(ya, mua, al))
        beta[active], gam[active], mu[active] = ba, ga, mua
        conv = np.abs(dev - dev_old[active]) / (np.abs(dev) + 0.1) < BETA_TOL
        dev_old[active] = dev
        if t > 0:
            active = active[~conv]
        if active.size == 0:
            break
    # variance of the alt coefficients: (A^-1 B A^-1)[alt, alt] with A = B + ridge, at final
    # mu; the groups' blocks are independent, so their covariances are 0
    w = mu / (1 + alpha[:, None, None] * mu)
    d, b, c = _arrow(w, grp=grp)
    da, ca = d + LAMBDA, c + LAMBDA
    va = 1 / (ca - _gsum(b * b / da, grp))
    vp = -b * _gexp(va, grp) / da
    var = _gsum(d * vp * vp, grp) + 2 * va * _gsum(b * vp, grp) + c * va * va
    mu_raw = sf * np.exp(gam[..., None] + _gexp(beta, grp)[..., None] * offs)
    if grp is None:
        beta, var = beta[:, 0], var[:, 0]
    return beta, gam, mu_raw, var, iters, stable & (iters < MAXIT)
