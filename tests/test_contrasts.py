"""Named contrasts (prepost.contrasts) against limma 3.54 and R's t.test / wilcox.test
(fixtures resp_* made by benchmarks/r_reference/, which selects samples independently), plus
scipy per-gene loops and closed forms. No R needed at test time."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prepost import vocabulary
from prepost.de import contrasts as C
from prepost.de import fit as F
from prepost.de.limma import moderated_t
from prepost.de.results import RESULT_COLUMNS
from prepost.files import read_tsv

FIX = Path(__file__).parent / "fixtures" / "de"


@pytest.fixture(scope="module")
def resp():
    expr = read_tsv(FIX / "resp_arrays_expr.tsv", index_col=0)
    sheet = read_tsv(FIX / "resp_arrays_samples.tsv", dtype=str)
    limma = read_tsv(FIX / "resp_arrays_limma.tsv")
    return expr, sheet, limma


@pytest.mark.parametrize("name", C.CONTRASTS)
def test_moderated_t_matches_limma_for_every_contrast(resp, name):
    expr, sheet, limma = resp
    spec = C.build_contrast(sheet, name, "resp", available=expr.columns)
    ours = moderated_t(expr, spec.design, spec.contrast).set_index("gene")
    ref = limma[limma["contrast"] == name].set_index("gene")
    assert set(ours.index) == set(ref.index[ref["t"].notna()])
    ref = ref.loc[ours.index]
    assert np.max(np.abs(ours["stat"] - ref["t"])) < 1e-8
    assert np.max(np.abs(np.log10(ours["pvalue"]) - np.log10(ref["P.Value"]))) < 1e-8
    assert np.max(np.abs(ours["log2fc"] - ref["logFC"])) < 1e-10
    assert np.max(np.abs(ours["mean_expr"] - ref["AveExpr"])) < 1e-10
    # adjusted p on the log scale (an absolute 1e-10 on padj passes any padj below 1e-10; these
    # p-values go down to 3e-11); measured max 1.7e-13 over the five contrasts
    assert np.max(np.abs(np.log10(ours["padj"]) - np.log10(ref["adj.P.Val"]))) < 1e-12
    np.testing.assert_allclose(ours["df_total"], ref["df_total"], rtol=1e-12)
    if name in ("post_vs_pre_responder", "interaction"):
        assert "g0006" not in ours.index  # no responder post value: not estimable, as limma NA


def test_sample_selection(resp):
    expr, sheet, _ = resp
    pre = C.build_contrast(sheet, "responder_vs_non_responder_pre", "resp").samples
    assert {"R06_pre", "N06_pre"} <= set(pre.index)  # unpaired patients' pre samples count
    assert "N07_pre" not in pre.index and "U01_pre" not in pre.index  # excluded / unknown
    assert (pre["timepoint"] == "pre").all() and len(pre) == 12
    within = C.build_contrast(sheet, "post_vs_pre_responder", "resp")
    assert not within.samples["patient"].isin(["U01", "R06", "N06", "U02"]).any()
    assert len(within.samples) == 20  # both groups' pairs: the variance is pooled
    assert list(within.pairs.index) == [f"R0{i}" for i in range(1, 6)]
    assert (within.pairs["post"] == within.pairs.index + "_post").all()
    allp = C.build_contrast(sheet, "post_vs_pre", "resp")
    assert allp.pairs.index.tolist()[-1] == "U01" and len(allp.samples) == 22
    inter = C.build_contrast(sheet, "interaction", "resp")
    assert inter.pairs is None and inter.contrast["timepoint[post]:response[responder]"] == 1
    # without 'usable' only samples in pairs are used
    old = sheet.drop(columns="usable")
    assert "R06_pre" not in C.build_contrast(old, "responder_vs_non_responder_pre", "x").samples.index
    # a sample without data drops its pair
    spec = C.build_contrast(sheet, "post_vs_pre", "resp", available=expr.columns.drop("R01_post"))
    assert "R01" not in set(spec.samples["patient"])


def test_interaction_equals_difference_of_within_group_effects(resp):
    """Same model, two parametrisations: the interaction coefficient is the contrast
    post:responder - post:non_responder of the within-group design (exact, NaN genes too)."""
    expr, sheet, _ = resp
    inter = moderated_t(expr, *_dc(C.build_contrast(sheet, "interaction", "resp"))).set_index("gene")
    w = C.build_contrast(sheet, "post_vs_pre_responder", "resp")
    vec = pd.Series({"timepoint[post]:response[responder]": 1.0,
                     "timepoint[post]:response[non_responder]": -1.0})
    diff = moderated_t(expr, w.design, vec).set_index("gene").loc[inter.index]
    for col in ["log2fc", "lfc_se", "stat", "pvalue", "df_total"]:
        np.testing.assert_allclose(diff[col], inter[col], rtol=1e-9, atol=1e-12)


def _dc(spec):
    return spec.design, spec.contrast


def test_recovers_simulated_interaction(resp):
    expr, sheet, _ = resp
    truth = read_tsv(FIX / "resp_truth_arrays.tsv").set_index("gene")
    out = moderated_t(expr, *_dc(C.build_contrast(sheet, "interaction", "resp"))).set_index("gene")
    hits = out.index[out["padj"] < 0.05]
    assert len(hits) >= 10
    assert (truth.loc[hits, "interaction"] != 0).mean() >= 0.85
    true_hits = hits[truth.loc[hits, "interaction"] != 0]
    assert (np.sign(out.loc[true_hits, "log2fc"]) == np.sign(truth.loc[true_hits, "interaction"])).all()


@pytest.mark.parametrize("name", ["post_vs_pre", "post_vs_pre_responder"])
def test_paired_checks_match_r(resp, name):
    expr, sheet, _ = resp
    ref = read_tsv(FIX / "resp_paired_checks.tsv")
    ref = ref[ref["contrast"] == name].set_index("gene")
    ours = F.paired_checks(expr, C.build_contrast(sheet, name, "resp").pairs).loc[ref.index]
    for col in ["n_pairs", "n_up", "n_down"]:
        assert (ours[col].to_numpy() == ref[col].to_numpy()).all(), col
    for col in ["paired_t_p", "wilcoxon_p"]:  # exact Wilcoxon in both (n <= 11, no ties)
        assert (ours[col].isna() == ref[col].isna()).all()
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-10)


def test_paired_checks_match_scipy_loop_with_nan_zeros_and_ties():
    rng = np.random.default_rng(3)
    n_genes, n_pairs = 40, 8
    pre = rng.normal(5, 1, (n_genes, n_pairs))
    post = pre + np.round(rng.normal(0.3, 1, (n_genes, n_pairs)), 1)  # ties and zeros
    post[0, :3] = np.nan
    pre[1, 5] = np.nan
    post[2] = pre[2]  # all differences zero
    values = pd.DataFrame(
        np.hstack([pre, post]), index=[f"x{i}" for i in range(n_genes)],
        columns=[f"p{j}_pre" for j in range(n_pairs)] + [f"p{j}_post" for j in range(n_pairs)],
    )
    pairs = pd.DataFrame({"pre": values.columns[:n_pairs], "post": values.columns[n_pairs:]},
                         index=[f"p{j}" for j in range(n_pairs)])
    ours = F.paired_checks(values, pairs)
    for i, g in enumerate(values.index):
        ok = np.isfinite(pre[i]) & np.isfinite(post[i])
        d = post[i][ok] - pre[i][ok]
        assert ours.loc[g, "n_pairs"] == ok.sum()
        assert ours.loc[g, "n_up"] == (d > 0).sum() and ours.loc[g, "n_down"] == (d < 0).sum()
        if (d == 0).all():
            assert np.isnan(ours.loc[g, "wilcoxon_p"])
            continue
        tp = stats.ttest_rel(post[i][ok], pre[i][ok]).pvalue
        tied = (d == 0).any() or len(np.unique(np.abs(d))) < len(d)
        wp = stats.wilcoxon(post[i][ok], pre[i][ok], method="asymptotic" if tied else "exact",
                            correction=True).pvalue
        np.testing.assert_allclose(ours.loc[g, "paired_t_p"], tp, rtol=1e-10)
        np.testing.assert_allclose(ours.loc[g, "wilcoxon_p"], wp, rtol=1e-10)


def test_run_contrast_columns(resp):
    expr, sheet, _ = resp
    paired = F.fit_contrast(expr, "log2", sheet, "post_vs_pre_non_responder", "resp")
    assert list(paired.columns) == RESULT_COLUMNS + ["df_total"] + F.CHECK_COLUMNS
    assert (paired["n_pairs"] <= 5).all() and (paired["n_up"] + paired["n_down"] <= paired["n_pairs"]).all()
    assert paired["pvalue"].is_monotonic_increasing
    unpaired = F.fit_contrast(expr, "log2", sheet, "responder_vs_non_responder_pre", "resp")
    assert list(unpaired.columns) == RESULT_COLUMNS + ["df_total"]
    inter = F.fit_contrast(expr, "log2", sheet, "interaction", "resp")
    assert list(inter.columns) == RESULT_COLUMNS + ["df_total"]


def _sheet(patients, responses, extra=()):
    rows = [(f"{p}_{t}", p, t, r, True) for p, r in zip(patients, responses) for t in ("pre", "post")]
    rows += list(extra)
    return pd.DataFrame(rows, columns=["sample", "patient", "timepoint", "response", "in_pair"])


def test_errors_name_dataset_contrast_and_reason():
    sheet = _sheet(["A", "B", "C"], [None, None, None])
    with pytest.raises(C.ContrastError, match=r"'ds1'.*'interaction'.*no response data"):
        C.build_contrast(sheet, "interaction", "ds1")
    sheet = _sheet(["A", "B", "C", "D"], ["responder", "responder", "responder", "non_responder"])
    with pytest.raises(C.ContrastError, match=r"'post_vs_pre_non_responder'.*1 complete pairs of non_responders"):
        C.build_contrast(sheet, "post_vs_pre_non_responder", "ds1")
    with pytest.raises(C.ContrastError, match=r"1 pre-treatment non_responder samples"):
        C.build_contrast(sheet, "responder_vs_non_responder_pre", "ds1")
    with pytest.raises(C.ContrastError, match="unknown contrast 'post_minus_baseline'"):
        C.build_contrast(sheet, "post_minus_baseline", "ds1")
    # <target>_vs_<reference> names any two timepoints; one without samples is named
    with pytest.raises(C.ContrastError, match=r"'post_vs_baseline'.*timepoint\(s\) \['baseline'\] have no usable"):
        C.build_contrast(sheet, "post_vs_baseline", "ds1")
    # a covariate confounded with response in the unpaired contrast: aliased, an error
    sheet3 = _sheet(["A", "B", "C", "D"], ["responder", "responder", "non_responder", "non_responder"])
    sheet3["arm"] = sheet3["response"].map({"responder": "x", "non_responder": "y"})
    with pytest.raises(C.ContrastError, match=r"'responder_vs_non_responder_pre'.*rank 2 for 3"):
        C.build_contrast(sheet3, "responder_vs_non_responder_pre", "ds1", covariates=["arm"])
    with pytest.raises(C.ContrastError, match=r"covariate 'agee' is not a sample sheet column"):
        C.build_contrast(sheet3, "post_vs_pre", "ds1", covariates=["agee"])
    sheet3.loc[2, "arm"] = None
    with pytest.raises(C.ContrastError, match=r"covariate 'arm' is missing for sample\(s\) \['B_pre'\]"):
        C.build_contrast(sheet3, "post_vs_pre", "ds1", covariates=["arm"])
    sheet2 = _sheet(["A", "B"], ["responder", "non_responder"])
    with pytest.raises(C.ContrastError, match="0 residual df"):  # 2 pairs, 2 groups: saturated
        C.build_contrast(sheet2, "interaction", "ds1", min_per_group=1, min_pairs=2)
    bad = sheet.assign(response="pCR")
    with pytest.raises(C.ContrastError, match="pCR"):
        C.build_contrast(bad, "post_vs_pre", "ds1")


def test_covariate_hook_and_validate():
    sheet = _sheet(["A", "B", "C", "D"], ["responder", "non_responder"] * 2)
    sheet["batch"] = ["b1", "b2", "b2", "b1", "b1", "b1", "b2", "b2"]  # not aliased
    spec = C.build_contrast(sheet, "post_vs_pre", "ds", covariates=["batch"])
    assert list(spec.design.columns)[-1] == "batch[b2]"
    assert spec.contrast.sum() == 1 and spec.contrast["timepoint[post]"] == 1
    summary = C.validate_contrasts(sheet, ["post_vs_pre", "interaction"], "ds")
    old = {k: summary["post_vs_pre"][k] for k in ("samples", "coefficients", "df_residual", "pairs")}
    assert old == {"samples": 8, "coefficients": 5, "df_residual": 3, "pairs": 4}
    assert summary["post_vs_pre"]["patient_model"] == "fixed block"
    assert summary["post_vs_pre"]["samples_entered"] == 8
    assert summary["interaction"]["n_responder"] == 2
    assert vocabulary.contrast_names() == list(C.CONTRASTS)


def test_wilcoxon_follows_r_with_ties_and_zeros():
    """Constants from R 4.2: wilcox.test(d1) (ties and a zero: normal approximation with
    continuity correction), wilcox.test(d2) (exact), t.test(d1)."""
    d1 = [0.3, -0.2, 0.3, 0.5, 0, 1.1, 0.7, -0.2]
    d2 = [0.5, -0.1, 0.8, 1.2, 0.35, 0.9, -0.4, 1.5, 0.05]
    n = 9
    values = pd.DataFrame(
        [[0.0] * n + d1 + [np.nan], [0.0] * n + d2],
        index=["tied", "clean"],
        columns=[f"p{j}_pre" for j in range(n)] + [f"p{j}_post" for j in range(n)],
    )
    pairs = pd.DataFrame({"pre": values.columns[:n], "post": values.columns[n:]})
    out = F.paired_checks(values, pairs)
    np.testing.assert_allclose(out.loc["tied", "wilcoxon_p"], 0.07488031404005388, rtol=1e-12)
    np.testing.assert_allclose(out.loc["clean", "wilcoxon_p"], 0.0546875, rtol=1e-12)
    np.testing.assert_allclose(out.loc["tied", "paired_t_p"], 0.091297675157939698, rtol=1e-12)
    assert out.loc["tied", ["n_pairs", "n_up", "n_down"]].tolist() == [8, 5, 2]


# ---- covariates (cov_* fixtures: limma 3.54 with the same designs, see reference.R) --------

COV = ["batch", "age", "site"]


@pytest.mark.parametrize(
    "name", ["post_vs_pre", "post_vs_pre_responder", "interaction", "responder_vs_non_responder_pre"]
)
def test_covariates_match_limma(name):
    """batch varies within patients (kept everywhere); age and site are patient-level
    (dropped from paired designs, kept in the unpaired one). Measured max |dt| 8.5e-14."""
    expr = read_tsv(FIX / "cov_arrays_expr.tsv", index_col=0)
    sheet = read_tsv(FIX / "cov_samples.tsv", dtype={"sample": str, "patient": str})
    limma = read_tsv(FIX / "cov_arrays_limma.tsv")
    ours = F.fit_contrast(expr, "log2", sheet, name, "cov", covariates=COV).set_index("gene")
    ref = limma[limma["contrast"] == name].set_index("gene").loc[ours.index]
    assert len(ours) == 200
    assert np.max(np.abs(ours["stat"] - ref["t"])) < 1e-10
    assert np.max(np.abs(ours["log2fc"] - ref["logFC"])) < 1e-10
    assert np.max(np.abs(np.log10(ours["pvalue"]) - np.log10(ref["P.Value"]))) < 1e-10
    np.testing.assert_allclose(ours["df_total"], ref["df_total"], rtol=1e-12)
    # without the covariate the batch genes' statistics do change (the covariate is used)
    plain = F.fit_contrast(expr, "log2", sheet, name, "cov").set_index("gene").loc[ours.index]
    assert np.max(np.abs(plain["stat"] - ours["stat"])) > 1


def test_covariate_dropping_is_logged(caplog):
    sheet = read_tsv(FIX / "cov_samples.tsv", dtype={"sample": str, "patient": str})
    with caplog.at_level("INFO", logger="prepost.de.contrasts"):
        C.build_contrast(sheet, "interaction", "cov", covariates=["age"])
    assert "covariate column 'age' dropped: constant within every patient" in caplog.text


def test_single_valued_covariate_is_dropped_and_reported():
    sheet = read_tsv(FIX / "cov_samples.tsv", dtype={"sample": str, "patient": str})
    sheet["tissue"] = "breast"
    spec = C.build_contrast(sheet, "responder_vs_non_responder_pre", "cov", covariates=["tissue", "batch"])
    assert spec.summary["covariates"] == ["batch[b2]"]
    assert spec.summary["covariates_dropped"] == {"tissue": "a single value ('breast') in the samples used"}
