"""Ordered timepoints (pre, on, post), contrasts between any two, and contrasts declared as
data, checked against R: limma 3.54 results of the paired fixture (tests/fixtures/de,
benchmarks/r_reference/reference.R) must come back unchanged when its post samples are
relabelled as an on-treatment timepoint next to a third timepoint, and when the contrast is
declared as data instead of named."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prepost.de import contrasts as C
from prepost.de.fit import fit_contrast
from prepost.prepare.pairing import PairingError, pair_samples

FIX = Path(__file__).parent / "fixtures" / "de"


def _sheet(samples: pd.DataFrame) -> pd.DataFrame:
    s = samples.reset_index()
    s["response"] = np.nan
    s["in_pair"] = s["timepoint"].isin(["pre", "post"]) & (
        s.groupby("patient")["timepoint"].transform(lambda t: {"pre", "post"} <= set(t)))
    s["usable"] = True
    return s


@pytest.fixture(scope="module")
def three():
    """The arrays fixture with post relabelled 'on', plus a 'post' sample for 5 of the 8
    patients (values: the on sample + 1 with noise) and one patient with 'on' only."""
    expr = pd.read_csv(FIX / "arrays_expr.tsv", sep="\t", index_col=0)
    samples = pd.read_csv(FIX / "arrays_samples.tsv", sep="\t", index_col=0, dtype=str)
    limma = pd.read_csv(FIX / "arrays_limma.tsv", sep="\t").set_index("gene")
    samples["timepoint"] = samples["timepoint"].replace({"post": "on"})
    rng = np.random.default_rng(7)
    extra = {}
    for p in sorted(samples["patient"].unique())[:5]:
        on = samples.index[(samples["patient"] == p) & (samples["timepoint"] == "on")][0]
        extra[f"T{p}_3rd"] = (p, expr[on] + 1 + rng.normal(0, 0.2, len(expr)))
    more = pd.DataFrame({k: v[1] for k, v in extra.items()}, index=expr.index)
    lone = pd.Series(rng.normal(8, 1, len(expr)), index=expr.index, name="SX_on")
    expr = pd.concat([expr, more, lone], axis=1)
    add = pd.DataFrame({"patient": [v[0] for v in extra.values()] + ["PX"],
                        "timepoint": ["post"] * len(extra) + ["on"]}, index=[*extra, "SX_on"])
    samples = pd.concat([samples, add])
    samples.index.name = "sample"
    return expr, _sheet(samples), limma


def _match_r(table, limma):
    ours = table.set_index("gene")
    ref = limma.loc[ours.index]
    assert set(ours.index) == set(limma.index[limma["t"].notna()])
    assert np.max(np.abs(ours["stat"] - ref["t"])) < 1e-8
    assert np.max(np.abs(np.log10(ours["pvalue"]) - np.log10(ref["P.Value"]))) < 1e-8


def test_on_vs_pre_is_the_paired_model_on_patients_with_both(three):
    expr, sheet, limma = three
    table = fit_contrast(expr, "log2", sheet, "on_vs_pre", "fx")
    _match_r(table, limma)  # the third timepoint and the lone 'on' sample change nothing
    info = table.attrs["contrast"]
    assert info["pairs"] == 8 and info["samples_entered"] == 16
    assert info["tested"] == {"timepoint[on]": 1.0}
    assert "1 sample(s) of patients with only one of them left out" in info["patient_model_reason"]


def test_post_vs_on_and_post_vs_pre_recover_the_planted_step(three):
    expr, sheet, _ = three
    step = fit_contrast(expr, "log2", sheet, "post_vs_on", "fx").set_index("gene")
    assert step.attrs["contrast"]["pairs"] == 5
    clean = step.drop(index=[g for g in step.index if g in {"g0003", "g0004", "g0005", "g0006", "g0007", "g0008"}])
    assert abs(clean["log2fc"].median() - 1) < 0.05  # planted +1 from on to post
    assert (clean["padj"] < 0.05).mean() > 0.99
    # the paired cross-check columns compare post with on
    assert (step["n_pairs"] <= 5).all()


def test_declared_contrast_equals_its_preset(three):
    """Contrasts as data: {compare: [timepoint, pre, on], block: patient} is on_vs_pre."""
    expr, sheet, limma = three
    decl = {"name": "on_vs_pre_declared", "compare": ["timepoint", "pre", "on"], "block": "patient"}
    table = fit_contrast(expr, "log2", sheet, "on_vs_pre_declared", "fx",
                         definitions={decl["name"]: decl})
    _match_r(table, limma)
    assert C.preset_definition("on_vs_pre") == {
        "name": "on_vs_pre", "compare": ["timepoint", "pre", "on"], "block": "patient"}


def test_declared_contrast_with_a_sample_filter(three):
    """'post vs pre in ER-positive tumours only': a filter on a sample sheet field."""
    expr, sheet, _ = three
    sheet = sheet.assign(er=np.where(sheet["patient"].isin(["P01", "P02", "P03", "P04"]), "pos", "neg"))
    decl = {"name": "on_vs_pre_er_pos", "samples": {"er": "pos"},
            "compare": ["timepoint", "pre", "on"], "block": "patient"}
    spec = C.build_contrast(sheet, "on_vs_pre_er_pos", "fx", definitions={decl["name"]: decl})
    assert sorted(spec.samples["patient"].unique()) == ["P01", "P02", "P03", "P04"]
    assert spec.summary["pairs"] == 4 and spec.summary["patient_model"] == "fixed block"
    named = C.build_contrast(sheet[sheet["er"] == "pos"], "on_vs_pre", "fx")
    pd.testing.assert_frame_equal(spec.design, named.design)
    bad = {**decl, "samples": {"ER": "pos"}}
    with pytest.raises(C.ContrastError, match=r"samples field 'ER' is not a sample sheet column"):
        C.build_contrast(sheet, "x", "fx", definitions={"x": {**bad, "name": "x"}})
    unpaired = {"name": "u", "samples": {"timepoint": "pre"}, "compare": ["er", "neg", "pos"]}
    spec = C.build_contrast(sheet, "u", "fx", definitions={"u": unpaired})
    assert spec.summary["patient_model"] == "unpaired" and spec.block is None


def test_pairing_keeps_further_timepoints_out_of_the_pre_post_pair():
    samples = pd.DataFrame({
        "pid": ["a", "a", "a", "b", "b", "c", "c", "d"],
        "visit": ["B", "C2", "S", "B", "S", "B", "C2", "S"],
    }, index=[f"GSM{i}" for i in range(8)])
    rule = {"patient": {"field": "pid"},
            "timepoint": {"field": "visit", "map": {"B": "pre", "C2": "on", "S": "post"},
                          "order": ["pre", "on", "post"]}}
    sheet, ledger = pair_samples(samples, rule, "d")
    led = ledger.set_index("sample")
    assert led.loc["GSM1", "status"] == "kept" and "timepoint on" in led.loc["GSM1", "reason"]
    assert list(sheet.loc[sheet["in_pair"], "sample"]) == ["GSM0", "GSM2", "GSM3", "GSM4"]
    assert led.loc["GSM5", "reason"] == "unpaired: patient c has no post sample"
    assert sheet.set_index("sample").loc[["GSM1", "GSM5", "GSM6", "GSM7"], "usable"].all()
    rule["timepoint"]["order"] = ["pre", "post"]
    with pytest.raises(PairingError, match=r"timepoint.map gives \['on'\].*does not declare"):
        pair_samples(samples, rule, "d")
