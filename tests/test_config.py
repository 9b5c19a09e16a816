"""The config schema rejects wrong or missing keys with a message that names them."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def check(cfg):
    validate(copy.deepcopy(cfg), SCHEMA)


def test_default_config_is_valid_and_defaults_fill_in(config):
    del config["download"]["retries"]
    del config["datasets"]["demo_array"]["contrasts"]
    validate(config, SCHEMA)
    assert config["download"]["retries"] == 4
    assert config["datasets"]["demo_array"]["contrasts"] == ["post_vs_pre"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["download"].update(ofline=True), "'ofline' was unexpected"),
        (lambda c: c["datasets"]["demo_array"].update(kind="geo_seriesmatrix"), "'geo_seriesmatrix' is not one of"),
        (lambda c: c["datasets"]["demo_array"].pop("platform"), "'platform' is a required property"),
        (lambda c: c["datasets"]["demo_rnaseq"].pop("counts"), "'counts' is a required property"),
        (lambda c: c["datasets"]["demo_array"]["pairing"].pop("timepoint"), "'timepoint' is a required property"),
        (lambda c: c["datasets"]["demo_array"]["pairing"]["timepoint"]["map"].update({"pre-treatment": "Baseline"}), "'Baseline' does not match"),
        (lambda c: c["datasets"]["demo_array"].update(accession="12345"), "does not match"),
        (lambda c: c["download"].update(timeout="soon"), "'soon' is not of type 'number'"),
        (lambda c: c["datasets"]["demo_array"].update(contrasts=["after-vs-before"]), "'after-vs-before' is not valid"),
        (lambda c: c["datasets"]["demo_array"].update(contrasts=[{"name": "x", "compare": ["timepoint", "pre"]}]), "is not valid"),
        (lambda c: c.update(datasets={}), "should be non-empty|does not have enough properties"),
    ],
)
def test_bad_config_names_the_key(config, mutate, expected):
    mutate(config)
    with pytest.raises(WorkflowError) as err:
        check(config)
    text = str(err.value) + "".join(str(a) for a in getattr(err.value, "args", ()))
    import re

    assert re.search(expected, text), text


def test_message_gives_the_full_key_path(config):
    config["datasets"]["demo_array"]["pairing"]["timepoint"]["map"]["pre-treatment"] = "Baseline"
    with pytest.raises(WorkflowError, match=r"\['datasets'\]\['demo_array'\]\['pairing'\]\['timepoint'\]\['map'\]\['pre-treatment'\]"):
        check(config)


def test_schemas_list_the_package_contrasts():
    """The contrast names are defined once in prepost.vocabulary; the two schemas (config and
    claims catalogue) must list exactly those."""
    from prepost.vocabulary import CONTRASTS

    config_schema = yaml.safe_load(Path(SCHEMA).read_text())
    assert config_schema["definitions"]["contrast"]["enum"] == list(CONTRASTS)
    claims_schema = yaml.safe_load((ROOT / "workflow/schemas/claims.schema.yaml").read_text())
    found = []

    def walk(x):
        if isinstance(x, dict):
            if "contrast" in x and isinstance(x["contrast"], dict) and "enum" in x["contrast"]:
                found.append(x["contrast"]["enum"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(claims_schema)
    # claims may name any contrast a dataset runs (timepoint and declared ones too): a pattern
    assert found == []
    import re

    pattern = claims_schema["properties"]["claims"]["items"]["properties"]["contrast"]["pattern"]
    assert all(re.fullmatch(pattern, c) for c in [*CONTRASTS, "on_vs_pre", "post_vs_on_responder"])


def test_timepoints_and_contrasts_are_checked_against_the_declared_order(config):
    """What the schema cannot see (a map value or a contrast's timepoint not in
    pairing.timepoint.order) stops the workflow at start, naming the key."""
    from prepost.prepare.pairing import PairingError, check_dataset_config

    ds = copy.deepcopy(config["datasets"]["demo_array"])
    check_dataset_config("demo_array", ds)
    ds["pairing"]["timepoint"]["map"]["pre-treatment"] = "baseline"
    with pytest.raises(PairingError, match=r"pairing.timepoint.map gives \['baseline'\].*does not declare"):
        check_dataset_config("demo_array", ds)
    ds = copy.deepcopy(config["datasets"]["demo_array"])
    ds["contrasts"] = ["on_vs_pre"]
    with pytest.raises(PairingError, match=r"contrasts: 'on_vs_pre' names timepoint\(s\) \['on'\]"):
        check_dataset_config("demo_array", ds)
    ds["pairing"]["timepoint"]["order"] = ["pre", "on", "post"]
    check_dataset_config("demo_array", ds)
    ds["contrasts"] = [{"name": "post_vs_pre", "compare": ["timepoint", "pre", "post"]}]
    with pytest.raises(PairingError, match="also a named contrast"):
        check_dataset_config("demo_array", ds)
