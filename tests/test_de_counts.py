"""paired_deseq2 against DESeq2 1.38 (fixture made by benchmarks/r_reference/) and simulated
truth. No R needed at test time."""

from pathlib import Path

import numpy as np
import pytest

import pandas as pd

from prepost import contrasts as C
from prepost.de_arrays import RESULT_COLUMNS
from prepost.de_counts import deseq2, paired_deseq2
from prepost.io import read_tsv

FIX = Path(__file__).parent / "fixtures" / "de"


@pytest.fixture(scope="module")
def data():
    counts = read_tsv(FIX / "counts.tsv", index_col=0)
    samples = read_tsv(FIX / "counts_samples.tsv", index_col=0, dtype=str)
    return counts, samples


@pytest.fixture(scope="module")
def result(data):
    return paired_deseq2(*data)


@pytest.fixture(scope="module")
def subset(data):
    """A smaller problem for the invariance tests (60 genes, incl. an all-zero one)."""
    counts, samples = data
    return counts.iloc[1:61], samples


def test_matches_deseq2(result):
    ours = result.set_index("gene")
    r = read_tsv(FIX / "counts_deseq2.tsv").set_index("gene").loc[ours.index]
    # same genes get NA (all-zero genes; no independent-filtering or Cook's removals here)
    for col, rcol in [("log2fc", "log2FoldChange"), ("pvalue", "pvalue"), ("padj", "padj")]:
        assert (ours[col].isna() == r[rcol].isna()).all(), col
    both = np.isfinite(ours["log2fc"]) & np.isfinite(r["log2FoldChange"])
    assert both.sum() == 298
    pearson = np.corrcoef(ours.loc[both, "log2fc"], r.loc[both, "log2FoldChange"])[0, 1]
    assert pearson >= 0.9999, pearson  # measured 0.999998
    ours_sig = set(ours.index[ours["padj"] < 0.1])
    r_sig = set(r.index[r["padj"] < 0.1])
    jaccard = len(ours_sig & r_sig) / len(ours_sig | r_sig)
    assert jaccard >= 0.9, jaccard  # measured 1.0 (48 genes each)
    pos = r["baseMean"] > 0
    assert np.max(np.abs(ours.loc[pos, "mean_expr"] / r.loc[pos, "baseMean"] - 1)) < 1e-6
    assert (ours.loc[~pos, "mean_expr"] == 0).all()


def test_all_zero_genes_kept_with_nan(result):
    zero = result.set_index("gene").loc[["c0001", "c0002"]]
    assert (zero["mean_expr"] == 0).all()
    assert zero[["log2fc", "lfc_se", "stat", "pvalue", "padj"]].isna().all().all()
    assert len(result) == 300 and result["gene"].is_unique


def test_output_contract(result):
    assert list(result.columns) == RESULT_COLUMNS
    p = result["pvalue"].dropna()
    assert p.is_monotonic_increasing and result["pvalue"].isna().iloc[-2:].all()


def test_recovers_simulated_effects(result):
    ours = result.set_index("gene")
    truth = read_tsv(FIX / "truth_counts.tsv").set_index("gene")["log2fc"].loc[ours.index]
    de = (truth != 0) & ours["log2fc"].notna()
    assert np.corrcoef(ours.loc[de, "log2fc"], truth[de])[0, 1] > 0.9
    called = ours["padj"] < 0.1
    # nominal FDR 0.1; measured 5/48 (DESeq2 calls the same 48 genes)
    assert (called & (truth == 0)).sum() / called.sum() <= 0.15
    hits = called & (truth != 0)
    assert hits.sum() >= 0.8 * (truth != 0).sum()
    assert (np.sign(ours.loc[hits, "log2fc"]) == np.sign(truth[hits])).all()


def test_reference_level_and_numeric_patient_ids(subset):
    """ref is the reference whatever the sort order of the levels ("post" < "pre"), and
    numeric-looking patient ids (here passed as ints) are factor levels, not a covariate."""
    counts, samples = subset
    base = paired_deseq2(counts, samples).set_index("gene")
    as_int = samples.assign(patient=samples["patient"].astype(int))
    swapped = paired_deseq2(counts, as_int, ref="post", alt="pre").set_index("gene").loc[base.index]
    # equal up to the IRLS convergence tolerance (the fit is reparametrised, not mirrored)
    np.testing.assert_allclose(swapped["log2fc"], -base["log2fc"], atol=1e-4)
    np.testing.assert_allclose(swapped["pvalue"], base["pvalue"], rtol=1e-3, atol=1e-8)
    assert base["log2fc"].notna().sum() == 59


