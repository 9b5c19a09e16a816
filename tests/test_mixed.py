"""prepost.de.mixed against R: limma 3.54 duplicateCorrelation + lmFit(block=) on arrays (with
missing values, a covariate) and the voom / duplicateCorrelation twice pipeline on counts
(edgeR 3.40 filterByExpr + TMM), on a cohort where half the patients are unpaired; R's lowess.
Fixtures and the script that made them: tests/fixtures/mixed/ (make_fixture.R). No R needed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prepost.de import mixed

FIX = Path(__file__).parent / "fixtures" / "mixed"
TOL_T = 1e-6  # issue 18: |d t| < 1e-6 and |d log10 p| < 1e-6 (measured ~1e-13)


def _read(name, **kw):
    return pd.read_csv(FIX / name, sep="\t", **kw)


@pytest.fixture(scope="module")
def sheet():
    return _read("samples.tsv").set_index("sample")


def _design(sheet, extra=None):
    d = pd.DataFrame({"Intercept": 1.0, "post": (sheet["timepoint"] == "post").astype(float)},
                     index=sheet.index)
    if extra is not None:
        d = d.join(extra)
    return d


def _assert_parity(ours, ref, tcol="t", pcol="p"):
    ours = ours.set_index("gene")
    assert set(ours.index) == set(ref.index[ref[tcol].notna()])
    ref = ref.loc[ours.index]
    dt = np.max(np.abs(ours["stat"] - ref[tcol]))
    dp = np.max(np.abs(np.log10(ours["pvalue"]) - np.log10(ref[pcol])))
    assert dt < TOL_T, dt
    assert dp < TOL_T, dp
    np.testing.assert_allclose(ours["log2fc"], ref["coef"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours["df_total"], ref["df_total"], rtol=1e-10)
    return dt, dp


def test_lowess_matches_r_with_ties_and_delta():
    data, ref = _read("lowess_in.tsv"), _read("lowess_out.tsv")
    x, y = mixed.r_lowess(data["x"].to_numpy(), data["y"].to_numpy(), f=0.5)
    np.testing.assert_array_equal(x, ref["x"])
    assert np.max(np.abs(y - ref["y"])) < 1e-10


def test_duplicate_correlation_per_gene_and_consensus_with_missing_values(sheet):
    x = _read("arrays_expr.tsv", index_col=0)[list(sheet.index)]
    ref = _read("arrays_block_limma.tsv", index_col=0)
    dc = mixed.duplicate_correlation(x.to_numpy(), _design(sheet).to_numpy(), sheet["patient"].to_numpy())
    # genes without enough samples or blocks (g0034, g0035) are NA in both
    assert np.array_equal(np.isnan(dc["atanh"]), ref["atanh_cor"].isna().to_numpy())
    assert np.isnan(dc["atanh"][[33, 34]]).all()
    assert np.nanmax(np.abs(dc["atanh"] - ref["atanh_cor"].to_numpy())) < 1e-9
    assert abs(dc["consensus"] - ref["consensus"].iloc[0]) < 1e-12


def test_block_moderated_t_matches_limma_half_unpaired_with_missing_values(sheet):
    x = _read("arrays_expr.tsv", index_col=0)
    ref = _read("arrays_block_limma.tsv", index_col=0)
    out = mixed.block_moderated_t(x, _design(sheet), "post", sheet["patient"])
    _assert_parity(out, ref)
    # the genes with missing values are fitted on their own samples, as gls.series
    nan_genes = ["g0031", "g0032", "g0033", "g0034", "g0036"]
    part = out.set_index("gene").loc[nan_genes]
    np.testing.assert_allclose(part["stat"], ref.loc[nan_genes, "t"], atol=1e-9)
    assert "g0035" not in set(out["gene"])  # every value missing
    fit = out.attrs["fit"]
    assert abs(fit["consensus_correlation"] - ref["consensus"].iloc[0]) < 1e-12
    assert abs(fit["s2_prior"] - ref["s2_prior"].iloc[0]) < 1e-10
    assert abs(fit["df_prior"] - ref["df_prior"].iloc[0]) < 1e-8
    # planted: g0001-g0015 up, g0016-g0030 down
    top = out.set_index("gene")
    assert (top.loc[[f"g{i:04d}" for i in range(1, 16)], "log2fc"] > 0).all()
    assert (top.loc[[f"g{i:04d}" for i in range(16, 31)], "log2fc"] < 0).all()


def test_block_moderated_t_with_a_covariate(sheet):
    x = _read("arrays_cov_expr.tsv", index_col=0)
    ref = _read("arrays_cov_limma.tsv", index_col=0)
    batch = _read("batch.tsv").set_index("sample")["batch"].astype(float)
    out = mixed.block_moderated_t(x, _design(sheet, batch), "post", sheet["patient"])
    _assert_parity(out, ref)
    assert abs(out.attrs["fit"]["consensus_correlation"] - ref["consensus"].iloc[0]) < 1e-12


def test_filter_tmm_and_voom_weights_match_edger_and_limma(sheet):
    counts = _read("counts.tsv", index_col=0)[list(sheet.index)].to_numpy(float)
    design = _design(sheet).to_numpy()
    keep = mixed.filter_by_expr(counts, design)
    assert np.array_equal(keep, _read("counts_keep.tsv")["keep"].to_numpy())
    norm = _read("counts_norm.tsv")
    y = counts[keep]
    lib = y.sum(axis=0)
    np.testing.assert_array_equal(lib, norm["lib_size"])
    nf = mixed.tmm_factors(y, lib)
    assert np.max(np.abs(nf - norm["norm_factor"])) < 1e-12
    ref = _read("counts_voom_limma.tsv", index_col=0)
    _, w = mixed.voom(y, design, lib * nf, block=sheet["patient"].to_numpy(),
                      correlation=ref["consensus1"].iloc[0])
    w_r = _read("counts_voom2_weights.tsv", index_col=0).to_numpy()
    assert np.max(np.abs(w / w_r - 1)) < 1e-9


def test_voom_block_pipeline_matches_limma(sheet):
    counts = _read("counts.tsv", index_col=0)
    ref = _read("counts_voom_limma.tsv", index_col=0)
    out = mixed.voom_block(counts, _design(sheet), "post", sheet["patient"])
    _assert_parity(out, ref)
    fit = out.attrs["fit"]
    assert abs(fit["first_correlation"] - ref["consensus1"].iloc[0]) < 1e-12
    assert abs(fit["consensus_correlation"] - ref["consensus2"].iloc[0]) < 1e-12
    np.testing.assert_allclose(out.set_index("gene")["mean_expr"], ref.loc[out["gene"], "Amean"], atol=1e-10)
    assert fit["filtered_genes"] == 400 - len(ref)
    top = out.set_index("gene")
    up = [f"c{i:04d}" for i in range(9, 21)]
    assert (top.loc[up, "log2fc"] > 0).mean() > 0.9


def test_block_errors_name_the_problem(sheet):
    x = _read("arrays_cov_expr.tsv", index_col=0)
    d = _design(sheet)
    d["dup"] = d["post"]
    with pytest.raises(mixed.MixedModelError, match="rank-deficient"):
        mixed.block_moderated_t(x, d, "post", sheet["patient"])
    with pytest.raises(mixed.MixedModelError, match="no block"):
        mixed.block_moderated_t(x, _design(sheet), "post", sheet["patient"].iloc[2:])


def test_blocks_of_size_one_give_zero_correlation(sheet):
    one = sheet[sheet.index.str.startswith(("P11", "P12", "P13", "P14", "P15", "P16", "P17", "P18"))]
    x = _read("arrays_cov_expr.tsv", index_col=0)[list(one.index)]
    dc = mixed.duplicate_correlation(x.to_numpy(), _design(one).to_numpy(), one["patient"].to_numpy())
    assert dc["consensus"] == 0 and "size 1" in dc["note"]


def _pipeline_sheet():
    """The fixture cohort as prepare writes it (in_pair, usable, response)."""
    s = _read("samples.tsv")
    resp = _read("response.tsv", keep_default_na=False).set_index("patient")["response"]
    s["response"] = s["patient"].map(resp).replace("", np.nan)
    s["in_pair"] = s.groupby("patient")["timepoint"].transform("nunique") == 2
    s["usable"] = True
    return s


@pytest.mark.parametrize("values", ["log2", "counts"])
@pytest.mark.parametrize("name", ["post_vs_pre_responder", "post_vs_pre_non_responder", "interaction"])
def test_block_grouped_contrasts_match_limma(values, name):
    """pairing.unpaired: block through fit_contrast (sample selection and designs built by
    prepost.de.contrasts) against R's duplicateCorrelation + lmFit(block=) / voom pipeline."""
    from prepost.de.fit import fit_contrast

    ref = _read("grouped_limma.tsv", index_col=2)
    ref = ref[(ref["values"] == values) & (ref["contrast"] == name)]
    data = _read("arrays_expr.tsv" if values == "log2" else "counts.tsv", index_col=0)
    table = fit_contrast(data, values, _pipeline_sheet(), name, "fx", unpaired="block")
    _assert_parity(table[["gene", "stat", "pvalue", "log2fc", "df_total"]], ref)
    info = table.attrs["contrast"]
    assert abs(info["consensus_correlation"] - ref["consensus"].iloc[0]) < 1e-12
    assert info["patient_model"] == "random effect"
    assert info["samples_entered"] == 27  # 30 samples less P07 (pair) and P13 (pre only): unknown response


