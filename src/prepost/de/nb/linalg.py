"""Block linear algebra of the designs prepost.de.nb fits, vectorised over genes.

A design is passed as ``grp``, one of:

- ``None``: ~ patient + timepoint with X = [patient indicators | alt]; X'WX is an arrow matrix
  (diagonal patient block, one dense row/column). y, mu, w are genes x P x 2 (ref, alt).
- a P x G one-hot array of patient groups: ~ patient + alt:group; X'WX is block-diagonal, one
  arrow block per group (its patients and its alt coefficient).
- ``Cells(onehot)``: the cell-means design of an unpaired group comparison; X'WX is diagonal.
  y, mu, w are genes x n x 1.
- ``INTERCEPT``: the intercept-only design ~ 1 (the VST's blind fit); X'WX = sum of the
  weights. y, mu, w are genes x n x 1.

``_chunked`` runs a per-gene function on gene blocks (memory, threads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _gsum(x: np.ndarray, grp) -> np.ndarray:
    """Per-group sums over patients (axis 1): genes x G. grp: P x G one-hot or None (G = 1)."""
    return x.sum(axis=1)[:, None] if grp is None else x @ grp


def _gexp(v: np.ndarray, grp) -> np.ndarray:
    """Per-group values (genes x G) expanded to patients (genes x P)."""
    return v if grp is None else v @ grp.T


def _arrow(w: np.ndarray, ridge: float = 0.0, grp=None):
    """Blocks of X'WX (+ ridge I): diagonal D (genes x P), column b (= w_alt), corners c
    (genes x G: one alt coefficient per patient group; X'WX is block-diagonal over groups)."""
    d = w[..., 0] + w[..., 1] + ridge
    b = w[..., 1]
    c = _gsum(b, grp) + ridge
    return d, b, c


def _ridged_solve(w: np.ndarray, rp: np.ndarray, rb: np.ndarray, ridge: float, grp=None):
    """Solve (X'WX + ridge T'T) [gam; beta] = [rp; rb] for the patient-blocked designs, with
    DESeq2's ridge: ``ridge`` on each coefficient of R's coding (intercept = first patient,
    patients 2..P as differences to it, the alt coefficients), which in the patient-indicator
    basis is ridge * T'T (T'T: P on the first patient, 1 on the others and the alt
    coefficients, -1 between the first patient and each other one). With hundreds of
    patients the coding's ridge moves a small log2 fold change by 1e-4 of itself, so it is
    kept exact. The matrix is an arrow with hubs (first patient, one alt coefficient per
    group): Schur complement on the diagonal patients 2..P, a (1 + G) x (1 + G) solve per
    gene. w: genes x P x 2; rp: genes x P; rb: genes x G. Returns (gam, beta)."""
    n_pat = w.shape[1]
    onehot = np.ones((n_pat, 1)) if grp is None else grp
    n_grp = onehot.shape[1]
    b = w[..., 1]
    d = w[..., 0] + b + ridge
    d[:, 0] += ridge * (n_pat - 1)
    c = b @ onehot + ridge
    dk, bk, ok = d[:, 1:], b[:, 1:], onehot[1:]
    m = np.zeros((w.shape[0], 1 + n_grp, 1 + n_grp))
    m[:, 0, 0] = d[:, 0] - ridge**2 * np.sum(1 / dk, axis=1)
    cross = b[:, :1] * onehot[0][None, :] + ridge * ((bk / dk) @ ok)
    m[:, 0, 1:] = cross
    m[:, 1:, 0] = cross
    idx = np.arange(n_grp)
    m[:, 1 + idx, 1 + idx] = c - (bk * bk / dk) @ ok
    rhs = np.concatenate(
        [(rp[:, 0] + ridge * np.sum(rp[:, 1:] / dk, axis=1))[:, None], rb - (bk * rp[:, 1:] / dk) @ ok],
        axis=1,
    )
    if n_grp == 1:  # 2 x 2: closed form (np.linalg.solve's per-matrix overhead dominates)
        det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] ** 2
        x = np.stack(
            [
                (m[:, 1, 1] * rhs[:, 0] - m[:, 0, 1] * rhs[:, 1]) / det,
                (m[:, 0, 0] * rhs[:, 1] - m[:, 0, 1] * rhs[:, 0]) / det,
            ],
            axis=1,
        )
    else:
        x = np.linalg.solve(m, rhs[..., None])[..., 0]
    g0, beta = x[:, :1], x[:, 1:]
    gk = (rp[:, 1:] + ridge * g0 - bk * (beta @ ok.T)) / dk
    return np.concatenate([g0, gk], axis=1), beta


def _ridged_alt_cov(w: np.ndarray, ridge: float, grp=None) -> np.ndarray:
    """Covariance of the alt coefficients, (A^-1 B A^-1)[alt, alt] with B = X'WX and
    A = B + ridge T'T (DESeq2's ridge sandwich; the alt coefficients are the same in both
    bases): genes x G x G."""
    n_pat = w.shape[1]
    onehot = np.ones((n_pat, 1)) if grp is None else grp
    n_grp = onehot.shape[1]
    zero = np.zeros(w.shape[:2])
    cols = []
    for k in range(n_grp):  # one solve per alt coefficient (G <= 2)
        e = np.zeros((w.shape[0], n_grp))
        e[:, k] = 1.0
        cols.append(_ridged_solve(w, zero, e, ridge, grp))
    b = w[..., 1]
    dd = w[..., 0] + b
    cov = np.empty((w.shape[0], n_grp, n_grp))
    for i, (gi, bi) in enumerate(cols):
        for j, (gj, bj) in enumerate(cols):
            cov[:, i, j] = (
                np.sum(dd * gi * gj, axis=1)
                + np.sum(b * (gi * (bj @ onehot.T) + gj * (bi @ onehot.T)), axis=1)
                + np.sum((b @ onehot) * bi * bj, axis=1)
            )
    return cov


