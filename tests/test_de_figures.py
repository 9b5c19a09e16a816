"""The de rule's slope plots: the contrast's own pairs, on the DE's size factors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prepost import files
from prepost.de import contrasts as C
from prepost.de.figures import plot_contrast, slope_samples
from prepost.de.general import deseq2
from prepost.prepare.pairing import complete_pairs
from prepost.stats import size_factors

FIX = Path(__file__).resolve().parent / "fixtures" / "de"


@pytest.fixture(scope="module")
def resp():
    counts = files.read_tsv(FIX / "resp_counts.tsv", index_col=0)
    sheet = files.read_tsv(FIX / "resp_counts_samples.tsv", dtype=str)
    return counts, sheet


def test_within_group_slopes_draw_that_group_on_the_fits_size_factors(resp, tmp_path):
    """post_vs_pre_responder: the model is fitted on every pair with a known response, the test
    is the responders' coefficient. The plot draws the responders only, normalised with the size
    factors of the model's samples (pydeseq2's, an independent implementation of DESeq2's median
    of ratios), so its mean change is the companion of the table's log2fc."""
    counts, sheet = resp
    name = "post_vs_pre_responder"
    spec = C.build_contrast(sheet, name, "resp")
    _, sf_pydeseq2 = deseq2(counts[list(spec.samples.index)], spec.samples, spec.design,
                            spec.design.columns[-1], return_size_factors=True)
    rows, sf = slope_samples(counts, "counts", sheet, name, "resp")
    assert set(rows["sample"]) == set(spec.pairs["pre"]) | set(spec.pairs["post"])
    assert set(rows["patient"]) == set(spec.pairs.index)  # responders only
    np.testing.assert_allclose(sf.reindex(sf_pydeseq2.index), sf_pydeseq2, rtol=1e-12)

    # through the rule's function, from files: the drawn mean change per gene
    counts.index.name = "gene"
    counts.to_parquet(tmp_path / "expression.parquet")
    files.write_tsv(sheet, tmp_path / "samples.tsv")
    (tmp_path / "prepare.json").write_text(json.dumps({"values": "counts", "dataset": "resp"}))
    de = pd.DataFrame({"gene": counts.index, "mean_expr": 10.0, "log2fc": 0.0, "pvalue": 0.5, "padj": 0.5})
    files.write_tsv(de, tmp_path / "de.tsv")
    genes = list(counts.index[:6])
    out = plot_contrast(tmp_path / "de.tsv", tmp_path / "expression.parquet", tmp_path / "samples.tsv",
                        tmp_path / "prepare.json", name, genes, "t", volcano_png=tmp_path / "v.png",
                        ma_png=tmp_path / "m.png", slopes_png=tmp_path / "s.png")
    logv = np.log2(counts[list(sf_pydeseq2.index)] / sf_pydeseq2 + 1)
    pairs = spec.pairs
    expect = (logv[list(pairs["post"])].to_numpy() - logv[list(pairs["pre"])].to_numpy()).mean(axis=1)
    got = np.array([out["slopes"]["mean_change"][g] for g in genes])
    np.testing.assert_allclose(got, expect[:6], rtol=1e-10)
    assert out["slopes"]["n_pairs"] == len(pairs)


def test_unpaired_contrast_slopes_draw_every_complete_pair(resp):
    counts, sheet = resp
    rows, sf = slope_samples(counts, "counts", sheet, "responder_vs_non_responder_pre", "resp")
    assert len(rows) == len(sheet)
    # normalised over the drawn samples (every complete pair), in post_vs_pre's order: the same
    # factors, bit for bit, as post_vs_pre's when its model holds the same pairs
    _, paired = slope_samples(counts, "counts", sheet, "post_vs_pre", "resp")
    pairs = complete_pairs(counts, sheet, "t")
    assert set(sf.index) == set(pairs["pre"]) | set(pairs["post"])
    assert list(sf.index) == list(paired.index) and (sf.to_numpy() == paired.to_numpy()).all()
    ref = size_factors(counts[sorted(sf.index)].to_numpy())  # independent of the order
    np.testing.assert_allclose(sf.reindex(sorted(sf.index)).to_numpy(), ref, rtol=1e-12)
    rows, sf = slope_samples(counts, "log2", sheet, "post_vs_pre", "resp")
    assert sf is None  # log2 values are drawn as they are
