"""Config hygiene: duplicate keys, YAML booleans where text is meant, the claims catalogue and
the GMT collections checked when the workflow starts, and a known input error shown as one
message (its traceback kept in the rule's log)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import yaml

from prepost.io.yamlio import ConfigError, check_scalars, load_strict
from prepost.prepare.pairing import PairingError, pair_samples

from conftest import DEMO_GEO, ROOT, SNAKEMAKE

DEMO_CONFIG = (ROOT / "config/config.yaml").read_text()


def _dry_run(tmp_path, text: str, *targets: str, dry: bool = True) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    cmd = SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), *targets,
                       "--cores", "1", "--configfile", str(cfg)] + (["-n"] if dry else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


def _absolute(text: str) -> str:
    """The demo config with repository files by absolute path and the mirror folder local."""
    return (text.replace("claims: config/claims.yaml", f"claims: {ROOT}/config/claims.yaml")
                .replace("path: config/genesets/", f"path: {ROOT}/config/genesets/")
                .replace("path: <workflow>/resources/demo/published/", f"path: {ROOT}/resources/demo/published/")
                .replace("base_url: <workflow>/resources/demo/geo", f"base_url: {DEMO_GEO}"))


def test_duplicate_keys_name_both_lines(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("datasets:\n  a:\n    kind: local\n  b: {}\n  a:\n    kind: geo_counts\n")
    with pytest.raises(ConfigError, match=r"c\.yaml, line 5: duplicate key 'a' \(first on line 2\)"):
        load_strict(p)
    p.write_text("x: 1\ny: [On, off]\n")
    assert load_strict(p) == {"x": 1, "y": [True, False]}  # parsing itself stays YAML 1.1


@pytest.mark.parametrize(
    "tree,where",
    [
        ({"d": {"pairing": {"timepoint": {"map": {True: "post", "Pre": "pre"}}}}}, r"datasets\.d\.pairing\.timepoint\.map: the key True"),
        ({"d": {"pairing": {"timepoint": {"map": {0: "pre", "1": "post"}}}}}, r"datasets\.d\.pairing\.timepoint\.map: the key 0 \(a number"),
        ({"d": {"counts": {"sample_map": {"a": False}}}}, r"datasets\.d\.counts\.sample_map\.a: the value False"),
        ({"d": {"pairing": {"exclude": ["GSM1", True]}}}, r"datasets\.d\.pairing\.exclude\[1\]: the item True"),
    ],
)
def test_booleans_and_numbers_where_text_is_meant(tree, where):
    with pytest.raises(ConfigError, match=where):
        check_scalars(tree, "datasets")


def test_legitimate_booleans_pass():
    check_scalars({"d": {"significant_only": True, "counts": {"round": True}, "n_pairs": 12}}, "datasets")


def test_pairing_never_sorts_a_boolean_key():
    samples = pd.DataFrame({"patient": ["P1", "P1"], "visit": ["Pre", "On"]}, index=pd.Index(["S1", "S2"], name="sample"))
    rule = {"patient": {"field": "patient"}, "timepoint": {"field": "visit", "map": {"Pre": "pre", True: "post"}}}
    with pytest.raises(PairingError, match=r"pairing\.timepoint\.map key True is not text.*'On': post"):
        pair_samples(samples, rule, "d", {})


def test_dataset_pasted_twice_stops_the_dry_run(tmp_path):
    i, j = DEMO_CONFIG.index("  demo_rnaseq:"), DEMO_CONFIG.index("  demo_published:")
    proc = _dry_run(tmp_path, _absolute(DEMO_CONFIG[:j] + DEMO_CONFIG[i:j] + DEMO_CONFIG[j:]))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # parse-time errors go to stdout
    first = DEMO_CONFIG[:i].count("\n") + 1
    assert f"duplicate key 'demo_rnaseq' (first on line {first})" in out


def test_unquoted_on_stops_the_dry_run_naming_the_key(tmp_path):
    text = _absolute(DEMO_CONFIG).replace("map: {pre-treatment: pre, post-treatment: post}", "map: {pre-treatment: pre, On: post}", 1)
    proc = _dry_run(tmp_path, text)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # parse-time errors go to stdout
    assert "datasets.demo_array.pairing.timepoint.map: the key True" in out and "quote it" in out
    assert "TypeError" not in out


def test_claims_typo_stops_the_dry_run(tmp_path):
    claims = tmp_path / "claims.yaml"
    claims.write_text((ROOT / "config/claims.yaml").read_text().replace("direction: down", "direction: donw", 1))
    text = _absolute(DEMO_CONFIG).replace(f"claims: {ROOT}/config/claims.yaml", f"claims: {claims}")
    proc = _dry_run(tmp_path, text)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # parse-time errors go to stdout
    first_id = yaml.safe_load(claims.read_text())["claims"][0]["id"]
    assert f"key claims.0.direction (claim '{first_id}'): 'donw' is not one of ['up', 'down']" in out


def test_missing_gmt_stops_the_dry_run(tmp_path):
    text = _absolute(DEMO_CONFIG).replace("prepost_curated.gmt", "missing.gmt")
    proc = _dry_run(tmp_path, text)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # parse-time errors go to stdout
    assert "enrichment.collections 'prepost_curated'" in out and "missing.gmt" in out


def test_known_input_error_is_one_message_traceback_in_the_log(tmp_path):
    text = _absolute(DEMO_CONFIG).replace("post-treatment: post}", "post-treatmen: post}", 1)
    proc = _dry_run(tmp_path, text, "results/demo_array/prepare.json", dry=False)
    assert proc.returncode != 0
    msg = "pairing.timepoint.map has no entry for value(s) 'post-treatment'"
    assert proc.stderr.count(msg) == 1 and "prepost: dataset 'demo_array'" in proc.stderr
    assert "Traceback" not in proc.stderr
    log = (tmp_path / "results/logs/demo_array/prepare.log").read_text()
    assert msg in log and "Traceback (most recent call last)" in log
    assert not (tmp_path / "results/demo_array/prepare.json").exists()
