"""prepost.distributions against scipy.stats (the reference: the same special functions, so
equal to rounding), on grids that include the tails, 0 and non-finite values."""

import numpy as np
import pytest
from scipy import stats

from prepost import distributions as D

X = np.array([-np.inf, -40, -8.5, -3, -1e-3, 0, 1e-12, 0.7, 2.5, 9, 38, np.inf, np.nan])
Q = np.array([0.0, 1e-300, 1e-12, 0.025, 0.3, 0.5, 0.975, 1 - 1e-12, 1.0, np.nan])
DF = np.array([0.5, 1, 2.7, 10, 123.4, 1e6, np.inf])


def same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=0, equal_nan=True)


@pytest.mark.parametrize("df", DF)
def test_t(df):
    same(D.t_sf(X, df), stats.t.sf(X, df))
    same(D.t_ppf(Q, df), stats.t.ppf(Q, df))
    same(D.t_isf(Q, df), stats.t.isf(Q, df))


def test_t_broadcasts_df_per_gene():
    x, df = np.meshgrid(X, DF)
    same(D.t_sf(x, df), stats.t.sf(x, df))
    assert np.ndim(D.t_sf(1.5, 4.0)) == 0


def test_normal():
    same(D.norm_sf(X), stats.norm.sf(X))
    same(D.norm_ppf(Q), stats.norm.ppf(Q))
    same(D.norm_pdf(X), stats.norm.pdf(X))
    same(D.norm_pdf(X, scale=0.37), stats.norm.pdf(X, scale=0.37))


@pytest.mark.parametrize("k", [1, 2, 3.5, 17, 400])
def test_chi2(k):
    x = np.abs(X)
    same(D.chi2_sf(x, k), stats.chi2.sf(x, k))
    same(D.chi2_ppf(Q, k), stats.chi2.ppf(Q, k))


@pytest.mark.parametrize("dfn,dfd", [(1, 1), (2, 7.5), (5, 40), (30, 1000)])
def test_f(dfn, dfd):
    x = np.abs(X)
    same(D.f_sf(x, dfn, dfd), stats.f.sf(x, dfn, dfd))
    same(D.f_ppf(Q, dfn, dfd), stats.f.ppf(Q, dfn, dfd))
