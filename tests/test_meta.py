"""Standardised effects and the DerSimonian-Laird pool against R metafor 3.8 (escalc, rma DL).

Fixtures: tests/fixtures/meta/make_meta_fixtures.R (run with Rscript in that folder) wrote the
simulated inputs and metafor's results; the tests need no R.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prepost import vocabulary as V
from prepost.claims import effects, meta
from prepost.plots.claims import forest_plot
from prepost.stats import bh_adjust

FIX = Path(__file__).resolve().parent / "fixtures" / "meta"


def _escalc():
    return pd.read_csv(FIX / "escalc.tsv", sep="\t").set_index("study")


def test_paired_effect_matches_metafor_smcc():
    paired = pd.read_csv(FIX / "paired.tsv", sep="\t")
    ref = _escalc()
    for study, d in paired.groupby("study"):
        diffs = (d["post"] - d["pre"]).to_numpy()[None, :]
        got = effects.paired_effect(diffs).iloc[0]
        np.testing.assert_allclose(got["smd"], ref.loc[study, "yi"], rtol=1e-9)
        np.testing.assert_allclose(got["smd_se"] ** 2, ref.loc[study, "vi"], rtol=1e-9)
        assert got["smd_n"] == len(d)


def test_two_group_effect_matches_metafor_smd():
    groups = pd.read_csv(FIX / "groups.tsv", sep="\t")
    ref = _escalc()
    for study, d in groups.groupby("study"):
        a = d.loc[d["group"] == "responder", "value"].to_numpy()[None, :]
        b = d.loc[d["group"] == "non_responder", "value"].to_numpy()[None, :]
        got = effects.two_group_effect(a, b).iloc[0]
        np.testing.assert_allclose(got["smd"], ref.loc[study, "yi"], rtol=1e-9)
        np.testing.assert_allclose(got["smd_se"] ** 2, ref.loc[study, "vi"], rtol=1e-9)


def test_effect_from_t_equals_effect_from_data_for_ordinary_t():
    """d = t / sqrt(n) (paired) and t * sqrt(1/n1 + 1/n2) (two groups) are identities."""
    rng = np.random.default_rng(3)
    pre, post = rng.normal(size=(4, 11)), rng.normal(0.5, 1, size=(4, 11))
    t = stats.ttest_rel(post, pre, axis=1).statistic
    pd.testing.assert_frame_equal(effects.effect_from_t(t, n=11), effects.paired_effect(post - pre))
    a, b = rng.normal(size=(3, 6)), rng.normal(1, 1, size=(3, 9))
    t2 = stats.ttest_ind(a, b, axis=1).statistic
    pd.testing.assert_frame_equal(effects.effect_from_t(t2, n1=6, n2=9), effects.two_group_effect(a, b))


def test_hedges_j_closed_forms():
    # J(2) = Gamma(1) / (1 * Gamma(1/2)) = 1/sqrt(pi); J(3) = Gamma(3/2)/(sqrt(3/2) Gamma(1)) = sqrt(pi/6)
    np.testing.assert_allclose(effects.hedges_j([2, 3]), [1 / np.sqrt(np.pi), np.sqrt(np.pi / 6)], rtol=1e-12)
    m = np.arange(10, 60)
    assert np.all(np.abs(effects.hedges_j(m) - (1 - 3 / (4 * m - 1))) < 1e-3)  # Hedges' approximation
    assert np.isnan(effects.hedges_j([1])).all()


@pytest.mark.parametrize("case", ["smcc", "smd", "bcg", "smcc_two"])
def test_dersimonian_laird_matches_metafor(case):
    ref = pd.read_csv(FIX / "dl.tsv", sep="\t").set_index("case").loc[case]
    if case == "bcg":  # Colditz et al. 1994 BCG trials; DL tau^2 = 0.3088 in metafor's docs
        es = pd.read_csv(FIX / "bcg.tsv", sep="\t")
    else:
        es = _escalc()
        es = es[es["measure"] == ("SMD" if case == "smd" else "SMCC")].reset_index()
        if case == "smcc_two":
            es = es.iloc[:2]
    fit = meta.dersimonian_laird(es["yi"], es["vi"])
    assert fit["k"] == ref["k"]
    for ours, theirs in [("effect", "estimate"), ("se", "se"), ("ci_low", "ci_low"),
                         ("ci_high", "ci_high"), ("z", "zval"), ("tau2", "tau2"), ("i2", "i2"),
                         ("q", "q")]:
        np.testing.assert_allclose(fit[ours], ref[theirs], rtol=1e-8, atol=1e-12, err_msg=ours)
    # p-values on the log scale: atol=1e-12 passed any bcg q_pvalue (2.0e-26) below 1e-12;
    # measured max |log10 difference| 1.4e-13 (bcg q_pvalue), else < 1e-14
    for ours, theirs in [("pvalue", "pval"), ("q_pvalue", "q_pvalue")]:
        assert abs(np.log10(fit[ours]) - np.log10(ref[theirs])) < 1e-12, ours
    if case == "bcg":
        assert round(fit["tau2"], 4) == 0.3088


def test_single_study_pool_is_the_study():
    fit = meta.dersimonian_laird([0.4], [0.04])
    assert fit["effect"] == 0.4 and fit["se"] == pytest.approx(0.2) and fit["tau2"] == 0
    assert np.isnan(fit["q"]) and np.isnan(fit["i2"])
    with pytest.raises(ValueError, match="variance > 0"):
        meta.dersimonian_laird([0.4], [0.0])


def _claims_rows(rows):
    base = {"statement": "s", "citation": "c", "contrast": "post_vs_pre", "kind": "gene_change",
            "direction_expected": "down", "reason": ""}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_meta_analyse_pools_one_dataset_per_cohort_and_gives_verdicts():
    table = _claims_rows([
        {"claim": "a", "feature": "BRCA2", "dataset": "d1", "smd": -1.0, "smd_se": 0.3},
        {"claim": "a", "feature": "BRCA2", "dataset": "d2", "smd": -0.6, "smd_se": 0.4},
        {"claim": "a", "feature": "BRCA2", "dataset": "pub", "smd": -5.0, "smd_se": 0.1},
        {"claim": "b", "feature": "FAS", "dataset": "d1", "smd": 0.2, "smd_se": 0.3,
         "direction_expected": "up"},
        {"claim": "c", "feature": "PALB2", "dataset": "d1", "smd": np.nan, "smd_se": np.nan,
         "reason": "gene not in the expression data"},
        {"claim": "d", "feature": "ATM", "dataset": "d1", "smd": 1.5, "smd_se": 0.3},
    ])
    out = meta.meta_analyse(table, cohorts={"pub": "d1"}, published={"pub"}).set_index("claim")
    ref = meta.dersimonian_laird([-1.0, -0.6], [0.09, 0.16])
    assert out.loc["a", "k"] == 2 and out.loc["a", "datasets"] == "d1,d2"
    assert out.loc["a", "effect"] == pytest.approx(ref["effect"])
    assert "pub left out (same patients as d1)" in out.loc["a", "reason"]
    assert out.loc["a", "verdict"] == V.REPRODUCED
    assert out.loc["b", "verdict"] == V.SAME_NS
    assert out.loc["c", "verdict"] == V.NOT_TESTABLE
    assert out.loc["c", "reason"].startswith("fewer than 1 testable dataset (gene not in")
    assert out.loc["d", "verdict"] == V.CONTRADICTED
    # BH over the three pooled rows
    p = out.loc[["a", "b", "d"], "pvalue"].to_numpy()
    np.testing.assert_allclose(out.loc[["a", "b", "d"], "padj"], bh_adjust(p))
    assert list(out.reset_index().columns) == meta.META_COLUMNS


def _sheet():
    rows = []
    for i in range(1, 7):
        resp = "responder" if i <= 3 else "non_responder"
        for tp in ("pre", "post"):
            rows.append({"sample": f"P{i}_{tp}", "patient": f"P{i}", "timepoint": tp,
                         "response": resp, "in_pair": True, "usable": True})
    rows.append({"sample": "P7_pre", "patient": "P7", "timepoint": "pre", "response": "responder",
                 "in_pair": False, "usable": True})
    return pd.DataFrame(rows)


def test_dataset_effects_use_the_contrast_samples():
    rng = np.random.default_rng(5)
    sheet = _sheet()
    expr = pd.DataFrame(rng.normal(8, 1, size=(3, len(sheet))), index=["G1", "G2", "G3"],
                        columns=sheet["sample"])
    feats = pd.DataFrame({"contrast": ["post_vs_pre", "responder_vs_non_responder_pre",
                                       "interaction", "post_vs_pre_responder"],
                          "kind": "gene_change", "feature": ["G1", "G2", "G3", "G1"]})
    out = effects.dataset_effects(feats, expr, "log2", sheet, "d").set_index(["contrast", "feature"])
    pts = [f"P{i}" for i in range(1, 7)]
    diffs = pd.Series({p: expr.loc[:, f"{p}_post"] - expr.loc[:, f"{p}_pre"] for p in pts})
    d1 = np.array([diffs[p]["G1"] for p in pts])[None, :]
    exp = effects.paired_effect(d1).iloc[0]
    assert out.loc[("post_vs_pre", "G1"), "smd"] == pytest.approx(exp["smd"])
    assert out.loc[("post_vs_pre", "G1"), "smd_n"] == 6
    exp = effects.paired_effect(d1[:, :3]).iloc[0]
    assert out.loc[("post_vs_pre_responder", "G1"), "smd"] == pytest.approx(exp["smd"])
    pre = expr.loc["G2"]
    a = pre[[f"P{i}_pre" for i in (1, 2, 3, 7)]].to_numpy()[None, :]  # unpaired P7 counts here
    b = pre[[f"P{i}_pre" for i in (4, 5, 6)]].to_numpy()[None, :]
    exp = effects.two_group_effect(a, b).iloc[0]
    assert out.loc[("responder_vs_non_responder_pre", "G2"), "smd"] == pytest.approx(exp["smd"])
    d3 = np.array([diffs[p]["G3"] for p in pts])[None, :]
    exp = effects.two_group_effect(d3[:, :3], d3[:, 3:]).iloc[0]
    assert out.loc[("interaction", "G3"), "smd"] == pytest.approx(exp["smd"])


def test_dataset_effects_counts_use_log2_normalised_counts():
    rng = np.random.default_rng(6)
    sheet = _sheet()
    counts = pd.DataFrame(rng.poisson(200, size=(40, len(sheet))), index=[f"g{i}" for i in range(40)],
                          columns=sheet["sample"])
    feats = pd.DataFrame({"contrast": ["post_vs_pre"], "kind": ["gene_change"], "feature": ["g0"]})
    out = effects.dataset_effects(feats, counts, "counts", sheet, "d").iloc[0]
    sub = counts.drop(columns="P7_pre").astype(float)
    logc = np.log(sub)
    sf = np.exp(logc.sub(logc.mean(axis=1), axis=0).median(axis=0))  # DESeq2: exp(median log ratio)
    logv = np.log2(sub / sf + 1)
    d = np.array([logv.loc["g0", f"P{i}_post"] - logv.loc["g0", f"P{i}_pre"] for i in range(1, 7)])
    assert out["smd"] == pytest.approx(effects.paired_effect(d[None, :]).iloc[0]["smd"], rel=1e-10)


def test_forest_plot_is_deterministic(tmp_path):
    table = _claims_rows([
        {"claim": "a", "feature": "BRCA2", "dataset": "d1", "smd": -1.0, "smd_se": 0.3},
        {"claim": "a", "feature": "BRCA2", "dataset": "d2", "smd": -0.6, "smd_se": 0.4},
        {"claim": "a", "feature": "BRCA1", "dataset": "d1", "smd": np.nan, "smd_se": np.nan,
         "reason": "gene not in the expression data"},
    ])
    m = meta.meta_analyse(table)
    one, two = tmp_path / "1.png", tmp_path / "2.png"
    info = forest_plot("a", table, m, one)
    forest_plot("a", table, m, two)
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert one.read_bytes() == two.read_bytes()
    assert info["pooled"] == 1 and info["rows"] == 7
    with pytest.raises(ValueError, match="claim 'zz'"):
        forest_plot("zz", table, m, tmp_path / "3.png")


def test_run_meta_draws_the_same_forest_plots_in_forked_workers(tmp_path):
    rows = []
    for claim in ("a", "b", "c"):
        rows += [{"claim": claim, "feature": "BRCA2", "dataset": "d1", "smd": -1.0, "smd_se": 0.3},
                 {"claim": claim, "feature": "BRCA2", "dataset": "d2", "smd": -0.6, "smd_se": 0.4}]
    src = tmp_path / "claims.tsv"
    _claims_rows(rows).to_csv(src, sep="\t", index=False)
    for threads in (1, 2):
        (tmp_path / str(threads)).mkdir()
        meta.run_meta(src, tmp_path / str(threads) / "meta.tsv", tmp_path / str(threads),
                      ["a", "b", "c"], threads=threads)
    for name in ("meta.tsv", "a.png", "b.png", "c.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
