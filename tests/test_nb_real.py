"""prepost.de.nb against R DESeq2 1.38 on real counts: a gene subset of GSE91061
(tests/fixtures/nb_real, made by its make_fixtures.py from ../shared/data; no R and no
../shared needed here). The subset holds every gene DESeq2 hands to optim on the full data
(genes counted in the tens of thousands in a few liver-metastasis biopsies and near zero
elsewhere, the ones that broke prepost before) plus 600 ordinary genes. The rule, and why
the optim genes get their own, is in tools/deseq2_agreement.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deseq2_agreement import agreement
from prepost.de import nb
from prepost.de.nb import paired
from prepost.de.nb.optim import _Objective
from prepost.stats import size_factors

FIX = Path(__file__).parent / "fixtures/nb_real"


@pytest.fixture(scope="module")
def data():
    counts = pd.read_csv(FIX / "counts.tsv.gz", sep="\t", index_col=0)
    sheet = pd.read_csv(FIX / "samples.tsv", sep="\t", keep_default_na=False).set_index("sample")
    for col in ("paired", "grouped", "two_group"):
        sheet[col] = sheet[col].astype(str) == "True"
    return counts, sheet


def _r(design: str, which: str = "results") -> pd.DataFrame:
    return pd.read_csv(FIX / f"{design}.{which}.tsv.gz", sep="\t")


@pytest.fixture(scope="module")
def fits(data):
    counts, sheet = data
    out = {}
    s = sheet[sheet["paired"]]
    out["post_vs_pre"] = nb.fast_paired_deseq2(counts[s.index], s)
    s = sheet[sheet["grouped"]]
    out.update(nb.fast_grouped_paired_deseq2(counts[s.index], s))
    s = sheet[sheet["two_group"]]
    out["responder_vs_non_responder"] = nb.fast_two_group_deseq2(counts[s.index], s)
    return out


CONTRASTS = [
    ("paired", "post_vs_pre"),
    ("grouped", "post_vs_pre_responder"),
    ("grouped", "post_vs_pre_non_responder"),
    ("grouped", "interaction"),
    ("two_group", "responder_vs_non_responder"),
]


@pytest.mark.parametrize("design,contrast", CONTRASTS)
def test_equals_deseq2_on_real_counts(fits, design, contrast):
    r, last = _r(design), _r(design, "last")
    r, last = r[r["contrast"] == contrast], last[last["contrast"] == contrast]
    res = agreement(fits[contrast], r, last)
    assert res["failures"] == [], res
    assert res["plain_genes"] > 600  # the strict tolerance covers the ordinary genes
    if design != "two_group":
        assert res["optim_genes_R"] > 100  # the subset keeps the pathological genes


def test_the_genes_that_broke_are_sane(fits):
    """The issue's genes: before the optim refit prepost gave G6PC1 stat 11,460 and CRP an
    lfcSE of 0.00014 (R: -0.95 and 0.57 on the full data)."""
    r = _r("paired").set_index("gene")
    res = fits["post_vs_pre"].set_index("gene")
    for gene in ("G6PC1", "CRP", "C4BPA", "CFHR2", "CFHR5"):
        assert abs(res.loc[gene, "stat"]) < 5
        assert res.loc[gene, "lfc_se"] > 0.1
        assert np.sign(res.loc[gene, "log2fc"]) == np.sign(r.loc[gene, "log2FoldChange"])


def test_optim_reaches_r_optim_objective(data):
    """At R's final dispersions, prepost's IRLS + optim fit of every gene R hands to optim
    reaches R's negative log posterior within 1e-4 of it (measured: on the full data half of
    the 443 genes lower, the worst 3.7e-6 higher; on this subset the worst 2.4e-5): both stop
    at an equally good point of a flat objective, which is why their coefficients may differ
    (tools/deseq2_agreement.py)."""
    counts, sheet = data
    s = sheet[sheet["paired"]]
    _, patients, values, genes = paired._ordered_pairs(counts[s.index], s, "pre", "post", "t")
    n_pat = len(patients)
    sf = size_factors(values).reshape(n_pat, 2)
    x = paired.r_design(n_pat, None)
    r = _r("paired").set_index("gene")
    coef = pd.read_csv(FIX / "paired.coef.tsv.gz", sep="\t", index_col=0)
    assert len(coef) > 100
    idx = pd.Index(genes).get_indexer(coef.index)
    y = values[idx].reshape(-1, n_pat, 2)
    alpha = r.loc[coef.index, "dispersion"].to_numpy(float)
    fit = paired._fit_beta(y, sf, alpha, None, 1)
    assert fit["optim"].all()
    gap = []
    for i, gene in enumerate(coef.index):
        ours = np.concatenate(
            [fit["gam"][i, :1], fit["gam"][i, 1:] - fit["gam"][i, 0], fit["beta"][i]]
        ) / np.log(2)
        obj = _Objective(values[idx[i]].astype(float), sf.reshape(-1), alpha[i], x)
        f_ours, f_r = obj(ours)[0], obj(coef.loc[gene].to_numpy(float))[0]
        gap.append((f_ours - f_r) / abs(f_r))
    gap = np.array(gap)
    assert np.abs(gap).max() < 1e-4
    assert (gap <= 0).any()  # not systematically worse than R
