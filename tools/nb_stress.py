"""A paired RNA-seq simulation with what real cohorts contain and plain NB simulations lack.

prepost's vectorised DESeq2 matched R on every plain negative-binomial simulation and still
broke on the first real cohort (GSE91061): genes counted in the tens of thousands in a few
liver-metastasis biopsies and near zero elsewhere sent IRLS past DESeq2's |30| bound, and the
optim refit that DESeq2 does there was missing. This simulation puts such genes, and the other
oddities of real count tables, into a paired design so that tests (tests/test_nb_stress.py,
R fixtures in tests/fixtures/nb_stress/) and the benchmark (benchmarks/de/run.py --stress)
exercise them:

- contamination: 3% of genes with counts of 1e4-3e5 in 1-5 patients (one or both samples)
  and Poisson(0.3) counts in every other sample;
- all-zero timepoint: 0.5% of genes with every post sample zero, 0.5% with every pre zero;
- all-zero group: 0.5% of genes with every sample of the responders zero;
- one patient (the second) with a 10x library size;
- zero inflation: 3% of genes with 40% of their counts set to zero;
- 10% of the other genes with a true post-vs-pre effect.

Patients P001.. with samples <patient>_pre / _post; response alternates non_responder /
responder by patient. Deterministic for a given (n_samples, n_genes, seed).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

SEED = 20261202


def simulate_stress(n_samples: int, n_genes: int = 1000, seed: int = SEED):
    """Returns (counts genes x samples, sheet with sample/patient/timepoint/response indexed by
    sample, truth: a DataFrame gene, lfc, kind)."""
    if n_samples % 2 or n_samples < 6:
        raise ValueError(f"n_samples must be even and >= 6, got {n_samples}")
    rng = np.random.default_rng([seed, n_samples, n_genes])
    n_pat = n_samples // 2
    patients = [f"P{i:03d}" for i in range(1, n_pat + 1)]
    sheet = pd.DataFrame(
        [(f"{p}_{t}", p, t) for p in patients for t in ("pre", "post")],
        columns=["sample", "patient", "timepoint"],
    )
    resp = {p: ("non_responder", "responder")[i % 2] for i, p in enumerate(patients)}
    sheet["response"] = sheet["patient"].map(resp)
    is_post = (sheet["timepoint"] == "post").to_numpy()
    is_resp = (sheet["response"] == "responder").to_numpy()
    pidx = np.repeat(np.arange(n_pat), 2)

    kind = np.array(["plain"] * n_genes, dtype=object)
    order = rng.permutation(n_genes)
    cuts = np.cumsum([int(round(n_genes * f)) for f in (0.03, 0.005, 0.005, 0.005, 0.03)])
    for name, sel in zip(
        ["contamination", "zero_post", "zero_pre", "zero_group", "zero_inflated"],
        np.split(order[: cuts[-1]], cuts[:-1]),
    ):
        kind[sel] = name
    plain = np.flatnonzero(kind == "plain")
    lfc = np.zeros(n_genes)
    de = rng.choice(plain, len(plain) // 10, replace=False)
    lfc[de] = rng.choice([-1.0, 1.0], de.size) * rng.uniform(0.3, 1.5, de.size)

    log_mu = rng.normal(np.log(150), 1.8, n_genes)[:, None]
    pat = rng.normal(0, 0.35, (n_genes, n_pat))[:, pidx]
    sf = rng.uniform(0.5, 2.0, n_samples)
    sf[pidx == 1] *= 10.0  # one patient with a 10x library
    mu = np.exp(log_mu + pat + np.log(2) * lfc[:, None] * is_post) * sf
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.5, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp)).astype(np.int64)

    for g in np.flatnonzero(kind == "contamination"):  # a few hundred genes at most
        hit = rng.choice(n_pat, rng.integers(1, 6), replace=False)
        cols = np.flatnonzero(np.isin(pidx, hit))
        if rng.random() < 0.5:  # only one of the two biopsies of each contaminated patient
            cols = cols[rng.integers(0, 2, cols.size // 2) + np.arange(0, cols.size, 2)]
        counts[g] = rng.poisson(0.3, n_samples)
        counts[g, cols] = rng.integers(10_000, 300_000, cols.size)
    counts[np.ix_(kind == "zero_post", is_post)] = 0
    counts[np.ix_(kind == "zero_pre", ~is_post)] = 0
    counts[np.ix_(kind == "zero_group", is_resp)] = 0
    zi = np.flatnonzero(kind == "zero_inflated")
    counts[zi] = np.where(rng.random((zi.size, n_samples)) < 0.4, 0, counts[zi])

    genes = pd.Index([f"G{i:05d}" for i in range(1, n_genes + 1)], name="gene")
    cols = list(sheet["sample"])
    truth = pd.DataFrame({"gene": genes, "lfc": lfc, "kind": kind})
    return pd.DataFrame(counts, index=genes, columns=cols), sheet.set_index("sample"), truth


def counts_digest(counts: pd.DataFrame) -> str:
    """sha256 of the count matrix (values, gene and sample names): tests check it against the
    fixture's so that a numpy whose random streams changed fails loudly, not as an R mismatch."""
    h = hashlib.sha256()
    h.update("\t".join(counts.columns).encode())
    h.update("\t".join(counts.index).encode())
    h.update(np.ascontiguousarray(counts.to_numpy(np.int64)).tobytes())
    return h.hexdigest()
