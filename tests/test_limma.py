"""paired_moderated_t against limma 3.54 (fixtures made by benchmarks/r_reference/), closed
forms and simulated truth. No R needed at test time."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from prepost.de.limma import moderated_t, paired_moderated_t, trigamma_inverse
from prepost.de.results import RESULT_COLUMNS
from prepost.files import read_tsv

FIX = Path(__file__).parent / "fixtures" / "de"


def _load(expr_name, samples_name):
    expr = read_tsv(FIX / expr_name, index_col=0)
    samples = read_tsv(FIX / samples_name, index_col=0, dtype=str)
    return expr, samples


@pytest.fixture(scope="module")
def arrays():
    expr, samples = _load("arrays_expr.tsv", "arrays_samples.tsv")
    limma = read_tsv(FIX / "arrays_limma.tsv").set_index("gene")
    return expr, samples, limma, paired_moderated_t(expr, samples).set_index("gene")


def _assert_matches_limma(ours, limma):
    ref = limma.loc[ours.index]
    assert np.max(np.abs(ours["stat"] - ref["t"])) < 1e-8
    assert np.max(np.abs(np.log10(ours["pvalue"]) - np.log10(ref["P.Value"]))) < 1e-8
    assert np.max(np.abs(ours["log2fc"] - ref["logFC"])) < 1e-10
    assert np.max(np.abs(ours["mean_expr"] - ref["AveExpr"])) < 1e-10
    # adjusted p on the log scale (an absolute 1e-10 on padj passes any padj below 1e-10; the
    # df.prior = Inf fixture goes down to 1e-35); measured max 3.7e-13
    assert np.max(np.abs(np.log10(ours["padj"]) - np.log10(ref["adj.P.Val"]))) < 1e-12
    np.testing.assert_allclose(ours["df_total"], ref["df_total"], rtol=1e-12)
    np.testing.assert_allclose(ours["stat"] * ours["lfc_se"], ours["log2fc"], rtol=1e-12)


def test_matches_limma_including_missing_values(arrays):
    _expr, _samples, limma, ours = arrays
    # limma gives NA exactly for the genes we leave out (timepoint not estimable / no data)
    assert set(ours.index) == set(limma.index[limma["t"].notna()])
    assert {"g0009", "g0010"}.isdisjoint(ours.index)
    nan_genes = ["g0003", "g0004", "g0005", "g0006", "g0007", "g0008"]
    assert set(nan_genes) <= set(ours.index)
    # fewer residual df than the complete genes (6 or 4 instead of 7): df_total is smaller
    assert (ours.loc[nan_genes, "df_total"] < ours.loc["g0001", "df_total"] - 0.5).all()
    _assert_matches_limma(ours, limma)
    _assert_matches_limma(ours.loc[nan_genes], limma)


def test_infinite_prior_df_matches_limma_and_pooled_t():
    expr, samples = _load("arrays_inf_expr.tsv", "arrays_inf_samples.tsv")
    limma = read_tsv(FIX / "arrays_inf_limma.tsv").set_index("gene")
    assert np.isinf(limma["df_prior"]).all()
    ours = paired_moderated_t(expr, samples).set_index("gene")
    _assert_matches_limma(ours, limma)
    # closed form: one pair per patient, so the coefficient is the mean paired difference d,
    # each gene's residual variance is var(d)/2 and, with df.prior = Inf, limma's t is the
    # paired t with the pooled variance mean(var(d)/2) on sum(df) = G(n-1) df.
    pre = expr[samples.index[samples["timepoint"] == "pre"]].to_numpy()
    post_ids = [
        samples.index[(samples["patient"] == p) & (samples["timepoint"] == "post")][0]
        for p in samples.loc[samples["timepoint"] == "pre", "patient"]
    ]
    d = expr[post_ids].to_numpy() - pre
    n, g = d.shape[1], d.shape[0]
    pooled = np.mean(d.var(axis=1, ddof=1) / 2)
    t = d.mean(axis=1) / np.sqrt(pooled * 2 / n)
    closed = pd.Series(t, index=expr.index).loc[ours.index]
    np.testing.assert_allclose(ours["stat"], closed, rtol=1e-9)
    assert (ours["df_total"] == g * (n - 1)).all()
    np.testing.assert_allclose(
        ours["pvalue"], 2 * stats.t.sf(np.abs(closed), g * (n - 1)), rtol=1e-9
    )


def test_recovers_simulated_effects(arrays):
    _expr, _samples, _limma, ours = arrays
    truth = read_tsv(FIX / "truth_arrays.tsv").set_index("gene")["log2fc"].loc[ours.index]
    called = ours["padj"] < 0.05
    true_de = truth != 0
    fdp = (called & ~true_de).sum() / called.sum()
    recall = (called & true_de).sum() / true_de.sum()
    assert fdp <= 0.1 and recall >= 0.8, (fdp, recall)
    assert np.corrcoef(ours.loc[true_de, "log2fc"], truth[true_de])[0, 1] > 0.95
    # the size of the effects too (a correlation passes a uniformly doubled log2fc): slope
    # through the origin measured 0.972, median relative error 0.125
    x, y = truth[true_de], ours.loc[true_de, "log2fc"]
    assert abs(np.sum(x * y) / np.sum(x * x) - 1) < 0.034
    assert np.median(np.abs(y / x - 1)) < 0.15


def test_output_contract(arrays):
    expr, samples, _limma, _ = arrays
    out = paired_moderated_t(expr, samples)
    assert list(out.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert "df_total" in out.columns
    assert out["pvalue"].is_monotonic_increasing
    assert out["gene"].is_unique


def test_only_listed_samples_and_alt_ref_swap(arrays):
    expr, samples, _limma, ours = arrays
    extra = expr.assign(unrelated=1.0)  # a column not in the sheet is ignored
    swapped = paired_moderated_t(extra, samples, ref="post", alt="pre").set_index("gene")
    np.testing.assert_allclose(swapped.loc[ours.index, "log2fc"], -ours["log2fc"], atol=1e-12)
    np.testing.assert_allclose(swapped.loc[ours.index, "pvalue"], ours["pvalue"], rtol=1e-10)


def test_gene_without_residual_df_is_dropped():
    # 3 patients; gene b lacks both samples of patient C and one of patient B: its timepoint
    # effect is estimable (patient A) but it has 3 values for 3 parameters, so no residual df.
    samples = pd.DataFrame(
        {"patient": list("AABBCC"), "timepoint": ["pre", "post"] * 3},
        index=[f"s{i}" for i in range(6)],
    )
    rng = np.random.default_rng(1)
    expr = pd.DataFrame(rng.normal(size=(4, 6)), index=list("abcd"), columns=samples.index)
    expr.loc["b", ["s3", "s4", "s5"]] = np.nan
    out = paired_moderated_t(expr, samples)
    assert sorted(out["gene"]) == ["a", "c", "d"]


def test_unpaired_patient_is_named():
    samples = pd.DataFrame(
        {
            "patient": ["P1", "P1", "P2", "P2", "P3"],
            "timepoint": ["pre", "post", "pre", "post", "pre"],
        },
        index=list("abcde"),
    )
    expr = pd.DataFrame(np.zeros((3, 5)), columns=list("abcde"))
    with pytest.raises(ValueError, match=r"\['P3'\]"):
        paired_moderated_t(expr, samples)


def test_bad_sheet_values_are_reported():
    samples = pd.DataFrame({"patient": ["1", "1"], "timepoint": ["pre", "week2"]}, index=["a", "b"])
    expr = pd.DataFrame(np.zeros((2, 2)), columns=["a", "b"])
    with pytest.raises(ValueError, match="week2"):
        paired_moderated_t(expr, samples)
    samples = pd.DataFrame({"patient": ["1", "1"], "timepoint": ["pre", "post"]}, index=["a", "zz"])
    with pytest.raises(ValueError, match="zz"):
        paired_moderated_t(expr, samples)


def test_trigamma_inverse_inverts_trigamma():
    x = np.array([1e-7, 1e-3, 0.1, 1.0, 10.0, 1e5, 1e8])
    y = trigamma_inverse(x)
    mid = (x >= 1e-6) & (x <= 1e7)
    np.testing.assert_allclose(special.polygamma(1, y[mid]), x[mid], rtol=1e-7)


def test_moderated_t_contrast_forms_and_errors(arrays):
    """The general entry point: a column name, a Series and a vector give the same table as
    the paired wrapper (which matches limma above); bad designs are reported."""
    expr, samples, _limma, ours = arrays
    patients = sorted(samples["patient"].unique())
    design = pd.DataFrame({"Intercept": 1.0}, index=samples.index)
    for p in patients[1:]:
        design[f"patient[{p}]"] = (samples["patient"] == p).astype(float)
    design["post"] = (samples["timepoint"] == "post").astype(float)
    vec = np.zeros(design.shape[1])
    vec[-1] = 1
    for contrast in ("post", pd.Series({"post": 1.0}), vec):
        got = moderated_t(expr, design, contrast).set_index("gene")
        pd.testing.assert_frame_equal(got, ours, check_exact=False, rtol=1e-12, atol=1e-14)
    # the negated contrast flips the sign only
    neg = moderated_t(expr, design, -vec).set_index("gene").loc[ours.index]
    np.testing.assert_allclose(neg["stat"], -ours["stat"], rtol=1e-12)
    with pytest.raises(ValueError, match="3 weights"):
        moderated_t(expr, design, [0, 0, 1])
    with pytest.raises(ValueError, match="not a design column"):
        moderated_t(expr, design, "timepoint")
    with pytest.raises(ValueError, match="rank-deficient"):
        moderated_t(expr, design.assign(dup=design["post"]), "post")


def test_gene_constant_within_patients_and_constant_gene(arrays):
    """post = pre in every patient: the paired effect is exactly 0, its residual variance 0,
    so the moderated variance is the prior's alone (t = 0, p = 1), and the other genes are
    unaffected apart from the prior (limma's handling; no special case)."""
    expr, samples, _limma, _ours = arrays
    expr = expr.iloc[10:60].copy()
    pre = samples.index[samples["timepoint"] == "pre"]
    post = samples.index[samples["timepoint"] == "post"]
    post_of = {samples.loc[s, "patient"]: s for s in post}
    const = expr.iloc[0].copy()
    for s in pre:
        const[post_of[samples.loc[s, "patient"]]] = const[s]
    expr.loc["within"] = const
    expr.loc["flat"] = 7.0
    res = paired_moderated_t(expr, samples).set_index("gene")
    for g in ("within", "flat"):
        assert abs(res.loc[g, "log2fc"]) < 1e-12 and abs(res.loc[g, "stat"]) < 1e-10
        assert res.loc[g, "pvalue"] == pytest.approx(1.0)
        assert res.loc[g, "lfc_se"] > 0
