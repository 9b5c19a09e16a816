"""IRLS for the NB GLM (DESeq2's fitBeta) of the patient-blocked designs, all genes at once,
and the NB log-density pieces it shares with the two-group fit."""

from __future__ import annotations

import numpy as np
from scipy import special

from prepost.de.nb.constants import BETA_TOL, LAMBDA, MAXIT, MINMU
from prepost.de.nb.linalg import _gexp, _gsum, _ridged_alt_cov, _ridged_solve
from prepost.de.nb.optim import LARGE


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


def deviance_step(const, y, mu, alpha, dev_old, act, iters, t):
    """fitBeta's convergence test for the genes ``act`` after an IRLS step to (clamped) ``mu``
    (y, mu: genes x ... x 1 or x 2): relative deviance change below BETA_TOL (not on the
    first step), or a NaN test, which gives up on the gene (iters = MAXIT). Updates dev_old
    and iters in place; returns the genes still active."""
    with np.errstate(invalid="ignore"):
        dev = -2 * (const[act] + _nb_mu_part(y, mu, alpha))
        conv_test = np.abs(dev - dev_old[act]) / (np.abs(dev) + 0.1)
    nan = np.isnan(conv_test)
    iters[act[nan]] = MAXIT
    dev_old[act] = dev
    done = nan | ((conv_test < BETA_TOL) if t > 0 else False)
    return act[~done]


def ls_start(y: np.ndarray, sf: np.ndarray, grp=None):
    """DESeq2's IRLS start: the least-squares fit of log(normalised counts + 0.1), closed
    form in the patient-blocked designs (per group the mean within-patient difference).
    Returns (beta genes x G, gam genes x P), natural log."""
    logn = np.log(y / sf + 0.1)
    diff = logn[..., 1] - logn[..., 0]
    beta = _gsum(diff, grp) / (diff.shape[1] if grp is None else grp.sum(axis=0))
    gam = 0.5 * (logn[..., 0] + logn[..., 1] - _gexp(beta, grp))
    return beta, gam


def _irls(y: np.ndarray, sf: np.ndarray, alpha: np.ndarray, grp=None, keep_mu: bool = True):
    """DESeq2's IRLS (fitBeta) for one gene block. y: genes x P x 2, sf: P x 2; grp: P x G
    one-hot patient groups with one alt coefficient each (None: one group).

    Returns a dict on the natural-log scale: ``beta`` (alt coefficients, genes x G), ``gam``
    (patient effects, genes x P), ``mu`` (unclamped, from the last coefficients; left out
    with ``keep_mu`` False, as the final fit needs none: 320 MB at 2,000 samples), ``cov``
    (ridge sandwich of the alt coefficients, genes x G x G) and ``iters``. DESeq2 starts
    from the least-squares fit (ls_start; optim starts from it again). As fitBeta, a gene stops at the first step where a
    coefficient of R's coding (intercept = first patient, the other patients' differences to
    it, the alt coefficients) passes |30|, or where the deviance test is NaN, keeping that
    step's coefficients, with iters = MAXIT: those genes, and the ones not converged after
    MAXIT steps, are for optim (prepost.de.nb.optim)."""
    g = y.shape[0]
    beta, gam = ls_start(y, sf, grp)
    offs = np.array([0.0, 1.0])
    mu = np.maximum(sf * np.exp(gam[..., None] + _gexp(beta, grp)[..., None] * offs), MINMU)
    const = _nb_const(y, alpha)
    dev_old = np.zeros(g)
    iters = np.zeros(g, dtype=int)
    active = np.arange(g)
    logsf = np.log(sf)
    for t in range(MAXIT):
        ya, mua, al = y[active], mu[active], alpha[active]
        w = mua / (1 + al[:, None, None] * mua)
        z = np.log(mua) - logsf + (ya - mua) / mua
        rp = np.sum(w * z, axis=2)
        rb = _gsum(w[..., 1] * z[..., 1], grp)
        ga, ba = _ridged_solve(w, rp, rb, LAMBDA, grp)
        bp = _gexp(ba, grp)
        iters[active] += 1
        beta[active], gam[active] = ba, ga
        big = (
            np.any(np.abs(ba) > LARGE, axis=1)
            | (np.abs(ga[:, 0]) > LARGE)
            | np.any(np.abs(ga - ga[:, :1]) > LARGE, axis=1)
        )
        iters[active[big]] = MAXIT  # fitBeta gives up on the gene: optim's
        keep = ~big
        act, ga, bp, ya, al = active[keep], ga[keep], bp[keep], ya[keep], al[keep]
        with np.errstate(over="ignore"):
            mua = np.maximum(sf * np.exp(ga[..., None] + bp[..., None] * offs), MINMU)
        mu[act] = mua
        active = deviance_step(const, ya, mua, al, dev_old, act, iters, t)
        if active.size == 0:
            break
    # covariance of the alt coefficients: the ridge sandwich at the final (clamped) mu
    cov = _ridged_alt_cov(mu / (1 + alpha[:, None, None] * mu), LAMBDA, grp)
    out = {"beta": beta, "gam": gam, "cov": cov, "iters": iters}
    if keep_mu:
        with np.errstate(over="ignore"):
            out["mu"] = sf * np.exp(gam[..., None] + _gexp(beta, grp)[..., None] * offs)
    return out
