"""Simulate small paired pre/post datasets with known effects, as inputs for reference.R.

Writes TSV files (fixed seed, deterministic) into OUTDIR (default tests/fixtures/de):
  arrays_expr.tsv     500 genes x 8 patients x pre/post, log2 scale, NaNs in a few genes
  arrays_inf_expr.tsv 40 genes x 4 patients, identical residuals in every gene, so limma's
                      prior df is infinite (the df.prior = Inf branch)
  arrays_samples.tsv, arrays_inf_samples.tsv   sample, patient, timepoint
  counts.tsv          300 genes x 6 patients x pre/post, negative binomial, 2 all-zero genes
  counts_samples.tsv  patient ids look numeric ("7".."12") on purpose
  truth_arrays.tsv, truth_counts.tsv   gene, true log2 fold change
  resp_arrays_expr.tsv, resp_arrays_samples.tsv, resp_truth_arrays.tsv
                      contrasts beyond post vs pre (own seed, so the files above do not move):
                      150 genes; 5 responder + 5 non-responder + 1 unknown-response pairs, two
                      unpaired pre samples with a response, one unpaired post, one excluded
                      pre sample (usable false); NaNs in g0003-g0006
  resp_counts.tsv, resp_counts_samples.tsv, resp_truth_counts.tsv
                      120 genes; 5 responder + 5 non-responder pairs
  cov_arrays_expr.tsv, cov_counts.tsv, cov_samples.tsv, cov_truth.tsv
                      covariates (own seed): 200 genes; 7 responder + 5 non-responder pairs;
                      sample-level `batch` (varies within patients), patient-level `age`
                      (numeric) and `site` (categorical); planted Cook's outliers in counts
                      c0003 (a responder pre sample) and c0004 (a non-responder pre sample)
  Sample sheets have the prepare columns sample, patient, timepoint, response (empty =
  unknown), in_pair, usable. Truth columns: post (post-pre in non-responders), interaction
  (extra post-pre in responders), response_pre (responder minus non-responder at baseline).

Usage: python benchmarks/r_reference/simulate.py [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611


def _sheet(patients: list[str]) -> pd.DataFrame:
    rows = [(f"S{p}_{t}", p, t) for p in patients for t in ("pre", "post")]
    return pd.DataFrame(rows, columns=["sample", "patient", "timepoint"])


def simulate_arrays(rng: np.random.Generator, n_genes=500, n_patients=8):
    patients = [f"P{i:02d}" for i in range(1, n_patients + 1)]
    sheet = _sheet(patients)
    genes = [f"g{i:04d}" for i in range(1, n_genes + 1)]
    base = rng.normal(8, 1.5, n_genes)[:, None]
    patient_eff = rng.normal(0, 0.6, (n_genes, n_patients))
    # gene-wise noise variances from a scaled inverse chi-square: a finite limma prior df
    sd = np.sqrt(0.09 * 6 / rng.chisquare(6, n_genes))[:, None]
    truth = np.zeros(n_genes)
    de = rng.choice(n_genes, 50, replace=False)
    truth[de] = rng.choice([-1.0, 1.0], 50) * rng.uniform(0.7, 1.5, 50)
    is_post = (sheet["timepoint"] == "post").to_numpy(float)
    pidx = sheet["patient"].map({p: i for i, p in enumerate(patients)}).to_numpy()
    y = (
        base
        + patient_eff[:, pidx]
        + truth[:, None] * is_post
        + sd * rng.normal(size=(n_genes, len(sheet)))
    )
    y = np.round(y, 6)
    # missing values, each a different pattern (genes chosen among non-DE and DE alike)
    col = {s: j for j, s in enumerate(sheet["sample"])}
    nan_cells = {
        "g0003": ["SP01_pre"],
        "g0004": ["SP02_post"],
        "g0005": ["SP02_post"],  # same pattern as g0004: fitted together
        "g0006": ["SP03_pre", "SP03_post"],  # a whole patient missing: its column is aliased
        "g0007": ["SP01_pre", "SP04_post", "SP07_pre"],
        "g0008": ["SP05_pre", "SP05_post", "SP06_pre", "SP08_post"],
        "g0009": [s for s in sheet["sample"] if s.endswith("_post")],  # timepoint not estimable
        "g0010": list(sheet["sample"]),  # all missing
    }
    gi = {g: i for i, g in enumerate(genes)}
    for g, cells in nan_cells.items():
        y[gi[g], [col[c] for c in cells]] = np.nan
    expr = pd.DataFrame(y, index=pd.Index(genes, name="gene"), columns=sheet["sample"])
    return expr, sheet, pd.DataFrame({"gene": genes, "log2fc": truth})


def simulate_arrays_inf(rng: np.random.Generator, n_genes=40, n_patients=4):
    """Every gene gets the same residual vector: equal residual variances, so limma's
    fitFDist finds evar < 0 and sets df.prior = Inf."""
    patients = [f"Q{i}" for i in range(1, n_patients + 1)]
    sheet = _sheet(patients)
    n = len(sheet)
    x = np.column_stack(
        [np.ones(n)]
        + [(sheet["patient"] == p).to_numpy(float) for p in patients[1:]]
        + [(sheet["timepoint"] == "post").to_numpy(float)]
    )
    q, _ = np.linalg.qr(x, mode="complete")
    resid = q[:, x.shape[1] :] @ rng.normal(size=n - x.shape[1])  # orthogonal to the design
    beta = rng.normal(0, 1, (n_genes, x.shape[1]))
    beta[:, 0] += 7
    y = beta @ x.T + 0.3 * resid
    genes = [f"h{i:03d}" for i in range(1, n_genes + 1)]
    return (
        pd.DataFrame(np.round(y, 9), index=pd.Index(genes, name="gene"), columns=sheet["sample"]),
        sheet,
    )


def simulate_counts(rng: np.random.Generator, n_genes=300, n_patients=6):
    patients = [str(i) for i in range(7, 7 + n_patients)]  # "7".."12": numeric-looking ids
    sheet = _sheet(patients)
    genes = [f"c{i:04d}" for i in range(1, n_genes + 1)]
    log_mu = rng.normal(np.log(200), 1.6, n_genes)[:, None]
    patient_eff = rng.normal(0, 0.4, (n_genes, n_patients))
    truth = np.zeros(n_genes)
    de = rng.choice(n_genes, 45, replace=False)
    truth[de] = rng.choice([-1.0, 1.0], 45) * rng.uniform(0.8, 2.0, 45)
    is_post = (sheet["timepoint"] == "post").to_numpy(float)
    pidx = sheet["patient"].map({p: i for i, p in enumerate(patients)}).to_numpy()
    size_factor = rng.uniform(0.6, 1.6, len(sheet))
    mu = np.exp(log_mu + patient_eff[:, pidx] + np.log(2) * truth[:, None] * is_post) * size_factor
    disp = (0.04 + 2.0 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.4, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))
    counts[[0, 1], :] = 0  # all-zero genes: DESeq2 reports NA statistics
    counts[2, 5] = counts[2].max() * 30  # a single extreme count
    df = pd.DataFrame(
        counts.astype(np.int64), index=pd.Index(genes, name="gene"), columns=sheet["sample"]
    )
    return df, sheet, pd.DataFrame({"gene": genes, "log2fc": truth})


RESP_SEED = 20240612


def _resp_sheet(groups: dict[str, str], unpaired: list[tuple]) -> pd.DataFrame:
    rows = [(f"{p}_{t}", p, t, r, True, True) for p, r in groups.items() for t in ("pre", "post")]
    rows += [(f"{p}_{t}", p, t, r, False, usable) for p, t, r, usable in unpaired]
    return pd.DataFrame(rows, columns=["sample", "patient", "timepoint", "response", "in_pair", "usable"])


def _resp_effects(rng, n_genes, n_each):
    """Three sets of true effects (log2): post-pre in non-responders, extra post-pre in
    responders (interaction), responder-minus-non-responder at baseline."""
    truth = pd.DataFrame(0.0, index=range(n_genes), columns=["post", "interaction", "response_pre"])
    for col in truth.columns:
        idx = rng.choice(n_genes, n_each, replace=False)
        truth.loc[idx, col] = rng.choice([-1.0, 1.0], n_each) * rng.uniform(1.0, 2.0, n_each)
    return truth


def _resp_mean(sheet, truth, patient_eff, patients):
    is_post = (sheet["timepoint"] == "post").to_numpy(float)
    is_resp = (sheet["response"] == "responder").to_numpy(float)
    pidx = sheet["patient"].map({p: i for i, p in enumerate(patients)}).to_numpy()
    return (
        patient_eff[:, pidx]
        + truth[["post"]].to_numpy() * is_post
        + truth[["interaction"]].to_numpy() * is_post * is_resp
        + truth[["response_pre"]].to_numpy() * is_resp
    )


def simulate_resp_arrays(rng: np.random.Generator, n_genes=150):
    groups = {f"R0{i}": "responder" for i in range(1, 6)}
    groups |= {f"N0{i}": "non_responder" for i in range(1, 6)}
    groups["U01"] = ""
    unpaired = [
        ("R06", "pre", "responder", True),
        ("N06", "pre", "non_responder", True),
        ("U02", "post", "", True),
        ("N07", "pre", "non_responder", False),  # excluded in config: never used
    ]
    sheet = _resp_sheet(groups, unpaired)
    patients = list(dict.fromkeys(sheet["patient"]))
    genes = [f"g{i:04d}" for i in range(1, n_genes + 1)]
    truth = _resp_effects(rng, n_genes, 15)
    base = rng.normal(8, 1.5, n_genes)[:, None]
    patient_eff = rng.normal(0, 0.5, (n_genes, len(patients)))
    sd = np.sqrt(0.09 * 6 / rng.chisquare(6, n_genes))[:, None]
    y = base + _resp_mean(sheet, truth, patient_eff, patients)
    y = np.round(y + sd * rng.normal(size=y.shape), 6)
    col = {s: j for j, s in enumerate(sheet["sample"])}
    nan_cells = {
        "g0003": ["R01_pre"],
        "g0004": ["N02_pre", "N02_post"],  # a whole patient: aliased column
        "g0005": ["R06_pre", "N01_post"],
        "g0006": [f"R0{i}_post" for i in range(1, 6)],  # responder effect not estimable
    }
    for g, cells in nan_cells.items():
        y[genes.index(g), [col[c] for c in cells]] = np.nan
    expr = pd.DataFrame(y, index=pd.Index(genes, name="gene"), columns=sheet["sample"])
    return expr, sheet, truth.assign(gene=genes)[["gene", *truth.columns]]


def simulate_resp_counts(rng: np.random.Generator, n_genes=120):
    groups = {f"R0{i}": "responder" for i in range(1, 6)}
    groups |= {f"N0{i}": "non_responder" for i in range(1, 6)}
    sheet = _resp_sheet(groups, [])
    patients = list(groups)
    genes = [f"c{i:04d}" for i in range(1, n_genes + 1)]
    truth = _resp_effects(rng, n_genes, 15)
    log_mu = rng.normal(np.log(300), 1.4, n_genes)[:, None]
    patient_eff = rng.normal(0, 0.3, (n_genes, len(patients)))
    size_factor = rng.uniform(0.7, 1.4, len(sheet))
    mu = np.exp(log_mu + np.log(2) * _resp_mean(sheet, truth, patient_eff / np.log(2), patients))
    mu = mu * size_factor
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.3, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))
    counts[0, :] = 0
    df = pd.DataFrame(counts.astype(np.int64), index=pd.Index(genes, name="gene"), columns=sheet["sample"])
    return df, sheet, truth.assign(gene=genes)[["gene", *truth.columns]]


COV_SEED = 20240613


def simulate_cov(rng: np.random.Generator, n_genes=200):
    """Arrays and counts sharing one sheet with covariates; batch and age have true effects."""
    groups = {f"R0{i}": "responder" for i in range(1, 8)}
    groups |= {f"N0{i}": "non_responder" for i in range(1, 6)}
    sheet = _resp_sheet(groups, [])
    patients = list(groups)
    n = len(sheet)
    # batch varies within patients (pre and post processed apart for some), both levels in
    # both timepoints and both response groups
    half = np.array(["b1", "b2"] * (len(patients) // 2))
    tp = sheet["timepoint"].to_numpy()
    sheet["batch"] = ""
    sheet.loc[tp == "pre", "batch"] = rng.permutation(half)
    sheet.loc[tp == "post", "batch"] = rng.permutation(half)
    age = dict(zip(patients, rng.integers(35, 76, len(patients))))
    site = dict(zip(patients, ["A", "B", "C", "A", "B", "C", "A", "B", "C", "A", "B", "C"]))
    sheet["age"] = sheet["patient"].map(age).astype(int)
    sheet["site"] = sheet["patient"].map(site)
    genes = [f"c{i:04d}" for i in range(1, n_genes + 1)]
    truth = _resp_effects(rng, n_genes, 20)
    truth["batch"] = 0.0
    idx = rng.choice(n_genes, 30, replace=False)
    truth.loc[idx, "batch"] = rng.choice([-1.0, 1.0], 30) * rng.uniform(0.8, 1.5, 30)
    truth["age"] = 0.0
    idx = rng.choice(n_genes, 20, replace=False)
    truth.loc[idx, "age"] = rng.choice([-1.0, 1.0], 20) * rng.uniform(0.02, 0.04, 20)
    is_b2 = (sheet["batch"] == "b2").to_numpy(float)
    age_c = sheet["age"].to_numpy(float) - 55
    patient_eff = rng.normal(0, 0.4, (n_genes, len(patients)))
    lin = (
        _resp_mean(sheet, truth, patient_eff, patients)
        + truth[["batch"]].to_numpy() * is_b2
        + truth[["age"]].to_numpy() * age_c
    )
    sd = np.sqrt(0.09 * 6 / rng.chisquare(6, n_genes))[:, None]
    base = rng.normal(8, 1.5, n_genes)[:, None]
    y = np.round(base + lin + sd * rng.normal(size=lin.shape), 6)
    expr = pd.DataFrame(y, index=pd.Index([f"g{i:04d}" for i in range(1, n_genes + 1)], name="gene"), columns=sheet["sample"])
    log_mu = rng.normal(np.log(300), 1.4, n_genes)[:, None]
    size_factor = rng.uniform(0.7, 1.4, n)
    mu = np.exp(log_mu + np.log(2) * lin) * size_factor
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.3, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))
    counts[0, :] = 0
    col = {s: j for j, s in enumerate(sheet["sample"])}
    # Cook's outliers on pre samples: c0003 in the responder cell (7 pre samples: DESeq2
    # replaces it in the unpaired contrast), c0004 in the non-responder cell (5: p set to NA)
    for gene, sample in ((2, "R03_pre"), (3, "N02_pre")):
        counts[gene, col[sample]] = int(counts[gene].max() * 40 + 500)
    counts = pd.DataFrame(counts.astype(np.int64), index=pd.Index(genes, name="gene"), columns=sheet["sample"])
    return expr, counts, sheet, truth.assign(gene=genes)[["gene", *truth.columns]]


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    expr, sheet, truth = simulate_arrays(rng)
    expr.to_csv(outdir / "arrays_expr.tsv", sep="\t", na_rep="NA", float_format="%.6f")
    sheet.to_csv(outdir / "arrays_samples.tsv", sep="\t", index=False)
    truth.to_csv(outdir / "truth_arrays.tsv", sep="\t", index=False, float_format="%.6f")
    expr_inf, sheet_inf = simulate_arrays_inf(rng)
    expr_inf.to_csv(outdir / "arrays_inf_expr.tsv", sep="\t", float_format="%.9f")
    sheet_inf.to_csv(outdir / "arrays_inf_samples.tsv", sep="\t", index=False)
    counts, csheet, ctruth = simulate_counts(rng)
    counts.to_csv(outdir / "counts.tsv", sep="\t")
    csheet.to_csv(outdir / "counts_samples.tsv", sep="\t", index=False)
    ctruth.to_csv(outdir / "truth_counts.tsv", sep="\t", index=False, float_format="%.6f")

    rng = np.random.default_rng(RESP_SEED)
    expr, sheet, truth = simulate_resp_arrays(rng)
    expr.to_csv(outdir / "resp_arrays_expr.tsv", sep="\t", na_rep="NA", float_format="%.6f")
    sheet.to_csv(outdir / "resp_arrays_samples.tsv", sep="\t", index=False)
    truth.to_csv(outdir / "resp_truth_arrays.tsv", sep="\t", index=False, float_format="%.6f")
    counts, csheet, ctruth = simulate_resp_counts(rng)
    counts.to_csv(outdir / "resp_counts.tsv", sep="\t")
    csheet.to_csv(outdir / "resp_counts_samples.tsv", sep="\t", index=False)
    ctruth.to_csv(outdir / "resp_truth_counts.tsv", sep="\t", index=False, float_format="%.6f")

    rng = np.random.default_rng(COV_SEED)
    expr, counts, sheet, truth = simulate_cov(rng)
    expr.to_csv(outdir / "cov_arrays_expr.tsv", sep="\t", float_format="%.6f")
    counts.to_csv(outdir / "cov_counts.tsv", sep="\t")
    sheet.to_csv(outdir / "cov_samples.tsv", sep="\t", index=False)
    truth.to_csv(outdir / "cov_truth.tsv", sep="\t", index=False, float_format="%.6f")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "tests/fixtures/de"
    )
