import numpy as np
import pandas as pd
import pytest

from prepost.prepare.pairing import PairingError, pair_samples, validate_design

RULES = {
    "patient": {"field": "title", "regex": r"^(P\d+)_"},
    "timepoint": {"field": "timepoint", "map": {"pre-treatment": "pre", "post-treatment": "post"}},
    "response": {"field": "response", "map": {"pCR": "responder", "RD": "non_responder"}},
}


def geo_samples(spec):
    """spec: list of (gsm, title, timepoint, response)."""
    df = pd.DataFrame(spec, columns=["sample", "title", "timepoint", "response"]).set_index("sample")
    df["tissue"] = "breast tumour"
    return df


def cohort(n=4, extra=()):
    spec = []
    for i in range(1, n + 1):
        resp = "pCR" if i % 2 else "RD"
        spec.append((f"GSM{i}0", f"P{i:02d}_pre", "pre-treatment", resp))
        spec.append((f"GSM{i}1", f"P{i:02d}_post", "post-treatment", resp))
    spec.extend(extra)
    return geo_samples(spec)


def test_complete_pairs_kept_and_unpaired_reported():
    samples = cohort(4, extra=[("GSM99", "P99_pre", "pre-treatment", "RD")])
    sheet, ledger = pair_samples(samples, RULES, "d")
    assert sheet["in_pair"].sum() == 8
    row = ledger.set_index("sample").loc["GSM99"]
    assert row["status"] == "dropped"
    assert row["reason"] == "unpaired: patient P99 has no post sample"
    assert set(ledger.loc[ledger.status == "kept", "reason"]) == {"complete pair"}
    assert sheet.set_index("sample").loc["GSM11", "patient"] == "P01"
    assert sheet.set_index("sample").loc["GSM21", "response"] == "non_responder"
    # characteristics are carried into the sample sheet
    assert "tissue" in sheet.columns
    assert list(sheet.columns[:7]) == ["sample", "title", "patient", "timepoint", "response", "in_pair", "usable"]


def test_exclusion_is_reported_and_breaks_the_pair():
    rules = dict(RULES, exclude=["GSM11"])
    sheet, ledger = pair_samples(cohort(4), rules, "d")
    led = ledger.set_index("sample")
    assert led.loc["GSM11", "reason"] == "excluded in config (pairing.exclude)"
    assert led.loc["GSM10", "reason"] == "unpaired: patient P01 has no post sample"
    assert sheet["in_pair"].sum() == 6


def test_exclude_unknown_sample_is_an_error():
    with pytest.raises(PairingError, match="GSM404"):
        pair_samples(cohort(3), dict(RULES, exclude=["GSM404"]), "d")


def test_unmapped_timepoint_value_names_it():
    samples = cohort(3, extra=[("GSM77", "P77_mid", "mid-treatment", "RD")])
    with pytest.raises(PairingError, match=r"'mid-treatment'.*pairing\.timepoint\.map|pairing\.timepoint\.map.*'mid-treatment'"):
        pair_samples(samples, RULES, "d")


def test_timepoint_mapped_to_exclude_is_dropped_with_reason():
    samples = cohort(3, extra=[("GSM77", "P01_mid", "mid-treatment", "pCR")])
    rules = {**RULES, "timepoint": {"field": "timepoint", "map": {**RULES["timepoint"]["map"], "mid-treatment": "exclude"}}}
    sheet, ledger = pair_samples(samples, rules, "d")
    assert "mid-treatment" in ledger.set_index("sample").loc["GSM77", "reason"]
    assert sheet["in_pair"].sum() == 6


def test_missing_field_lists_available_fields():
    rules = dict(RULES, patient={"field": "patient id"})
    with pytest.raises(PairingError, match=r"pairing\.patient\.field 'patient id'.*'title'"):
        pair_samples(cohort(3), rules, "d")


def test_regex_matching_nothing_is_an_error():
    rules = dict(RULES, patient={"field": "title", "regex": r"^(PATIENT-\d+)"})
    with pytest.raises(PairingError, match="matches no value"):
        pair_samples(cohort(3), rules, "d")


def test_two_pre_samples_for_one_patient_is_an_error():
    samples = cohort(3, extra=[("GSM12", "P01_pre", "pre-treatment", "pCR")])
    with pytest.raises(PairingError, match=r"patient P01 has 2 pre samples \(GSM10, GSM12\)"):
        pair_samples(samples, RULES, "d")


def test_conflicting_response_is_an_error():
    samples = cohort(3)
    samples.loc["GSM11", "response"] = "RD"
    with pytest.raises(PairingError, match=r"\['P01'\].*different response"):
        pair_samples(samples, RULES, "d")


def test_fewer_than_three_pairs_fails_naming_dataset():
    sheet, _ = pair_samples(cohort(2), RULES, "tiny")
    with pytest.raises(PairingError, match=r"dataset 'tiny': 2 complete pre/post pair"):
        validate_design(sheet, ["post_vs_pre"], "tiny")


def test_design_summary_and_rank():
    sheet, _ = pair_samples(cohort(5), RULES, "d")
    summary = validate_design(sheet, ["post_vs_pre"], "d")
    # 10 samples, intercept + 4 patient effects + timepoint = 6 coefficients
    assert summary["pairs"] == 5
    assert summary["contrasts"]["post_vs_pre"]["df_residual"] == 4
    assert summary["contrasts"]["post_vs_pre"]["coefficients"] == 6


def test_unpaired_samples_are_usable_for_unpaired_contrasts():
    samples = cohort(4, extra=[("GSM99", "P99_pre", "pre-treatment", "RD")])
    rules = dict(RULES, exclude=["GSM10"])
    sheet, _ = pair_samples(samples, rules, "d")
    s = sheet.set_index("sample")
    assert bool(s.loc["GSM99", "usable"]) and not bool(s.loc["GSM99", "in_pair"])
    assert bool(s.loc["GSM11", "usable"])  # P01's post: unpaired after its pre was excluded
    assert not bool(s.loc["GSM10", "usable"])  # excluded in config


def test_response_contrast_without_response_fails_at_design_check():
    rules = {k: v for k, v in RULES.items() if k != "response"}
    sheet, _ = pair_samples(cohort(4), rules, "d")
    with pytest.raises(PairingError, match=r"'d'.*responder_vs_non_responder_pre"):
        validate_design(sheet, ["post_vs_pre", "responder_vs_non_responder_pre"], "d")


def test_numeric_looking_patient_ids_stay_strings():
    samples = geo_samples([(f"GSM{i}{t}", f"{i:03d}_{tp}", f"{tp}-treatment", "RD")
                           for i in range(1, 4) for t, tp in ((0, "pre"), (1, "post"))])
    rules = dict(RULES, patient={"field": "title", "regex": r"^(\d+)_"})
    sheet, _ = pair_samples(samples, rules, "d")
    assert sorted(sheet["patient"].unique()) == ["001", "002", "003"]
