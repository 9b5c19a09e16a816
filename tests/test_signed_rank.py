"""prepost.distributions.signed_rank_p (the paired checks' Wilcoxon p, without scipy.stats)
against R's wilcox.test and against scipy.stats.wilcoxon row by row."""

import numpy as np
import pytest
from scipy import stats

from prepost.distributions import signed_rank_p


def test_matches_r_wilcox_test():
    """Constants from R 4.2.2 (Debian r-base-core), wilcox.test(d)$p.value printed with
    %.17g: 50 distinct non-zero differences take the normal approximation (R: exact only for
    n < 50), 49 the exact distribution; a zero forces the approximation; one difference: 1."""
    d50 = np.round(np.sin(np.arange(1, 51)) * 3 + 0.2, 6)
    pad = lambda v: np.r_[v, [np.nan] * (50 - len(v))]  # noqa: E731
    rows = np.array([
        d50,
        pad(d50[:49]),
        pad([0.4, -0.1, 0.9]),
        pad([0.4, -0.1, 0.9, 0, 1.3, 2.2]),
        pad([0.5]),
    ])
    r = [0.38495922427661761, 0.36331317046075645, 0.50000000000000011, 0.10564542920187692, 1.0]
    np.testing.assert_allclose(signed_rank_p(rows), r, rtol=1e-14)


def _scipy_row(d):
    """R's choice of method, computed by scipy one row at a time."""
    d = d[np.isfinite(d)]
    nz = d[d != 0]
    if len(nz) == 0:
        return np.nan
    ties = len(np.unique(np.abs(nz))) < len(nz) or (d == 0).any()
    method = "exact" if len(nz) < 50 and not ties else "asymptotic"
    return stats.wilcoxon(d, method=method, correction=True, zero_method="wilcox").pvalue


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scipy_over_sizes_ties_zeros_and_missing(seed):
    """Rows of 1 to 70 pairs (both sides of the exact/normal switch), rounded so some rows
    have ties, some exact zeros, some missing pairs; every row as scipy.stats.wilcoxon."""
    rng = np.random.default_rng(seed)
    m = 70
    rows = []
    for n in range(1, m + 1):
        for kind in ("clean", "ties", "zeros", "missing"):
            d = rng.normal(0.3, 1, m)
            if kind == "ties":
                d = np.round(d, 1)
            if kind == "zeros":
                d[rng.choice(m, 3, replace=False)] = 0.0
            d[n:] = np.nan
            if kind == "missing":
                d[rng.choice(n, max(1, n // 4), replace=False)] = np.nan
            rows.append(rng.permutation(d))
    rows.append(np.r_[np.zeros(10), [np.nan] * (m - 10)])  # all zero: NaN
    rows = np.array(rows)
    ours = signed_rank_p(rows)
    ref = np.array([_scipy_row(r) for r in rows])
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=0)
    # log p too: the smallest p-values (strong rows) agree in relative terms
    ok = np.isfinite(ref)
    np.testing.assert_allclose(np.log(ours[ok]), np.log(ref[ok]), rtol=1e-12, atol=1e-14)
