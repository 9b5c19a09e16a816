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
    # -l1p / a + y * (log(am) - l1p), in place (the same operations, bit for bit)
    np.log(am, out=am)
    am -= l1p
    am *= y
    np.divide(l1p, a, out=l1p)
    am -= l1p
    return np.sum(am, axis=(1, 2))


def _mu_of(gam: np.ndarray, bp: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """sf * exp(gam + bp * (0, 1)) (genes x P x 2; bp: genes x 1 or genes x P), the values of
    the broadcast expression written into one buffer (its length-2 inner loops cost 3x)."""
    eta = np.empty(gam.shape + (2,))
    np.add(gam, bp * 0.0, out=eta[..., 0])
    np.add(gam, bp * 1.0, out=eta[..., 1])
    np.exp(eta, out=eta)
    eta *= sf
    return eta


def deviance_step(const, y, mu, alpha, dev_old, act, iters, t):
    """fitBeta's convergence test for the genes ``act`` after an IRLS step to (clamped) ``mu``
    (y, mu: genes x ... x 1 or x 2): relative deviance change below BETA_TOL (not on the
    first step), or a NaN test, which gives up on the gene (iters = MAXIT). Updates dev_old
    and iters in place; returns the genes still active."""
    return act[~_deviance_done(const, y, mu, alpha, dev_old, act, iters, t)]


def _deviance_done(const, y, mu, alpha, dev_old, act, iters, t):
    """deviance_step's test; returns which of ``act`` stop (bool per gene of ``act``)."""
    with np.errstate(invalid="ignore"):
        dev = -2 * (const[act] + _nb_mu_part(y, mu, alpha))
        conv_test = np.abs(dev - dev_old[act]) / (np.abs(dev) + 0.1)
    nan = np.isnan(conv_test)
    iters[act[nan]] = MAXIT
    dev_old[act] = dev
    return nan | ((conv_test < BETA_TOL) if t > 0 else False)


def ls_start(y: np.ndarray, sf: np.ndarray, grp=None):
    """DESeq2's IRLS start: the least-squares fit of log(normalised counts + 0.1), closed
    form in the patient-blocked designs (per group the mean within-patient difference).
    Returns (beta genes x G, gam genes x P), natural log."""
    logn = np.log(y / sf + 0.1)
    diff = logn[..., 1] - logn[..., 0]
    beta = _gsum(diff, grp) / (diff.shape[1] if grp is None else grp.sum(axis=0))
    gam = 0.5 * (logn[..., 0] + logn[..., 1] - _gexp(beta, grp))
    return beta, gam


def _irls(
    y: np.ndarray, sf: np.ndarray, alpha: np.ndarray, grp=None, keep_mu: bool = True, const=None
):
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
    MAXIT steps, are for optim (prepost.de.nb.optim). ``const``: the genes' _nb_const when
    already known (from count levels: prepost.de.nb.dispersion.CountLevels)."""
    g = y.shape[0]
    beta, gam = ls_start(y, sf, grp)
    mu = np.maximum(_mu_of(gam, _gexp(beta, grp), sf), MINMU)
    if const is None:
        const = _nb_const(y, alpha)
    dev_old = np.zeros(g)
    iters = np.zeros(g, dtype=int)
    active = np.arange(g)
    logsf = np.log(sf)
    # the active genes' counts, clamped mu and dispersions, compacted only when genes stop
    # (the same values as y[active], mu[active], alpha[active])
    ya, mua, al = y, mu, alpha
    for t in range(MAXIT):
        # w = mua / (1 + al mua), z = log(mua) - log(sf) + (ya - mua) / mua, in place
        w = np.multiply(al[:, None, None], mua)
        w += 1
        np.divide(mua, w, out=w)
        z = np.log(mua)
        z -= logsf
        tmp = np.subtract(ya, mua)
        tmp /= mua
        z += tmp
        np.multiply(w, z, out=tmp)
        rp = tmp[..., 0] + tmp[..., 1]  # = np.sum(axis=2), whose length-2 reductions cost 40x
        rb = _gsum(w[..., 1] * z[..., 1], grp)
        del tmp, z
        ga, ba = _ridged_solve(w, rp, rb, LAMBDA, grp)
        del w
        bp = _gexp(ba, grp)
        iters[active] += 1
        beta[active], gam[active] = ba, ga
        big = (
            np.any(np.abs(ba) > LARGE, axis=1)
            | (np.abs(ga[:, 0]) > LARGE)
            | np.any(np.abs(ga - ga[:, :1]) > LARGE, axis=1)
        )
        act = active
        if big.any():
            iters[active[big]] = MAXIT  # fitBeta gives up on the gene: optim's
            keep = ~big
            act, ga, bp, ya, al = active[keep], ga[keep], bp[keep], ya[keep], al[keep]
        with np.errstate(over="ignore"):
            mua = _mu_of(ga, bp, sf)
        np.maximum(mua, MINMU, out=mua)
        mu[act] = mua
        done = _deviance_done(const, ya, mua, al, dev_old, act, iters, t)
        active = act
        if done.any():
            go = ~done
            active, ya, mua, al = act[go], ya[go], mua[go], al[go]
        if active.size == 0:
            break
    # covariance of the alt coefficients: the ridge sandwich at the final (clamped) mu
    cov = _ridged_alt_cov(mu / (1 + alpha[:, None, None] * mu), LAMBDA, grp)
    out = {"beta": beta, "gam": gam, "cov": cov, "iters": iters}
    if keep_mu:
        with np.errstate(over="ignore"):
            out["mu"] = _mu_of(gam, _gexp(beta, grp), sf)
    return out