def test_fit_record_says_how_patients_were_modelled():
    from prepost.de.fit import fit_contrast
    from prepost.de.run import fit_summary

    data = _read("arrays_expr.tsv", index_col=0)
    sheet = _pipeline_sheet()
    block = fit_summary(fit_contrast(data, "log2", sheet, "post_vs_pre", "fx", unpaired="block"),
                        "fx", "post_vs_pre", "log2")
    drop = fit_summary(fit_contrast(data, "log2", sheet, "post_vs_pre", "fx"), "fx", "post_vs_pre", "log2")
    pre = fit_summary(fit_contrast(data, "log2", sheet, "responder_vs_non_responder_pre", "fx"),
                      "fx", "responder_vs_non_responder_pre", "log2")
    assert (block["samples_entered"], block["patients_paired"], block["patients_unpaired"]) == (30, 10, 10)
    assert block["patient_model"] == "random effect"
    ref = _read("arrays_block_limma.tsv")["consensus"].iloc[0]
    assert abs(block["consensus_correlation"] - ref) < 1e-12
    assert f"{ref:.3f}" in block["patient_model_reason"]
    assert (drop["samples_entered"], drop["patients_paired"], drop["patients_unpaired"]) == (20, 10, 0)
    assert drop["patient_model"] == "fixed block" and drop["consensus_correlation"] is None
    assert "10 sample(s) of patients with only one of them left out" in drop["patient_model_reason"]
    assert pre["patient_model"] == "unpaired" and pre["patients_unpaired"] == pre["samples_entered"]


def test_unpaired_setting_is_checked():
    from prepost.de.contrasts import ContrastError, build_contrast

    with pytest.raises(ContrastError, match="pairing.unpaired is 'keep'; expected one of"):
        build_contrast(_pipeline_sheet(), "post_vs_pre", "fx", unpaired="keep")
