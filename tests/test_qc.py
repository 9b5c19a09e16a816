"""prepost.qc: PCA against the covariance eigen-decomposition, pair identity with a planted label
swap, the outlier rule with a planted outlier, and deterministic files."""

import json

import numpy as np
import pandas as pd
import pytest

from prepost.qc import run as qc_run
from prepost.qc import samples as qc
from prepost.de.vst import vst


def _cohort(n_pat=8, n_genes=1000, seed=1, noise=0.3):
    """log2 data: a strong per-patient profile shared by pre and post, a common post shift."""
    rng = np.random.default_rng(seed)
    base = rng.normal(8, 2, n_genes)
    cols, rows = {}, []
    shift = rng.normal(0, 0.5, n_genes) * (rng.random(n_genes) < 0.1)
    for p in range(1, n_pat + 1):
        prof = rng.normal(0, 1, n_genes)
        for tp in ("pre", "post"):
            s = f"S{p:02d}{tp}"
            cols[s] = base + prof + (shift if tp == "post" else 0) + rng.normal(0, noise, n_genes)
            rows.append({"sample": s, "patient": f"P{p:02d}", "timepoint": tp,
                         "response": "responder" if p % 2 else "non_responder", "in_pair": True})
    data = pd.DataFrame(cols, index=[f"g{i:04d}" for i in range(n_genes)])
    return data, pd.DataFrame(rows)


def test_pca_equals_covariance_eigendecomposition():
    data, _ = _cohort(n_pat=5, n_genes=800)
    scores, frac = qc.pca(data, n_top=300)
    rv = data.var(axis=1, ddof=1)
    top = data.loc[rv.sort_values(ascending=False, kind="mergesort").index[:300]]
    x = top.to_numpy().T
    x = x - x.mean(axis=0)
    cov = x.T @ x / (x.shape[0] - 1)
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    k = x.shape[0] - 1
    np.testing.assert_allclose(frac, evals[:k] / evals.sum(), rtol=1e-9)
    ref = x @ evecs[:, :k]
    got = scores.to_numpy()
    for j in range(k):  # equal up to the sign of each component
        sgn = np.sign(ref[:, j] @ got[:, j])
        np.testing.assert_allclose(got[:, j], sgn * ref[:, j], atol=1e-8)
    # the sign convention: the largest loading of each component is positive
    loadings = np.linalg.lstsq(x, got, rcond=None)[0]
    assert np.all(loadings[np.abs(loadings).argmax(axis=0), range(k)] > 0)


def test_top_variable_takes_the_largest_variances():
    data, _ = _cohort(n_pat=3, n_genes=200)
    top = qc.top_variable(data, 50)
    v = data.var(axis=1, ddof=1)
    assert set(top.index) == set(v.nlargest(50).index)


def test_planted_outlier_is_the_only_one_flagged():
    data, sheet = _cohort(n_pat=10, seed=3)
    rng = np.random.default_rng(7)
    data["S04pre"] = data["S04pre"] + rng.normal(0, 2.5, len(data))  # a degraded sample
    out = qc.correlation_outliers(data)
    assert out.index[out["outlier"]].tolist() == ["S04pre"]
    med = out["median_correlation"]
    q1, q3 = np.quantile(med, [0.25, 0.75])
    assert out["outlier_threshold"].iloc[0] == pytest.approx(q1 - 3 * (q3 - q1))
    # direct check of the median correlation of one sample
    c = np.corrcoef(data.to_numpy().T)[0, 1:]
    assert med.iloc[0] == pytest.approx(np.median(c))


def test_clean_cohorts_rarely_flagged_and_small_cohorts_are_not_judged():
    """False flags of the 3 IQR fence in clean simulated cohorts (documented in prepost.qc)."""
    flags = sum(int(qc.correlation_outliers(_cohort(n_pat=10, seed=s, n_genes=600)[0])["outlier"].sum())
                for s in range(20))
    assert flags <= 1  # of 400 clean samples
    data, _ = _cohort(n_pat=10, seed=4)
    assert qc.correlation_outliers(data.iloc[:, :3])["outlier"].sum() == 0
    assert np.isnan(qc.correlation_outliers(data.iloc[:, :3])["outlier_threshold"]).all()


def test_counts_use_the_vst_and_missing_values_are_dropped():
    rng = np.random.default_rng(5)
    data, sheet = _cohort(n_pat=4, n_genes=300, noise=0.2)
    counts = pd.DataFrame(rng.poisson(np.exp2(data.to_numpy() - 2)), index=data.index, columns=data.columns)
    res = qc.qc_dataset(counts, "counts", sheet)
    pd.testing.assert_frame_equal(res.matrix, vst(counts))
    assert res.samples["library_size"].tolist() == counts.sum().tolist()
    logged = data.copy()
    logged.iloc[3, 2] = np.nan
    res = qc.qc_dataset(logged, "log2", sheet)
    assert res.dropped_genes == 1 and len(res.matrix) == len(data) - 1


def test_unknown_sample_is_named():
    data, sheet = _cohort(n_pat=3)
    with pytest.raises(ValueError, match="S03post"):
        qc.qc_dataset(data, "log2", sheet[sheet["sample"] != "S03post"])


def test_run_qc_writes_identical_files_twice(tmp_path):
    data, sheet = _cohort(n_pat=5, n_genes=400)
    rng = np.random.default_rng(2)
    counts = pd.DataFrame(rng.poisson(np.exp2(data.to_numpy() - 3)), index=data.index, columns=data.columns)
    counts.to_parquet(tmp_path / "expr.parquet")
    sheet["usable"] = True
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    sheet.assign(status="kept", reason="complete pair")[["sample", "patient", "timepoint", "status", "reason"]].to_csv(
        tmp_path / "pairs.tsv", sep="\t", index=False)
    (tmp_path / "prepare.json").write_text(json.dumps({"values": "counts", "dataset": "t"}))
    tables = ["samples_qc", "pair_identity", "pair_distances", "pc_associations", "exclusions",
              "samples_used", "pairs_used"]
    plots = ["pca", "correlation", "distribution", "scree", "associations"]
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        out = {**{t: d / f"{t}.tsv" for t in tables}, **{p: d / f"{p}.png" for p in plots}}
        qc_run.run_qc(tmp_path / "expr.parquet", tmp_path / "samples.tsv", tmp_path / "prepare.json",
                      tmp_path / "pairs.tsv", "t", out=out)
        outs.append([out[k].read_bytes() for k in [*tables, *plots]])
    assert outs[0] == outs[1]
    assert all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in outs[0][len(tables):])
    ident = pd.read_csv(tmp_path / "a/pair_identity.tsv", sep="\t")
    assert len(ident) == 5 and "z_own" in ident
    used = pd.read_csv(tmp_path / "a/samples_used.tsv", sep="\t")
    assert used["sample"].tolist() == sheet["sample"].tolist() and not used["qc_excluded"].any()
