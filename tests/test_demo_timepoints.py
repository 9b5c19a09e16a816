"""The demo's third cohort (GSE990003: pre, on and post biopsies, unpaired patients; made by
tools/prepost_demo.py, truth in resources/demo/truth_timepoints.tsv) through prepare and the
new contrasts: on_vs_pre, post_vs_on and post_vs_pre recover the planted effects, paired on
the patients with both timepoints, and with pairing.unpaired: block on every usable sample."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from prepost.de.contrasts import split_contrasts
from prepost.de.fit import fit_contrast
from prepost.prepare.dataset import prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources/demo"
GEO = DEMO / "geo/series/GSE990nnn/GSE990003"


@pytest.fixture(scope="module")
def prepared():
    cfg = yaml.safe_load((ROOT / "config/examples/demo_timepoints.yaml").read_text())
    ds = cfg["datasets"]["demo_timepoints"]
    files = {"series_matrix": str(GEO / "matrix/GSE990003_series_matrix.txt.gz"),
             "counts": str(GEO / "suppl/GSE990003_raw_counts.tsv.gz")}
    prep = prepare_dataset("demo_timepoints", ds, files)
    truth = pd.read_csv(DEMO / "truth_timepoints.tsv", sep="\t")
    return prep, ds, truth


def _recovers(table: pd.DataFrame, truth: pd.DataFrame, effect: str) -> None:
    t = truth[truth["effect"] == effect].set_index("gene")["log2_effect"]
    tab = table.set_index("gene")
    planted = t.index[t.abs() >= 0.5].intersection(tab.index)
    strong = t.index[t.abs() >= 0.9].intersection(tab.index)
    null = tab.index.difference(t.index[t != 0])
    assert len(planted) >= 30 and len(strong) >= 15
    hit = tab.loc[planted]
    assert (np.sign(hit["log2fc"]) == np.sign(t[planted])).mean() > 0.95
    assert (tab.loc[strong, "padj"] < 0.05).mean() > 0.8
    assert np.corrcoef(hit["log2fc"], t[planted])[0, 1] > 0.8
    assert (tab.loc[null, "padj"] < 0.05).mean() < 0.05


def test_pairing_keeps_on_samples_and_unpaired_patients(prepared):
    prep, _, _ = prepared
    led = prep.ledger.set_index("sample")
    on = prep.sheet[prep.sheet["timepoint"] == "on"]
    assert len(on) == 8 and on["usable"].all() and not on["in_pair"].any()
    assert (led.loc[on["sample"], "status"] == "kept").all()
    assert int(prep.sheet["in_pair"].sum()) == 20  # P01-P10 pre and post
    unpaired = led[led["reason"].str.startswith("unpaired")]
    assert sorted(unpaired["patient"]) == ["P11", "P12", "P13", "P14"]


@pytest.mark.parametrize("effect, pairs", [("on_vs_pre", 8), ("post_vs_on", 8), ("post_vs_pre", 10)])
def test_timepoint_contrasts_recover_the_planted_effects(prepared, effect, pairs):
    prep, _, truth = prepared
    table = fit_contrast(prep.expression, prep.values, prep.sheet, effect, "demo_timepoints")
    assert table.attrs["contrast"]["pairs"] == pairs
    assert table.attrs["contrast"]["patient_model"] == "fixed block"
    assert table.attrs["fit"]["engine"] == "prepost.de.nb"
    _recovers(table, truth, effect)


def test_block_uses_every_usable_sample_and_recovers_post_vs_pre(prepared):
    prep, _, truth = prepared
    table = fit_contrast(prep.expression, prep.values, prep.sheet, "post_vs_pre", "demo_timepoints",
                         unpaired="block")
    info = table.attrs["contrast"]
    assert (info["samples_entered"], info["patients_paired"], info["patients_unpaired"]) == (24, 10, 4)
    assert info["patient_model"] == "random effect" and 0 < info["consensus_correlation"] < 1
    _recovers(table, truth, "post_vs_pre")
    on = fit_contrast(prep.expression, prep.values, prep.sheet, "on_vs_pre", "demo_timepoints",
                      unpaired="block")
    assert on.attrs["contrast"]["samples_entered"] == 20  # pre of P01-P12, on of P01-P08
    _recovers(on, truth, "on_vs_pre")


def test_the_example_config_contrasts_all_build(prepared):
    from prepost.prepare.pairing import validate_design

    prep, ds, _ = prepared
    names, declared = split_contrasts(ds["contrasts"])
    summary = validate_design(prep.sheet, ds["contrasts"], "demo_timepoints", unpaired="block")
    assert list(summary["contrasts"]) == names
    rd = summary["contrasts"]["post_vs_pre_rd"]
    assert rd["patient_model"] == "random effect" and rd["declared"]["samples"] == {"response": "non_responder"}
    table = fit_contrast(prep.expression, prep.values, prep.sheet, "post_vs_pre_rd", "demo_timepoints",
                         unpaired="block", definitions=declared)
    assert table.attrs["contrast"]["samples_entered"] == rd["samples_entered"]
