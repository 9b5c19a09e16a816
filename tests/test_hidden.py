"""Hidden factors (prepost.de.hidden, config unwanted_factors) against R sva 3.46 and the
planted truth, on tests/fixtures/hidden (simulate.py writes the data, make_fixture.R the R
reference: svaseq / sva(method = "irw"), DESeq2 1.38 and limma 3.54 with the R surrogates as
covariates).

Surrogate variables are defined up to sign; sva's algorithm is deterministic (no random
start), so each SV is compared up to sign, and the column space by canonical correlations.
The only step not reproduced exactly is smooth.spline inside edge.lfdr (scipy's GCV smoothing
spline instead), measured below at 1.6e-6 on the local fdr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prepost.de import contrasts, hidden
from prepost.de.contrasts import ContrastError
from prepost.de.fit import fit_contrast
from prepost.de.run import factors_table, fit_summary, model_table
from prepost.files import read_tsv

FIX = Path(__file__).parent / "fixtures" / "hidden"
K = 2
TESTED = ["timepoint[post]"]


def _rel_err(ours, ref, floor):
    """max |ours - ref| / max(|ref|, floor) (as tests/test_de_general.py)."""
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    return float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), floor)))


def _cancor(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


@pytest.fixture(scope="module")
def sheet():
    return read_tsv(FIX / "samples.tsv", dtype={"sample": str, "patient": str})


@pytest.fixture(scope="module")
def data():
    return {
        "counts": read_tsv(FIX / "counts.tsv", index_col=0),
        "log2": read_tsv(FIX / "log2.tsv", index_col=0),
    }


@pytest.fixture(scope="module")
def svs(sheet, data):
    out = {}
    for kind, values in data.items():
        spec = contrasts.build_contrast(sheet, "post_vs_pre", "fx", available=values.columns)
        out[kind] = (spec, *hidden.surrogate_variables(values, kind, spec.design, TESTED, K))
    return out


def test_density_and_lfdr_match_r():
    """R's density() to rounding; sva's edge.lfdr to 1.6e-6 (the smoothing spline)."""
    ref = read_tsv(FIX / "r_lfdr.tsv")
    dens = read_tsv(FIX / "r_density.tsv")
    z = stats.norm.ppf(np.clip(ref["p"], 1e-8, 1 - 1e-8))
    grid, y = hidden.r_density(z, adjust=1.5)
    assert np.max(np.abs(grid - dens["x"])) < 1e-12  # measured 1.9e-13 (R writes 15 digits)
    assert np.max(np.abs(y - dens["y"])) < 1e-12 * dens["y"].max()  # measured 6.6e-14
    lfdr = hidden.edge_lfdr(ref["p"].to_numpy())
    assert np.max(np.abs(lfdr - ref["lfdr"])) < 1e-5  # measured 1.6e-6
    assert (np.diff(lfdr[np.argsort(ref["p"].to_numpy())]) >= 0).all()  # monotone in p


@pytest.mark.parametrize("kind", ["counts", "log2"])
def test_surrogates_match_r_sva(svs, kind):
    """Each SV equals R's up to sign (measured max |difference| 8.9e-7 counts, 2.8e-7 log2;
    unit-norm vectors), so the canonical correlations are 1."""
    spec, ours, info = svs[kind]
    ref = read_tsv(FIX / f"r_sv_{kind}.tsv", index_col=0).loc[ours.index]
    assert list(ours.columns) == ["sv1", "sv2"] and info["k"] == K
    assert info["genes_used"] == {"counts": 797, "log2": 800}[kind]
    a, b = ours.to_numpy(), ref.to_numpy()
    for j in range(K):
        sign = np.sign(a[:, j] @ b[:, j])
        assert np.max(np.abs(a[:, j] - sign * b[:, j])) < 5e-6, j
    assert _cancor(a, b).min() > 1 - 1e-10
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, rtol=1e-12)
    # deterministic sign: largest absolute entry positive
    assert (a[np.argmax(np.abs(a), axis=0), [0, 1]] > 0).all()


@pytest.mark.parametrize("kind", ["counts", "log2"])
def test_planted_factors_recovered(svs, sheet, kind):
    """The planted within-patient factors (h1 continuous, h2 a batch splitting pairs), taken
    net of the design (the patient block absorbs what is constant within patient), span the
    SVs' space: canonical correlations measured 0.99947 / 0.99967 (counts), 0.99989 / 0.99994
    (log2)."""
    spec, ours, _ = svs[kind]
    truth = read_tsv(FIX / "truth.tsv", index_col=0).loc[ours.index].to_numpy()
    q, _ = np.linalg.qr(spec.design.to_numpy())
    net = lambda m: m - q @ (q.T @ m)  # noqa: E731
    assert _cancor(net(truth), net(ours.to_numpy())).min() > 0.999


def test_limma_with_factors_matches_r(sheet, data):
    """log2 arrays: the moderated t with the Python SVs as covariates vs limma with R's SVs
    (measured relative errors log2fc 3.9e-6, t 3.0e-6, -log10 p 2.6e-6)."""
    ours = fit_contrast(data["log2"], "log2", sheet, "post_vs_pre", "fx", unwanted_factors=K)
    ours = ours.set_index("gene")
    r = read_tsv(FIX / "r_de_log2.tsv", index_col=0).loc[ours.index]
    assert len(ours) == 800
    assert _rel_err(ours["log2fc"], r["logFC"], 0.1) < 2e-5
    assert _rel_err(ours["stat"], r["t"], 1.0) < 2e-5
    assert _rel_err(-np.log10(ours["pvalue"]), -np.log10(r["P.Value"]), 1.0) < 2e-5
    assert (ours["df_total"] > 0).all()
    assert ours.attrs["contrast"]["df_residual"] == 24 - 13 - K


@pytest.fixture(scope="module")
def counts_fit(sheet, data):
    return fit_contrast(data["counts"], "counts", sheet, "post_vs_pre", "fx", unwanted_factors=K)


def test_deseq2_with_factors_matches_r(counts_fit):
    """Counts: pydeseq2 with the Python SVs vs DESeq2 1.38 with R's SVs. Measured: relative
    errors log2fc 0.188, stat 0.0876, -log10 p 0.148 (pydeseq2 vs DESeq2 differences of the
    size tests/test_de_general.py measures for covariate designs; with R's SVs in pydeseq2 the
    tables differ from these by < 1e-4), stat correlation 0.99998, the same 72 genes at
    padj < 0.1."""
    ours = counts_fit.set_index("gene")
    r = read_tsv(FIX / "r_de_counts.tsv", index_col=0).loc[ours.index]
    assert counts_fit.attrs["fit"]["engine"] == "pydeseq2"
    assert (ours["pvalue"].isna() == r["pvalue"].isna()).all()
    ok = ours["pvalue"].notna()
    o, rr = ours[ok], r[ok]
    assert _rel_err(o["log2fc"], rr["log2FoldChange"], 0.1) < 0.23
    assert _rel_err(o["stat"], rr["stat"], 1.0) < 0.11
    assert _rel_err(-np.log10(o["pvalue"]), -np.log10(rr["pvalue"]), 1.0) < 0.18
    assert np.corrcoef(o["stat"], rr["stat"])[0, 1] > 0.9999
    a, b = set(ours.index[ours["padj"] < 0.1]), set(r.index[r["padj"] < 0.1])
    assert len(b) == 72 and a == b


def test_fit_record_factors_and_model(counts_fit, sheet):
    record = fit_summary(counts_fit, "fx", "post_vs_pre", "counts")
    assert record["unwanted_factors"]["k"] == K
    assert record["unwanted_factors"]["method"].startswith("svaseq")
    assert record["covariates"] == ["sv1", "sv2"] and record["df_residual"] == 24 - 13 - K
    factors = factors_table(counts_fit, sheet)
    assert list(factors.columns) == ["sample", "patient", "timepoint", "sv1", "sv2"]
    assert len(factors) == 24 and factors["sample"].is_unique
    model = model_table(counts_fit)
    assert list(model.columns) == [
        "gene", "mean_expr", "disp_gene", "disp_trend", "dispersion", "disp_outlier"
    ]
    assert len(model) == 800 and model["disp_trend"].notna().all()


def test_no_factors_by_default(sheet, data):
    table = fit_contrast(data["log2"], "log2", sheet, "post_vs_pre", "fx")
    assert "unwanted_factors" not in table.attrs["fit"]
    assert factors_table(table, sheet).empty
    model = model_table(table)
    assert list(model.columns) == ["gene", "mean_expr", "sigma", "df_residual"] and len(model) == 800


@pytest.mark.parametrize("k", [11, 12, 40])
def test_too_many_factors_names_dataset_and_key(sheet, data, k):
    """24 samples, 13 design columns: 11 residual df, so k <= 10."""
    with pytest.raises(ContrastError, match=r"dataset 'fx': unwanted_factors .* residual df"):
        fit_contrast(data["log2"], "log2", sheet, "post_vs_pre", "fx", unwanted_factors=k)


@pytest.mark.parametrize("k", [-1, 1.5, "auto", True])
def test_bad_k_is_an_error(sheet, data, k):
    with pytest.raises(ContrastError, match="dataset 'fx': unwanted_factors"):
        fit_contrast(data["log2"], "log2", sheet, "post_vs_pre", "fx", unwanted_factors=k)
