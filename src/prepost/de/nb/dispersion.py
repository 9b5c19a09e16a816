"""Dispersion estimation as DESeq2 1.38, vectorised over genes, for any design of
prepost.de.nb.linalg (``grp``: patient-blocked arrow, Cells, INTERCEPT).

Cox-Reid adjusted profile log posterior of log(alpha) and its derivative; DESeq2's fitDisp
backtracking line search (kappa_0 1, tol 1e-6, maxit 100) with its fitDispGrid fallback;
the moment/rough starting values; estimateDispersionsGeneEst's finishing (no likelihood
increase keeps the start, non-converged genes go to the grid, clamp); estimateDispersionsMAP.

DESeq2 evaluates the Cox-Reid term as log(det(X'WX)) of the determinant itself, which leaves
double range once a paired design has many patients: the determinant is a product of one
factor per patient. With ~100 patients this happens when a line-search step proposes a huge
dispersion (the search stalls and falls back to the coarse grid, moving DESeq2's dispersions by
up to ~7% at 200 samples; on the stress simulation, tools/nb_stress.py, 552 of 1,000 genes'
Wald statistics move by more than 1e-4 and up to 43%); with 300 patients the determinant
overflows already at the starting dispersion of most genes, the log posterior is -Inf/+Inf
across the grid and the estimate lands on the grid point where it first underflows (measured
at 600 samples: 17,556 of 20,000 genes at the same dispersion, 27.2). So the rule here
(``deseq2_det_range``): a gene whose determinant is in double range at its starting
dispersion gets DESeq2's arithmetic, out-of-range proposals included, and so DESeq2's
estimate; a gene whose determinant is already out of range there, where DESeq2's estimate is
an artefact of the grid, gets the exact log-determinant (a sum of logs). The fits record how
many genes took the exact path (``genes_exact_cox_reid`` of the fit info).
EMULATE_DET_RANGE is the default for callers that pass no per-gene choice (False: exact).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special

from prepost.de.nb.constants import DISP_TOL, KAPPA_0, MAXIT, MIN_DISP
from prepost.de.nb.linalg import _chunked, _logdet, _logdet_and_trace


_LOG_DBL_TINY = np.log(np.finfo(float).smallest_subnormal)  # det below this is 0 in double
_LOG_DBL_MAX = np.log(np.finfo(float).max)
EMULATE_DET_RANGE = False  # True: DESeq2's log(det) of a determinant outside double range


def deseq2_det_range(y, mu, alpha, grp) -> np.ndarray:
    """Per gene: True where log det(X'WX) at dispersion ``alpha`` is inside double range, so
    DESeq2's own arithmetic is followed (see the module docstring)."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        logdet = _logdet(1 / (1 / mu + alpha[:, None, None]), grp)
    return (logdet >= _LOG_DBL_TINY) & (logdet <= _LOG_DBL_MAX)


_BIG_SIZE = 1e6  # 1/alpha above which the plain lgamma difference loses > 1e-9 per sample


def _lgamma_ratio(y, size):
    """log Gamma(y + size) - log Gamma(size). The plain difference loses everything once
    size = 1/alpha is huge (at DESeq2's bound log alpha = -30, 1/alpha = 1e13, its rounding
    error summed over 200 samples is ~1, more than the line search's acceptance margin, so
    whether a step was accepted was decided by 1e-15 changes of mu; measured on the 200-sample
    benchmark): there it is log Gamma(y) - log B(y, size), exact. DESeq2 computes the plain
    difference, so its own acceptance there is rounding noise. betaln costs 5x gammaln, so it
    is used only on the genes with size > 1e6 (alpha < 1e-6)."""
    out = np.add(y, size)
    special.gammaln(out, out=out)
    out -= special.gammaln(size)
    big = size[:, 0, 0] > _BIG_SIZE
    if big.any():
        yb, sb = y[big], np.broadcast_to(size[big], y[big].shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact = special.gammaln(yb) - special.betaln(yb, sb)
        out[big] = np.where(yb > 0, exact, 0.0)
    return out


# Coefficients of the Stirling series of cephes' lgam (x >= 13) and of its psi (x > 10), the
# code scipy.special.gammaln and digamma run there.
_LS2PI = 0.91893853320467274178
_LGAM_A = (
    8.11614167470508450300e-4, -5.95061904284301438324e-4, 7.93650340457716943945e-4,
    -2.77777777300996872050e-3, 8.33333333333331927722e-2,
)
_PSI_A = (
    8.33333333333333333333e-2, -2.10927960927960927961e-2, 7.57575757575757575758e-3,
    -4.16666666666666666667e-3, 3.96825396825396825397e-3, -8.33333333333333333333e-3,
    8.33333333333333333333e-2,
)


def _series(coef: tuple, t: np.ndarray) -> np.ndarray:
    """The polynomial coef[0] t^n + ... + coef[-1] by Horner's rule, in cephes' order of
    operations (so the series below round as cephes' do)."""
    c = coef[0] * t
    for k in coef[1:-1]:
        c += k
        c *= t
    c += coef[-1]
    return c


def _gammaln(x: np.ndarray) -> np.ndarray:
    """scipy.special.gammaln(x) for x > 0, ~3x faster: cephes' Stirling series for x >= 13
    written as numpy array operations (on 2e6 random x in [13, 1e14]: equal to scipy's value
    or 1 ulp away, the log's rounding), scipy itself below 13. cephes adds the series only up
    to x = 1e8 and a shorter one from x = 1000; beyond 1000 the terms it leaves out are below
    half an ulp of the result (measured: bit-equal there)."""
    out = np.log(x)
    t = x - 0.5
    out *= t
    out -= x
    out += _LS2PI
    np.multiply(x, x, out=t)
    np.divide(1.0, t, out=t)
    c = _series(_LGAM_A, t)
    c /= x
    out += c
    small = ~(x >= 13.0)
    if small.any():
        out[small] = special.gammaln(x[small])
    return out


def _digamma(x: np.ndarray) -> np.ndarray:
    """scipy.special.digamma(x) for x > 0, ~2x faster: cephes' asymptotic series for x > 10
    as numpy array operations (bit-equal to scipy on 1.5e6 random x in (10, 1e14)), scipy
    itself at x <= 10."""
    z = np.multiply(x, x)
    np.divide(1.0, z, out=z)
    c = _series(_PSI_A, z)
    c *= z
    out = np.log(x)
    np.divide(0.5, x, out=z)
    out -= z
    out -= c
    small = ~(x > 10.0)
    if small.any():
        out[small] = special.digamma(x[small])
    return out


class CountLevels:
    """Each gene's distinct counts and their multiplicities, for the sums over samples of
    terms that depend on a count and the gene's dispersion only (log Gamma(y + 1/alpha),
    digamma(y + 1/alpha), log Gamma(y + 1)): evaluated once per distinct count instead of
    once per sample. These special functions cost ~14 ns a value against ~1 ns for a log, and
    were ~60% of the dispersion line searches; a gene of the 2,000-sample benchmark has 627
    distinct counts on average (200 samples: 135). Stored ragged (``vals``, ``wts``, one run
    of ``n_lev`` entries per gene from ``offsets``); ``order`` sorts the genes by their number
    of distinct counts, so gene blocks taken in that order are padded little (``block``)."""

    def __init__(self, y: np.ndarray, n_cpus: int = 1, block_elems: int = 2_000_000):
        g = y.shape[0]
        flat = y.reshape(g, -1)
        n_blocks = max(1, min(g, int(np.ceil(flat.size / block_elems))))
        edges = np.linspace(0, g, n_blocks + 1).astype(int)

        def run(k):
            srt = np.sort(flat[edges[k] : edges[k + 1]], axis=1)
            new = np.empty(srt.shape, dtype=bool)
            new[:, 0] = True
            np.not_equal(srt[:, 1:], srt[:, :-1], out=new[:, 1:])
            starts = np.flatnonzero(new)
            wts = np.diff(np.append(starts, srt.size)).astype(np.int32)
            return srt.reshape(-1)[starts].astype(float), wts, new.sum(axis=1)

        if n_cpus > 1 and n_blocks > 1:
            with ThreadPoolExecutor(min(int(n_cpus), n_blocks)) as pool:
                parts = list(pool.map(run, range(n_blocks)))
        else:
            parts = [run(k) for k in range(n_blocks)]
        # compact storage (75 MB instead of 150 at 2,000 samples x 20,000 genes): counts as
        # float32 while they are exact there (< 2^24), multiplicities as uint16 (< 65,536)
        top = max((float(p[0].max()) for p in parts if p[0].size), default=0.0)
        vtype = np.float32 if top < 2.0**24 else np.float64
        wtype = np.uint16 if flat.shape[1] < 2**16 else np.int32
        self.vals = np.concatenate([p[0].astype(vtype) for p in parts])
        self.wts = np.concatenate([p[1].astype(wtype) for p in parts])
        self.n_lev = np.concatenate([p[2] for p in parts])
        self.offsets = np.concatenate([[0], np.cumsum(self.n_lev)[:-1]])
        self.order = np.argsort(self.n_lev, kind="stable")
        self.per_gene = flat.shape[1]

    def block(self, idx: np.ndarray):
        """(values, weights, sums of the counts) of the genes ``idx``: values and weights
        genes x (their largest number of levels), padded with count 0 and weight 0."""
        n_lev = self.n_lev[idx]
        cols = np.arange(n_lev.max() if n_lev.size else 0)
        mask = cols < n_lev[:, None]
        pos = np.where(mask, self.offsets[idx][:, None] + cols, 0)
        vals = self.vals[pos].astype(float)
        vals[~mask] = 0.0
        wts = self.wts[pos].astype(float)
        wts[~mask] = 0.0
        return vals, wts, np.sum(vals * wts, axis=1)  # and the sum of the counts, exact

    def run(self, fn, n_cpus: int, genes: np.ndarray, *arrays):
        """fn(gene indices, *arrays' values of those genes) on blocks of ``genes`` taken in
        level order (threads as prepost.de.nb.linalg._chunked); results in ``genes``' order.
        ``arrays``: per gene of the whole fit (indexed by gene). A level sum depends in
        rounding on the block's padded width (numpy's pairwise summation), so the blocks are
        set by the sizes alone: the results do not depend on ``n_cpus``."""
        pick = self.order[np.isin(self.order, genes)] if len(genes) < len(self.order) else self.order
        res = _chunked(
            fn, n_cpus, len(pick), pick, *(a[pick] for a in arrays), per_gene=self.per_gene,
            heavy_last=True, blocks_by_cpus=False,
        )
        pos = np.searchsorted(genes, pick) if len(genes) < len(self.order) else pick
        if isinstance(res, tuple):
            out = tuple(np.empty_like(r) for r in res)
            for o, r in zip(out, res):
                o[pos] = r
            return out
        out = np.empty_like(res)
        out[pos] = res
        return out


def _level_lgamma_ratio(lev, size, centred: bool = False):
    """Per gene: sum over samples of log Gamma(y + size) - log Gamma(size) (as _lgamma_ratio)
    from the count levels ``lev`` (values, weights: genes x K); size: genes. ``centred``:
    of that less y log(y + size)."""
    vals, wts = lev[:2]
    s = size[:, None]
    vs = vals + s
    out = _gammaln(vs)
    out -= special.gammaln(s)
    big = size > _BIG_SIZE
    if big.any():
        vb, sb = vals[big], np.broadcast_to(s[big], vals[big].shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact = special.gammaln(vb) - special.betaln(vb, sb)
        out[big] = np.where(vb > 0, exact, 0.0)
    if centred:
        np.log(vs, out=vs)
        vs *= vals
        out -= vs
    out *= wts
    return out.sum(axis=1)


def _level_digamma(lev, size):
    """Per gene: sum over samples of digamma(y + size) from the count levels."""
    vals, wts = lev[:2]
    out = _digamma(vals + size[:, None])
    out *= wts
    return out.sum(axis=1)


def _level_nb_const(lev, alpha):
    """Per gene: sum over samples of log Gamma(y + 1/alpha) - log Gamma(1/alpha)
    - log Gamma(y + 1) (prepost.de.nb.irls._nb_const) from the count levels."""
    vals, wts = lev[:2]
    size = 1 / alpha[:, None]
    out = _gammaln(vals + size)
    out -= special.gammaln(size)
    out -= _gammaln(vals + 1)
    out *= wts
    return out.sum(axis=1)


def _take(lev, idx):
    return None if lev is None else tuple(v[idx] for v in lev)


def _emulating(emulate, n):
    return np.full(n, EMULATE_DET_RANGE) if emulate is None else emulate


def _weights(mu, al):
    """DESeq2's GLM weights 1 / (1 / mu + alpha), computed in one buffer."""
    w = np.divide(1, mu)
    w += al
    return np.divide(1, w, out=w)


# _log_post and _dlog_post are the hot path of every fit (each gene's line searches evaluate
# them ~30 times over all samples): they reuse two buffers in place; the operations and
# their order are DESeq2's formula's, so the results are bit-for-bit those of the plain
# expressions.
def _log_post(a, y, mu, prior_mean, prior_var, use_prior, grp=None, emulate=None, lev=None):
    alpha = np.exp(a)
    al = alpha[:, None, None]
    inv = 1 / al
    logdet = _logdet(_weights(mu, al), grp)
    em = _emulating(emulate, len(a))
    if em.any():  # DESeq2: det of the product is 0 (cr term +Inf) or Inf (-Inf)
        clipped = np.where(
            logdet < _LOG_DBL_TINY, -np.inf, np.where(logdet > _LOG_DBL_MAX, np.inf, logdet)
        )
        logdet = np.where(em, clipped, logdet)
    if lev is None:  # lgamma ratio - y log(mu + 1/alpha) - (1/alpha) log1p(mu alpha)
        t = _lgamma_ratio(y, inv)
        b = np.add(mu, inv)
        np.log(b, out=b)
        b *= y
        t -= b
        np.multiply(mu, al, out=b)
        np.log1p(b, out=b)
        b *= inv
        t -= b
        ll = np.sum(t, axis=(1, 2))
    else:
        # the same, the lgamma ratio summed over the count levels. Each sum is of terms of
        # size ~ y log y (1e6 for a count of 1e5), so each level's ratio is summed less
        # v log(v + 1/alpha) and each sample's y log(mu + 1/alpha) becomes
        # y log1p((y - mu) / (mu + 1/alpha)): the two sums cancel term by term as the
        # per-sample formula does, and the line search's acceptance tests (differences of
        # 1e-12 near the optimum) see the same rounding noise as before (summed apart, the
        # MAP dispersions of the most highly expressed genes moved by up to 1e-3)
        t = np.subtract(y, mu)
        b = np.add(mu, inv)
        t /= b
        np.log1p(t, out=t)
        t *= y
        np.multiply(mu, al, out=b)
        np.log1p(b, out=b)
        b *= inv
        t -= b
        ll = np.sum(t, axis=(1, 2))
        ll += _level_lgamma_ratio(lev, inv[:, 0, 0], centred=True)
    out = ll - 0.5 * logdet
    if use_prior:
        out = out - 0.5 * (a - prior_mean) ** 2 / prior_var
    return out


def _dlog_post(a, y, mu, prior_mean, prior_var, use_prior, grp=None, emulate=None, lev=None):
    alpha = np.exp(a)
    al = alpha[:, None, None]
    inv = 1 / al
    w = _weights(mu, al)
    logdet, tr = _logdet_and_trace(w, -w * w, grp)
    del w
    em = _emulating(emulate, len(a))
    if em.any():  # DESeq2: det * tr / det with det 0 or Inf is NaN
        out_of_range = (logdet < _LOG_DBL_TINY) | (logdet > _LOG_DBL_MAX)
        tr = np.where(em & out_of_range, np.nan, tr)
    am = mu * al
    # digamma(1/a) + log1p(am) - am / (1 + am) - digamma(y + 1/a) + y / (mu + 1/a)
    if lev is None:
        t = np.log1p(am)
        t += special.digamma(inv)
        b = np.add(1, am)
        np.divide(am, b, out=b)
        t -= b
        np.add(y, inv, out=b)
        special.digamma(b, out=b)
        t -= b
        np.add(mu, inv, out=b)
        np.divide(y, b, out=b)
        t += b
        tsum = np.sum(t, axis=(1, 2))
    else:
        # the same as log1p(am) + alpha (y - mu) / (1 + am) + digamma(1/a), with the
        # digamma(y + 1/a) summed over the count levels
        t = np.log1p(am)
        tsum = np.sum(t, axis=(1, 2))
        am += 1
        np.subtract(y, mu, out=t)
        t /= am
        tsum += alpha * np.sum(t, axis=(1, 2))
        size = inv[:, 0, 0]
        tsum += y[0].size * special.digamma(size)
        tsum -= _level_digamma(lev, size)
    ll = (1 / alpha**2) * tsum
    out = (ll - 0.5 * tr) * alpha
    if use_prior:
        out = out - (a - prior_mean) / prior_var
    return out


def _fit_disp(
    y, mu, log_alpha, prior_mean, prior_var, use_prior, grp=None, emulate=None, lev=None
):
    """DESeq2's fitDisp (backtracking gradient ascent on log alpha), in lockstep over genes.
    emulate: per gene, DESeq2's determinant range (see the module docstring; None: the module
    default).

    Returns log_alpha, iterations, initial and last log posterior."""
    g = y.shape[0]
    pm = np.broadcast_to(np.asarray(prior_mean, float), (g,)).copy()
    pv = float(prior_var)
    em = _emulating(emulate, g)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _fit_disp_loop(y, mu, log_alpha, pm, pv, use_prior, grp, em, lev)


def _fit_disp_loop(y, mu, log_alpha, pm, pv, use_prior, grp, em, lev=None):
    g = y.shape[0]
    a = log_alpha.astype(float).copy()
    lp = _log_post(a, y, mu, pm, pv, use_prior, grp, em, lev)
    dlp = _dlog_post(a, y, mu, pm, pv, use_prior, grp, em, lev)
    initial_lp = lp.copy()
    kappa = np.full(g, KAPPA_0)
    iters = np.zeros(g, dtype=int)
    accepted = np.zeros(g, dtype=int)
    min_log_alpha = np.log(MIN_DISP / 10)
    active = np.arange(g)
    stuck = _stuck(dlp, lp)
    iters[stuck] = MAXIT
    active = active[~stuck]
    # the active genes' counts, mu, prior means, determinant rule and count levels, gathered
    # once and compacted only when genes leave (rejected steps keep a gene active), instead of
    # gathered from the whole block twice a step: the same values in the same layout, so the
    # same results bit for bit
    ya, ma, pma, ema, leva = y[active], mu[active], pm[active], em[active], _take(lev, active)
    for _ in range(MAXIT):
        if active.size == 0:
            break
        aa, dl, kk, ll = a[active], dlp[active], kappa[active], lp[active]
        iters[active] += 1
        prop = aa + kk * dl
        with np.errstate(divide="ignore", invalid="ignore"):
            kk = np.where(prop < -30.0, (-30.0 - aa) / dl, kk)
            kk = np.where(prop > 10.0, (10.0 - aa) / dl, kk)
        newa = aa + kk * dl
        lp_new = _log_post(newa, ya, ma, pma, pv, use_prior, grp, ema, leva)
        ok = -lp_new <= -ll - kk * 1e-4 * dl**2
        # rejected: halve the step
        kappa[active[~ok]] = kk[~ok] / 2
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
            sel = np.flatnonzero(ok)[cont]  # cidx's positions in active
            if sel.size == active.size:
                dlp[cidx] = _dlog_post(a[cidx], ya, ma, pma, pv, use_prior, grp, ema, leva)
            else:
                dlp[cidx] = _dlog_post(
                    a[cidx], ya[sel], ma[sel], pma[sel], pv, use_prior, grp, ema[sel],
                    _take(leva, sel),
                )
            kc = np.minimum(kk[ok][cont] * 1.1, KAPPA_0)
            kc = np.where(accepted[cidx] % 5 == 0, kc / 2, kc)
            kappa[cidx] = kc
        done = np.zeros(active.size, dtype=bool)
        done[np.flatnonzero(ok)[stop | below]] = True
        stuck = np.zeros(active.size, dtype=bool)
        stuck[np.flatnonzero(ok)[cont]] = _stuck(dlp[cidx], lp[cidx])
        iters[active[stuck]] = MAXIT
        keep = ~(done | stuck)
        active = active[keep]
        if not keep.all():
            ya, ma, pma, ema, leva = ya[keep], ma[keep], pma[keep], ema[keep], _take(leva, keep)
    return a, iters, initial_lp, lp


def _stuck(dlp, lp):
    """Genes whose line search can accept no further step: a non-finite derivative makes
    every proposal NaN (or clips the step to 0 * inf), a NaN log posterior fails every
    acceptance test. DESeq2 halves kappa until maxit and keeps the point; so does the caller,
    at once (iters = MAXIT), instead of ~100 evaluations per gene. With many patients DESeq2's
    determinant underflows at huge dispersions (log posterior +Inf, derivative NaN): 16% of
    the genes of the 200-sample benchmark end so in the gene-wise stage."""
    return ~np.isfinite(dlp) | np.isnan(lp)


def _fit_disp_grid(
    y, mu, prior_mean, prior_var, use_prior, n_samples, grp=None, emulate=None, lev=None
):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _fit_disp_grid_impl(
            y, mu, prior_mean, prior_var, use_prior, n_samples, grp, _emulating(emulate, len(y)),
            lev,
        )


def _fit_disp_grid_impl(y, mu, prior_mean, prior_var, use_prior, n_samples, grp, em, lev=None):
    """DESeq2's fitDispGrid: 20-point grid on log alpha, then a 20-point fine grid."""
    g = y.shape[0]
    pm = np.broadcast_to(np.asarray(prior_mean, float), (g,))
    grid = np.linspace(np.log(1e-8), np.log(max(10, n_samples)), 20)
    lps = np.stack(
        [_log_post(np.full(g, v), y, mu, pm, prior_var, use_prior, grp, em, lev) for v in grid],
        axis=1,
    )
    lps = np.where(np.isnan(lps), -np.inf, lps)
    best = grid[np.argmax(lps, axis=1)]
    delta = grid[1] - grid[0]
    fine = best[:, None] + np.linspace(-delta, delta, 20)[None, :]
    lps = np.stack(
        [_log_post(fine[:, k], y, mu, pm, prior_var, use_prior, grp, em, lev) for k in range(20)],
        axis=1,
    )
    lps = np.where(np.isnan(lps), -np.inf, lps)
    return fine[np.arange(g), np.argmax(lps, axis=1)]


def start_dispersion(norm, lin_mu, base_mean, base_var, sf, df, n_samples) -> np.ndarray:
    """DESeq2's starting dispersions: min(rough (linear-model residuals), moments), clamped to
    [MIN_DISP, max(10, n_samples)]. norm: normalised counts (genes first, samples over the
    other axes), lin_mu: the linear-model fit of norm floored at 1, df: residual df m - p."""
    max_disp = max(10.0, float(n_samples))
    axes = tuple(range(1, norm.ndim))
    rough = np.maximum(np.sum(((norm - lin_mu) ** 2 - lin_mu) / lin_mu**2, axis=axes) / df, 0)
    moments = (base_var - np.mean(1 / sf) * base_mean) / base_mean**2
    return np.minimum(np.maximum(np.minimum(rough, moments), MIN_DISP), max_disp)


def _genewise_done(
    y, mu, alpha_init, log_a, iters, lp0, lp1, n_samples, grp, emulate=None, levels=None,
    n_cpus=1,
):
    """DESeq2's estimateDispersionsGeneEst after fitDisp (niter = 1): no likelihood increase
    keeps the start value, non-converged genes go to the grid, then clamp. ``levels``
    (CountLevels of y): the grid sums over count levels, on ``n_cpus`` threads."""
    max_disp = max(10.0, float(n_samples))
    disp_gene = np.minimum(np.exp(log_a), max_disp)
    no_increase = lp1 < lp0 + np.abs(lp0) / 1e6
    disp_gene[no_increase] = alpha_init[no_increase]
    refit = ~((iters < MAXIT) & (iters != 1)) & (disp_gene > MIN_DISP * 10)
    if refit.any() and levels is not None:

        def grid(ib, eb):
            return _fit_disp_grid(
                y[ib], mu[ib], 0.0, 1.0, False, n_samples, grp, eb, levels.block(ib)
            )

        disp_gene[refit] = np.exp(
            levels.run(grid, n_cpus, np.flatnonzero(refit), _emulating(emulate, len(y)))
        )
    elif refit.any():
        em = None if emulate is None else emulate[refit]
        disp_gene[refit] = np.exp(
            _fit_disp_grid(y[refit], mu[refit], 0.0, 1.0, False, n_samples, grp, em)
        )
    return np.clip(disp_gene, MIN_DISP, max_disp)


def genewise_dispersions(y, mu, alpha_init, n_samples, grp, n_cpus: int = 1) -> np.ndarray:
    """estimateDispersionsGeneEst for a fixed mu: fitDisp from alpha_init (no prior), then
    _genewise_done. y, mu: genes x ... as the design ``grp`` wants (prepost.de.nb.linalg)."""

    def genewise(yb, mub, ab):
        return _fit_disp(yb, mub, np.log(ab), np.log(ab), 1.0, False, grp)

    log_a, iters, lp0, lp1 = _chunked(genewise, n_cpus, y.shape[0], y, mu, alpha_init)
    return _genewise_done(y, mu, alpha_init, log_a, iters, lp0, lp1, n_samples, grp)


def _map_dispersion(
    y, mu, disp_gene, disp_fit, prior_var, var_log, n_samples, grp, n_cpus, emulate=None,
    levels=None,
):
    """DESeq2's estimateDispersionsMAP: MAP line search (grid when it does not converge), clamp,
    and gene-wise values kept for dispersion outliers (> 2 SD above the trend). ``levels``
    (CountLevels of y): sums over count levels, gene blocks in level order."""
    g = y.shape[0]
    max_disp = max(10.0, float(n_samples))
    disp_init = np.where(disp_gene > 0.1 * disp_fit, disp_gene, disp_fit)

    em = _emulating(emulate, g)

    def map_fit(yb, mub, ib, fb, eb):
        la, it, _, _ = _fit_disp(yb, mub, np.log(ib), np.log(fb), prior_var, True, grp, eb)
        return la, it

    def map_fit_levels(ib, di, fb, eb):
        la, it, _, _ = _fit_disp(
            y[ib], mu[ib], np.log(di), np.log(fb), prior_var, True, grp, eb, levels.block(ib)
        )
        return la, it

    def grid_levels(ib, fb, eb):
        return _fit_disp_grid(
            y[ib], mu[ib], np.log(fb), prior_var, True, n_samples, grp, eb, levels.block(ib)
        )

    if levels is None:
        log_map, it_map = _chunked(map_fit, n_cpus, g, y, mu, disp_init, disp_fit, em)
    else:
        log_map, it_map = levels.run(map_fit_levels, n_cpus, np.arange(g), disp_init, disp_fit, em)
    disp_map = np.exp(log_map)
    nonconv = it_map >= MAXIT
    if nonconv.any() and levels is not None:
        disp_map[nonconv] = np.exp(
            levels.run(grid_levels, n_cpus, np.flatnonzero(nonconv), disp_fit, em)
        )
    elif nonconv.any():
        disp_map[nonconv] = np.exp(
            _fit_disp_grid(
                y[nonconv], mu[nonconv], np.log(disp_fit[nonconv]), prior_var, True, n_samples,
                grp, em[nonconv],
            )
        )
    disp_map = np.clip(disp_map, MIN_DISP, max_disp)
    outlier = np.log(disp_gene) > np.log(disp_fit) + 2 * np.sqrt(var_log)
    return np.where(outlier, disp_gene, disp_map)
