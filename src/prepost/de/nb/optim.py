"""DESeq2's fitNbinomGLMsOptim: the L-BFGS-B refit of the genes its IRLS gives up on.

DESeq2's fitBeta stops a gene as soon as one coefficient of R's coding passes |30| (natural
log) or the deviance test turns NaN, and marks it unconverged, as it does a gene that is still
moving after 100 iterations. fitNbinomGLMs then refits every such gene with R's optim
(method "L-BFGS-B") on the log2 coefficients of R's model matrix: the NB log likelihood plus a
N(0, 1/lambda) log prior (lambda 1e-6), bounds +-30, started from the IRLS coefficients when
they are finite and inside the bounds and otherwise from the least-squares start *on the
natural-log scale* (DESeq2 passes it unconverted). Its mu (unclamped) and its coefficients
replace the IRLS ones, in the gene-wise dispersion stage (whose mu the MAP stage reuses) and
in the final Wald fit; the standard errors are the ridge sandwich at the optim solution.

Real cohorts need it: a gene counted in the tens of thousands in two liver-metastasis biopsies
and zero in every other patient drives those patients' coefficients towards -inf, so IRLS
stops, and keeping the diverging IRLS state instead (prepost up to 2026-12) gave such genes
standard errors near 1e-4 and Wald statistics in the thousands.

optim's settings as R's defaults: limited memory 5, factr 1e7 (stop when the relative decrease
of the objective falls below 1e7 * machine epsilon), pgtol 0 (no gradient test), maxit 100,
and its numerical gradient: central differences with step 1e-3, shortened on a side that would
cross a bound. scipy's L-BFGS-B (v3.0) and R's (v2.3) take slightly different steps, so on a
flat objective (a coefficient still drifting when factr stops it) the two stop at slightly
different points; tests/test_nb_real.py measures how far apart that leaves the results.

scipy's L-BFGS-B makes thousands of tiny BLAS calls per gene; with OpenBLAS's threads they
cost milliseconds each (measured: 25 s instead of 0.5 s for 33 genes), so ``one_blas_thread``
holds BLAS to one thread while the refits run.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from threadpoolctl import threadpool_limits

from prepost.de.nb.constants import LAMBDA, MINMU

LARGE = 30.0  # DESeq2's bound on a coefficient, natural log in fitBeta, log2 in optim
PRIOR_LAMBDA = 1e-6  # the ridge on the log2 scale, as a N(0, 1e6) prior in optim's objective
NDEPS = 1e-3  # optim's default step of the numerical gradient


def one_blas_thread():
    """Context manager: BLAS libraries limited to one thread (for the optim refits)."""
    return threadpool_limits(limits=1, user_api="blas")


def _sample_ll(k, nf, size, const, eta):
    """Per-sample NB log density at log2 linear predictors ``eta`` (same shape as k)."""
    mu = nf * np.exp2(np.clip(eta, -1074.0, 1023.0))  # a positive finite double
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return const - size * np.log1p(mu / size) + k * (np.log(mu) - np.log(size + mu))


def _prior(par):
    return np.sum(-0.5 * np.log(2 * np.pi / PRIOR_LAMBDA) - 0.5 * PRIOR_LAMBDA * par**2)


class _Objective:
    """DESeq2's optim objective for one gene, its value and optim's numerical gradient
    (central differences of step NDEPS, each side cut at its bound as R's fmingr) in one call.

    A coefficient's perturbation moves the linear predictor only of the samples where its
    model-matrix column is non-zero, so each difference f(par + h e_j) - f(par - h e_j) is
    summed over those samples alone (the same difference, computed without the cancellation
    of two full sums): O(non-zeros of X) instead of O(samples x coefficients)."""

    def __init__(self, k, nf, alpha, x):
        self.x = x
        self.size = 1.0 / float(alpha)
        const = special.gammaln(k + self.size) - special.gammaln(self.size) - special.gammaln(k + 1)
        rows, self.cols = np.nonzero(x)
        self.rows, self.vals, self.n = rows, x[rows, self.cols], len(k)
        # value and both sides of every perturbation are evaluated as one array
        every = np.concatenate([np.arange(len(k)), rows, rows])
        self.k, self.nf, self.const = k[every], nf[every], const[every]

    def __call__(self, par):
        eta = self.x @ par
        up = np.minimum(par + NDEPS, LARGE) - par
        lo = par - np.maximum(par - NDEPS, -LARGE)
        c, v, er = self.cols, self.vals, eta[self.rows]
        ll = _sample_ll(
            self.k, self.nf, self.size, self.const,
            np.concatenate([eta, er + up[c] * v, er - lo[c] * v]),
        )
        n, nnz = self.n, c.size
        val = -(np.sum(ll[:n]) + _prior(par))
        if not np.isfinite(val):
            return 1e300, np.zeros_like(par)
        dll = np.bincount(c, weights=ll[n : n + nnz] - ll[n + nnz :], minlength=par.size)
        dprior = -0.5 * PRIOR_LAMBDA * ((par + up) ** 2 - (par - lo) ** 2)
        grad = -(dll + dprior) / (up + lo)
        return float(val), np.where(np.isfinite(grad), grad, 0.0)


def optim_fit(k, nf, alpha, x, start):
    """L-BFGS-B fit of one gene as DESeq2's optim. k: counts (n), nf: size factors (n),
    alpha: dispersion, x: R's model matrix (n x p), start: log2 coefficients (p).
    Returns (log2 coefficients, mu unclamped, natural-log covariance (ridge sandwich at mu
    clamped to 0.5), converged)."""
    from scipy import optimize  # here: only the few optim genes need it (0.3 s of each job)

    k = np.asarray(k, float)
    start = np.clip(np.asarray(start, float), -LARGE, LARGE)
    res = optimize.minimize(
        _Objective(k, nf, alpha, x),
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LARGE, LARGE)] * start.size,
        options={"ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0, "maxiter": 100, "maxcor": 5},
    )
    par = res.x
    mu = nf * np.exp2(x @ par)
    mc = np.maximum(mu, MINMU)
    xtwx = x.T @ (x / (1.0 / mc + alpha)[:, None])
    inv = np.linalg.inv(xtwx + np.eye(par.size) * LAMBDA)
    sigma = inv @ xtwx @ inv
    return par, mu, sigma, bool(res.status == 0)


def optim_start(beta_nat: np.ndarray, start_nat: np.ndarray, stable: bool) -> np.ndarray:
    """DESeq2's start for optim: the IRLS coefficients on the log2 scale when they are all
    finite and inside +-30 there, else the least-squares start unconverted (natural log)."""
    b2 = beta_nat / np.log(2)
    if stable and np.all(np.isfinite(b2)) and np.all(np.abs(b2) < LARGE):
        return b2
    return start_nat