def test_bad_counts_are_reported(data):
    counts, samples = data
    bad = counts.iloc[:5].astype(float)
    bad.iloc[3, 2] = 2.5
    with pytest.raises(ValueError, match=r"c0004.*S8_pre.*non-negative integer"):
        paired_deseq2(bad, samples)
    unpaired = samples.drop(index="S9_post")
    with pytest.raises(ValueError, match=r"\['9'\]"):
        paired_deseq2(counts.iloc[:5], unpaired)


# ---- contrasts beyond post vs pre: resp_counts fixtures (DESeq2 1.38, design matrix) ------

WITHIN = {
    "post_vs_pre_responder": "timepoint[post]:response[responder]",
    "post_vs_pre_non_responder": "timepoint[post]:response[non_responder]",
    "interaction": pd.Series(
        {"timepoint[post]:response[responder]": 1.0, "timepoint[post]:response[non_responder]": -1.0}
    ),
}


@pytest.fixture(scope="module")
def resp():
    counts = read_tsv(FIX / "resp_counts.tsv", index_col=0)
    sheet = read_tsv(FIX / "resp_counts_samples.tsv", dtype=str)
    spec = C.build_contrast(sheet, "post_vs_pre_responder", "resp")
    tables, sf = deseq2(counts, spec.samples, spec.design, WITHIN, return_size_factors=True)
    return counts, sheet, spec, tables, sf


@pytest.mark.parametrize("name", list(WITHIN))
def test_within_group_and_interaction_match_deseq2(resp, name):
    ours = resp[3][name].set_index("gene")
    r = read_tsv(FIX / "resp_counts_deseq2.tsv")
    r = r[r["contrast"] == name].set_index("gene").loc[ours.index]
    for col, rcol in [("log2fc", "log2FoldChange"), ("pvalue", "pvalue"), ("padj", "padj")]:
        assert (ours[col].isna() == r[rcol].isna()).all(), col
    both = ours["log2fc"].notna()
    assert both.sum() == 119  # c0001 is all zero
    assert np.corrcoef(ours.loc[both, "log2fc"], r.loc[both, "log2FoldChange"])[0, 1] >= 0.9999
    assert np.corrcoef(ours.loc[both, "stat"], r.loc[both, "stat"])[0, 1] >= 0.9999
    for alpha in (0.1, 0.05):  # measured 1.0 for all three contrasts (15 to 32 genes)
        a, b = set(ours.index[ours["padj"] < alpha]), set(r.index[r["padj"] < alpha])
        assert len(a & b) / len(a | b) >= 0.9, (alpha, a ^ b)


def test_size_factors_are_median_of_ratios(resp):
    counts, _sheet, spec, _tables, sf = resp
    x = counts[list(spec.samples.index)].to_numpy(float)
    pos = (x > 0).all(axis=1)
    logx = np.log(x[pos])
    expected = np.exp(np.median(logx - logx.mean(axis=1, keepdims=True), axis=0))
    np.testing.assert_allclose(sf.to_numpy(), expected, rtol=1e-10)


def test_run_contrast_counts_adds_paired_checks_on_log_normalised(resp):
    counts, sheet, _spec, _tables, _sf = resp
    small = counts.iloc[:40]
    out = C.run_contrast(small, "counts", sheet, "post_vs_pre_non_responder", "resp")
    assert list(out.columns) == RESULT_COLUMNS + C.CHECK_COLUMNS
    spec = C.build_contrast(sheet, "post_vs_pre_non_responder", "resp")
    x = small[list(spec.samples.index)].to_numpy(float)
    pos = (x > 0).all(axis=1)
    logx = np.log(x[pos])
    sf = np.exp(np.median(logx - logx.mean(axis=1, keepdims=True), axis=0))
    logn = pd.DataFrame(np.log2(x / sf + 1), index=small.index, columns=spec.samples.index)
    d = logn[list(spec.pairs["post"])].to_numpy() - logn[list(spec.pairs["pre"])].to_numpy()
    got = out.set_index("gene").loc[small.index]
    assert (got["n_up"].to_numpy() == (d > 0).sum(axis=1)).all()
    from scipy import stats

    i = 5
    np.testing.assert_allclose(got["paired_t_p"].iloc[i], stats.ttest_1samp(d[i], 0).pvalue, rtol=1e-9)
