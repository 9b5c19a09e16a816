"""Paired RNA-seq cohorts with known QC truth, for choosing and testing the QC rules.

Used by tests/test_qc*.py and benchmarks/qc/rates.py; never by the workflow. Parameters are
measured on the real GSE91061 counts (../shared/data, 43 complete pairs, genes with mean
normalised count > 100): median within-patient SD of log counts 0.30 (90th percentile 0.91),
median between-patient SD beyond it 0.43 (90th 1.31), implied NB dispersion ~0.09, size
factors 0.15-1.9, log mean normalised counts median 6.0 with a long low tail.

A clean cohort carries what real tumour cohorts carry and a QC rule must not call an outlier:

* patient effects on every gene (SD 0.45) and a **subtype**: 15 % of patients with ±1.5 log
  shifts on 3 % of genes (a real cluster, but both samples of the patient are in it);
* four **latent programmes** (immune, stroma, proliferation, hypoxia-like): each loads 3-10 %
  of the genes; a sample's score is half patient-level, half sample-level (purity and
  infiltration differ between two biopsies of one tumour);
* a treatment effect on 10 % of genes (post vs pre, ±0.3-1.5 log2);
* NB noise with DESeq2's trend 0.06 + 1/mu and log-normal gene scatter (SD 0.5).

Planted defects (each sample at most one):

* ``tissue``: another tissue in the biopsy: one block of 50-200 genes (the same block for
  every contaminated sample, chosen among genes of low-to-moderate expression) at 100-1000x
  (log-uniform), the other genes scaled down so the library keeps its size;
* ``degraded``: a 3'-bias-like gene-length effect, counts times exp(-b z) with z the gene's
  standardised log length and b uniform 0.4-0.8 (long genes lose 2-5x against short ones);
* ``noisy``: a lone failed library, every gene times exp(N(0, 0.75)).

Identity truth (for the pair-identity check): each patient has a sex, GSTM1/GSTT1/UGT2B17
deletion genotypes (null in 50 %, 20 %, 30 %) and genotypes of strong cis-eQTL genes
(ERAP2 null 25 %, others additive 0/1/2 with 1.0-2.0 log2 per allele), shared by both of the
patient's samples and untouched by treatment; a tumour may lose the Y (10 % of male
patients, both samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Y_GENES = ("RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY", "USP9Y", "ZFY")
DELETIONS = {"GSTM1": 0.5, "GSTT1": 0.2, "UGT2B17": 0.3}
EQTL = ("ERAP2", "CHI3L2", "THNSL2", "PEX6", "XRRA1", "ZP3", "POMZP3", "FAM118A", "PILRB",
        "CHURC1", "SPATA20", "GSTM3", "NBPF3", "ACOT1", "KANSL1-AS1", "LRRC37A4P")
DEFECTS = ("tissue", "degraded", "noisy")


@dataclass
class Cohort:
    counts: pd.DataFrame  # genes x samples, int
    sheet: pd.DataFrame  # sample, patient, timepoint, response, in_pair, usable, sex
    defect: pd.Series  # per sample: "" or one of DEFECTS
    truth: dict = field(default_factory=dict)


def paired_cohort(
    n_patients: int = 50,
    n_genes: int = 5000,
    seed: int = 1,
    *,
    defect: str | None = None,
    fraction: float = 0.0,
    n_defect: int | None = None,
    identity_genes: bool = True,
    swap: tuple[int, int] | None = None,
) -> Cohort:
    """A paired cohort (every patient pre and post); ``defect`` planted in ``n_defect`` samples
    (default round(fraction * 2 n_patients), at least 1 when fraction > 0), chosen at random
    so that no patient has two; ``swap=(i, j)`` exchanges the post labels of patients i and j
    (the sheet is wrong, the counts are right)."""
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"defect must be one of {DEFECTS}, got {defect!r}")
    rng = np.random.default_rng([seed, n_patients, n_genes])
    n = 2 * n_patients
    pid = np.repeat(np.arange(n_patients), 2)
    post = np.tile([0.0, 1.0], n_patients)
    names = [f"G{i:05d}" for i in range(n_genes)]
    # gene means (log scale, natural): a mixture with a low tail, as real counts
    low = rng.random(n_genes) < 0.2
    log_mu = np.where(low, rng.normal(1.5, 1.5, n_genes), rng.normal(6.3, 1.6, n_genes))
    eta = np.repeat(log_mu[:, None], n, axis=1)
    eta += rng.normal(0, 0.45, (n_genes, n_patients))[:, pid]
    subtype = rng.random(n_patients) < 0.15
    sub_genes = rng.random(n_genes) < 0.03
    eta += np.outer(sub_genes * rng.choice([-1.5, 1.5], n_genes), subtype[pid].astype(float))
    for _ in range(4):
        load = (rng.random(n_genes) < rng.uniform(0.03, 0.10)) * rng.normal(0, 0.8, n_genes)
        score = np.sqrt(0.5) * rng.normal(size=n_patients)[pid] + np.sqrt(0.5) * rng.normal(size=n)
        eta += np.outer(load, score)
    lfc = (rng.random(n_genes) < 0.1) * rng.choice([-1, 1], n_genes) * rng.uniform(0.3, 1.5, n_genes)
    eta += np.outer(lfc * np.log(2), post)
    # identity genes: genotype-driven, shared by a patient's samples
    sex = np.where(rng.random(n_patients) < 0.5, "male", "female")
    if identity_genes:
        base = {g: rng.uniform(4.0, 7.5) for g in ("XIST", *Y_GENES, *DELETIONS, *EQTL)}
        rows = {}
        male = sex == "male"
        y_loss = male & (rng.random(n_patients) < 0.1)
        rows["XIST"] = np.where(male, -3.0, base["XIST"] + 1.5)
        for g in Y_GENES:
            rows[g] = np.where(male & ~y_loss, base[g], -3.0)
        for g, p in DELETIONS.items():
            rows[g] = np.where(rng.random(n_patients) < p, -3.0, base[g])
        rows["ERAP2"] = np.where(rng.random(n_patients) < 0.25, -1.0, base["ERAP2"])
        for g in EQTL[1:]:
            allele = rng.binomial(2, rng.uniform(0.2, 0.5), n_patients)
            rows[g] = base[g] + np.log(2) * rng.uniform(1.0, 2.0) * (allele - 1)
        idx = rng.choice(np.flatnonzero(~sub_genes & (lfc == 0)), len(rows), replace=False)
        for i, (g, v) in zip(idx, rows.items()):
            names[i] = g
            eta[i] = v[pid] + rng.normal(0, 0.15, n)
    mu = np.exp(eta)
    # planted defects
    planted = np.array([""] * n, dtype=object)
    if defect is not None:
        k = n_defect if n_defect is not None else max(1, int(round(fraction * n)))
        pats = rng.choice(n_patients, k, replace=False)
        which = pats * 2 + rng.integers(0, 2, k)
        planted[which] = defect
        if defect == "tissue":
            block_n = int(rng.integers(50, 201))
            cand = np.flatnonzero((log_mu > 1.0) & (log_mu < 5.0))
            block = rng.choice(cand, block_n, replace=False)
            for j in which:
                before = mu[:, j].sum()
                mu[block, j] *= np.exp(rng.uniform(np.log(100), np.log(1000), block_n))
                mu[:, j] *= before / mu[:, j].sum()
        elif defect == "degraded":
            z = rng.normal(0, 1, n_genes)  # standardised log gene length
            for j in which:
                mu[:, j] *= np.exp(-rng.uniform(0.4, 0.8) * z)
        else:
            for j in which:
                mu[:, j] *= np.exp(rng.normal(0, 0.75, n_genes))
    sf = np.exp(rng.normal(0, 0.4, n))
    mu = mu * sf
    disp = (0.06 + 1 / np.maximum(mu.mean(axis=1), 1e-3)) * np.exp(rng.normal(0, 0.5, n_genes))
    counts = rng.negative_binomial(1 / disp[:, None], 1 / (1 + mu * disp[:, None]))
    samples = [f"S{p + 1:03d}_{'post' if t else 'pre'}" for p, t in zip(pid, post)]
    patients = [f"P{p + 1:03d}" for p in pid]
    sheet = pd.DataFrame({
        "sample": samples,
        "patient": patients,
        "timepoint": np.where(post == 1, "post", "pre"),
        "response": np.where(pid % 2 == 0, "responder", "non_responder"),
        "in_pair": True,
        "usable": True,
        "sex": sex[pid],
    })
    if swap is not None:
        a, b = (f"P{i + 1:03d}" for i in swap)
        pa = (sheet["patient"] == a) & (sheet["timepoint"] == "post")
        pb = (sheet["patient"] == b) & (sheet["timepoint"] == "post")
        sheet.loc[pa, "patient"], sheet.loc[pb, "patient"] = b, a
    truth = {"subtype_patients": [f"P{i + 1:03d}" for i in np.flatnonzero(subtype)],
             "sex": dict(zip([f"P{i + 1:03d}" for i in range(n_patients)], sex))}
    return Cohort(
        pd.DataFrame(counts.astype(np.int64), index=pd.Index(names, name="gene"), columns=samples),
        sheet,
        pd.Series(planted, index=samples, name="defect"),
        truth,
    )
