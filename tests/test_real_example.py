"""The real-data walk-through: config/examples/gse91061.yaml, unmodified, on the real files of
../shared/data (skipped when they are absent). Only the paths are rewritten, to the shared
folder and a temporary results folder."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SHARED_DATA, SNAKEMAKE

CONFIG = ROOT / "config/examples/gse91061.yaml"
pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "geo/GSE91061").is_dir(), reason="../shared/data absent"
)


def _real_path(p: str) -> str:
    return str(SHARED_DATA / p.split("shared/data/", 1)[1]) if "shared/data/" in p else str(ROOT / p)


@pytest.mark.slow
def test_gse91061_example_runs_end_to_end(tmp_path):
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["results"], cfg["resources"] = "results", "resources"
    cfg["claims"] = str(ROOT / cfg["claims"])
    for coll in cfg["enrichment"]["collections"]:
        coll["path"] = _real_path(coll["path"])
    ds = cfg["datasets"]["riaz2017"]
    ds["expression"], ds["samples"] = _real_path(ds["expression"]), _real_path(ds["samples"])
    for m in ds["gene_map"]:
        m["path"] = _real_path(m["path"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                     str(config), "--cores", "2", "--scheduler", "greedy"],
        capture_output=True, text=True, timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = tmp_path / "results"
    summary = json.loads((res / "riaz2017/prepare.json").read_text())
    assert summary["pairs"] == 43 and summary["gene_ids"]["id_type"] == "entrez"
    assert summary["gene_ids"]["mapped"] > 0.99 * summary["gene_ids"]["ids"] - 200
    de = pd.read_csv(res / "riaz2017/de/post_vs_pre.tsv", sep="\t")
    assert len(de) == 22187 and de["gene"].is_unique
    # symbols, not Entrez ids, reach the claims: the seed genes are tested, not "not in the data"
    claims = pd.read_csv(res / "claims.tsv", sep="\t")
    genes = claims[claims["kind"] == "gene_change"]
    assert len(genes) and not genes["reason"].fillna("").str.contains("not in the expression data").any()
    assert (res / "report.html").stat().st_size > 0


MALAGA = ROOT / "config/examples/malaga_nac.yaml"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "nanostring/malaga_nac/RCCData").is_dir(), reason="../shared/data absent")
def test_malaga_nac_example_runs_end_to_end(tmp_path):
    """config/examples/malaga_nac.yaml on the 204 RCC files as they are: lane QC, housekeeping
    size factors, DE, enrichment skipped (not aborted) for collections the panel barely covers,
    claims and report."""
    cfg = yaml.safe_load(MALAGA.read_text())
    cfg["results"], cfg["resources"] = "results", "resources"
    cfg["claims"] = str(ROOT / cfg["claims"])
    for coll in cfg["enrichment"]["collections"]:
        coll["path"] = _real_path(coll["path"])
    ds = cfg["datasets"]["malaga_nac"]
    ds["rcc"]["path"] = _real_path(ds["rcc"]["path"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                     str(config), "--cores", "2", "--scheduler", "greedy"],
        capture_output=True, text=True, timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = tmp_path / "results"
    summary = json.loads((res / "malaga_nac/prepare.json").read_text())
    assert summary["pairs"] == 70 and summary["rcc"]["files"] == 204
    assert summary["size_factors"]["method"] == "housekeeping"
    pairs = pd.read_csv(res / "malaga_nac/pairs.tsv", sep="\t", dtype=str)
    excluded = pairs[pairs["reason"] == "timepoint value mapped to exclude: 2"]
    assert len(excluded) == 23  # the undocumented third samples: reported, not silently dropped
    lanes = pd.read_csv(res / "malaga_nac/qc/lanes.tsv", sep="\t")
    assert len(lanes) == 204 and {"flag", "reason", "pos_linearity_r2"} <= set(lanes.columns)
    de = pd.read_csv(res / "malaga_nac/de/post_vs_pre.tsv", sep="\t")
    assert len(de) == 730  # Endogenous genes; housekeeping genes not tested
    found = pd.read_csv(res / "malaga_nac/enrich/post_vs_pre/genesets_found.tsv", sep="\t")
    status = found.drop_duplicates("collection").set_index("collection")["collection_status"]
    assert status["prepost_curated"].startswith("skipped: only 17.1%")
    claims = pd.read_csv(res / "claims.tsv", sep="\t")
    genes = claims[(claims["kind"] == "gene_change") & claims["feature"].isin(["BRCA1", "BRCA2", "ATM", "FANCA", "GADD45A", "FAS"])
                   & ~claims["reason"].fillna("").str.startswith("wrong treatment")]
    assert len(genes) == 7 and genes["verdict"].ne("not testable").all()  # gene claims survive
    html = (res / "report.html").read_text()
    assert "NanoString lane QC" in html and "Collection skipped: prepost_curated" in html
