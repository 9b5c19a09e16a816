"""The scale benchmark's generator writes cohorts that the real prepare step reads as planted.

Why: benchmark timings mean nothing if the generated series do not go through the same parse ->
collapse -> pairing path as the demo, or if two generations differ. Small gene counts here; the
benchmark itself uses 20,000 genes (benchmarks/scale/README.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen():
    path = ROOT / "benchmarks" / "scale" / "generate.py"
    spec = importlib.util.spec_from_file_location("scale_generate", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scale_generate"] = mod
    spec.loader.exec_module(mod)
    return mod


N_GENES = 1000


@pytest.mark.parametrize("kind", ["array", "counts"])
def test_generated_dataset_prepares_with_all_pairs(gen, kind, tmp_path):
    from prepost.prepare.dataset import prepare_dataset

    genes = gen.gene_universe(N_GENES)
    probes = gen.demo.array_probes(genes) if kind == "array" else None
    files = gen.write_dataset(tmp_path, kind, 12, 3, genes, probes)
    entry = gen.dataset_config(kind, 12, 3, gen.ALL_CONTRASTS)
    p = prepare_dataset("ds", entry, {k: str(v) for k, v in files.items()})
    assert p.summary["accession"] == gen.accession(kind, 12, 3)
    assert p.summary["genes"] == N_GENES  # array: probes collapsed back to one row per gene
    assert p.summary["samples"] == 12 and p.summary["dropped"] == {}
    assert p.sheet["patient"].nunique() == 6
    assert p.sheet.groupby("patient")["timepoint"].nunique().eq(2).all()
    assert set(p.sheet["response"]) == {"responder", "non_responder"}
    # A planted gene moves the planted way: BRCA2 is -1 log2 post-treatment.
    x = p.expression if kind == "array" else np.log2(p.expression + 1)
    s = p.sheet.set_index("sample")
    post = x.loc["BRCA2", s.index[s["timepoint"].eq("post")]].groupby(s["patient"]).mean()
    pre = x.loc["BRCA2", s.index[s["timepoint"].eq("pre")]].groupby(s["patient"]).mean()
    assert (post - pre).mean() < -0.5


def test_generation_is_byte_identical(gen, tmp_path):
    genes = gen.gene_universe(N_GENES)
    a = gen.write_dataset(tmp_path / "a", "counts", 10, 0, genes, None)
    b = gen.write_dataset(tmp_path / "b", "counts", 10, 0, gen.gene_universe(N_GENES), None)
    for role in a:
        assert a[role].read_bytes() == b[role].read_bytes(), role


def test_scenario_config_is_valid(gen, tmp_path):
    specs = [("array", 20, 0), ("counts", 20, 1)]
    cfg = gen.scenario_config(specs, tmp_path / "mirror", ["post_vs_pre", "interaction"])
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    jsonschema.validate(cfg, schema)
    assert Path(cfg["claims"]).is_file()
    assert all(Path(c["path"]).is_file() for c in cfg["enrichment"]["collections"] if "path" in c)
    assert cfg["enrichment"]["method"] == "multilevel"
    assert sorted(cfg["datasets"]) == ["array_20s_00", "counts_20s_01"]


@pytest.fixture(scope="module")
def runner(gen):
    path = ROOT / "benchmarks" / "scale" / "run.py"
    spec = importlib.util.spec_from_file_location("scale_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_rule_declares_benchmark_and_resources(runner):
    """The scale benchmark reads every rule's benchmark: file and checks the declared mem_mb and
    runtime against it; a rule without them would silently drop out of both."""
    blocks = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in smk.read_text().split("\nrule "):
            name = block.split(":", 1)[0].removeprefix("rule ").strip()
            if "\n    input:" in block or "\n    output:" in block:
                blocks[name] = block
    declared = runner.declared_resources()
    assert sorted(declared["rule"]) == sorted(blocks)
    for name, block in blocks.items():
        for key in ("log:", "benchmark:", "mem_mb=", "runtime="):
            assert key in block, f"rule {name} lacks {key}"


def test_resource_check_flags_a_rule_over_its_declaration(runner):
    import pandas as pd

    declared = pd.DataFrame(
        [{"rule": "a", "threads": 1, "mem_mb": 1000, "runtime": 10},
         {"rule": "b", "threads": 2, "mem_mb": 500, "runtime": 1}]
    )
    jobs = pd.DataFrame(
        [{"scenario": "s20", "rule": "a", "s": 30.0, "max_rss_mb": 400.0},
         {"scenario": "s600", "rule": "a", "s": 90.0, "max_rss_mb": 900.0},
         {"scenario": "s600", "rule": "b", "s": 70.0, "max_rss_mb": 100.0}]
    )
    res = runner.resource_check(jobs, declared).set_index("rule")
    assert res.loc["a", "rss_share"] == 0.9 and res.loc["a", "rss_at"] == "s600"
    assert res.loc["a", "ok"]
    assert res.loc["b", "time_share"] == round(70 / 60, 3) and not res.loc["b", "ok"]