class _Cells:
    """Marks the cell-means design of an unpaired group comparison (X = one-hot of the sample
    groups, n x K): X'WX is diagonal, one sum of weights per group. y, mu, w are then
    genes x n x 1 so the likelihood sums of the paired code apply unchanged."""

    def __init__(self, onehot: np.ndarray):
        self.onehot = onehot


class Intercept:
    """Marks the intercept-only design ~ 1 (X = a column of ones): X'WX = sum of the weights.
    y, mu, w are genes x n x 1, as for _Cells."""


INTERCEPT = Intercept()


def _logdet(w: np.ndarray, grp=None) -> np.ndarray:
    """log det(X'WX) for each gene."""
    if isinstance(grp, Intercept):
        return np.log(np.sum(w, axis=(1, 2)))
    if isinstance(grp, _Cells):
        return np.sum(np.log(w[..., 0] @ grp.onehot), axis=1)
    d, b, c = _arrow(w, grp=grp)
    return np.sum(np.log(d), axis=1) + np.sum(np.log(c - _gsum(b * b / d, grp)), axis=1)


def _logdet_and_trace(w: np.ndarray, dw: np.ndarray, grp=None):
    """log det(X'WX) and tr((X'WX)^-1 X'dW X) for each gene (Schur complement on the corners)."""
    if isinstance(grp, Intercept):
        sw = np.sum(w, axis=(1, 2))
        return np.log(sw), np.sum(dw, axis=(1, 2)) / sw
    if isinstance(grp, _Cells):
        sw = w[..., 0] @ grp.onehot
        return np.sum(np.log(sw), axis=1), np.sum((dw[..., 0] @ grp.onehot) / sw, axis=1)
    d, b, c = _arrow(w, grp=grp)
    dd, db, dc = _arrow(dw, grp=grp)
    q = b / d
    s = c - _gsum(b * q, grp)
    logdet = np.sum(np.log(d), axis=1) + np.sum(np.log(s), axis=1)
    tr = np.sum(dd / d, axis=1) + np.sum(
        (_gsum(q * q * dd, grp) - 2 * _gsum(q * db, grp) + dc) / s, axis=1
    )
    return logdet, tr


def _chunked(
    fn, n_cpus: int, n: int, *arrays, block_elems: int = 500_000, per_gene=None,
    heavy_last: bool = False, blocks_by_cpus: bool = True,
):
    """Run fn on gene blocks and concatenate: blocks of about `block_elems` values (per-gene
    size of the largest gene-first array) keep the temporaries small (peak memory) and run on
    `n_cpus` threads (numpy's ufuncs release the GIL, so the threads use both cores). fn
    returns an array, a tuple or a dict of arrays with genes first; each block's result is
    copied into the output as it arrives, so the blocks and the whole are not all held at
    once (at 2,000 samples one genes x samples array is 320 MB). ``per_gene``: the per-gene
    size to block by, for a fn that gathers its gene-first arrays itself (from gene indices).
    ``heavy_last``: the blocks cost more the later they are (genes sorted by work), so they
    are started last first, for the threads to finish together (the output is the same).
    ``blocks_by_cpus`` False: the blocks depend on the sizes only, never on ``n_cpus`` (for
    a fn whose per-gene results depend on the block's other genes in rounding)."""
    if per_gene is None:
        per_gene = max(
            (a[0].size for a in arrays if isinstance(a, np.ndarray) and a.ndim >= 2 and len(a) == n),
            default=1,
        )
    by_size = int(np.ceil(n * per_gene / block_elems))
    n_blocks = max(1, min(n, max(int(n_cpus), by_size) if blocks_by_cpus else by_size))
    edges = np.linspace(0, n, n_blocks + 1).astype(int)

    def run(k):
        lo, hi = edges[k], edges[k + 1]
        return fn(
            *(
                a[lo:hi] if isinstance(a, np.ndarray) and a.ndim and a.shape[0] == n else a
                for a in arrays
            )
        )

    ks = range(n_blocks)[::-1] if heavy_last else range(n_blocks)
    if int(n_cpus) > 1 and n_blocks > 1:
        pool = ThreadPoolExecutor(min(int(n_cpus), n_blocks))
        results = pool.map(run, ks)
    else:
        pool, results = None, map(run, ks)
    try:
        out = kind = None
        for k, res in zip(ks, results):
            kind = type(res)
            parts = res if kind is dict else dict(enumerate(res if kind is tuple else (res,)))
            if out is None:
                out = {
                    key: np.empty((n,) + np.shape(v)[1:], np.asarray(v).dtype)
                    for key, v in parts.items()
                }
            for key, v in parts.items():
                v = np.asarray(v)
                if v.dtype != out[key].dtype:  # as np.concatenate: the common type
                    out[key] = out[key].astype(np.result_type(out[key], v))
                out[key][edges[k] : edges[k + 1]] = v
            del res, parts
    finally:
        if pool is not None:
            pool.shutdown()
    if kind is dict:
        return out
    if kind is tuple:
        return tuple(out[k] for k in range(len(out)))
    return out[0]
