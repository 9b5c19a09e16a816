"""prepost used the way Snakemake users deploy catalog workflows: a project folder of the user's
own with workflow/Snakefile declaring prepost as a module (what `snakedeploy deploy-workflow`
writes) and its own config/. The run happens in that folder; the workflow's own files (schemas,
scripts, the demo's GEO mirror, the shipped claims) come from the checkout through `<workflow>/`
paths and the rule files' own places; the user's files are relative to the project folder;
nothing is written into the checkout."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SNAKEMAKE

MODULE_SNAKEFILE = """\
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# declare prepost as a module (snakedeploy writes github("owner/prepost", path=..., tag=...))
module prepost:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from prepost
use rule * from prepost
"""

SKIP_PARTS = {".git", "__pycache__", ".pytest_cache"}


def _files_newer_than(root: Path, t0: float) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_PARTS]
        for name in filenames:
            p = Path(dirpath) / name
            try:
                if p.stat().st_mtime >= t0:
                    out.append(str(p.relative_to(root)))
            except FileNotFoundError:
                continue
    return out


def _project(tmp_path: Path) -> Path:
    """An empty folder made into a project: workflow/Snakefile (the module) and its own config."""
    project = tmp_path / "my project"  # a space: paths are quoted, never split
    (project / "workflow").mkdir(parents=True)
    (project / "workflow/Snakefile").write_text(
        MODULE_SNAKEFILE.format(snakefile=ROOT / "workflow/Snakefile"))
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg = {
        "results": "results",
        "resources": "resources",
        "claims": "<workflow>/config/claims.yaml",  # the workflow's shipped catalogue
        "download": {**demo["download"], "base_url": "<workflow>/resources/demo/geo"},
        "claims_settings": demo["claims_settings"],
        # the user's own gene sets, relative to the project folder
        "enrichment": {**demo["enrichment"], "permutations": 100,
                       "collections": [{"name": "mine", "path": "config/genesets/mine.gmt"}]},
        "datasets": {"my_series": {**demo["datasets"]["demo_rnaseq"], "contrasts": ["post_vs_pre"]}},
    }
    (project / "config/genesets").mkdir(parents=True)
    (project / "config/genesets/mine.gmt").write_text(
        (ROOT / "config/genesets/prepost_curated.gmt").read_text())
    (project / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return project


def _snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + ["--cores", "2", "--scheduler", "greedy", *args],
                          cwd=project, capture_output=True, text=True, timeout=1800)


def test_module_dry_run_resolves_paths_from_the_workflow(tmp_path):
    project = _project(tmp_path)
    proc = _snakemake(project, "-n")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "download" in proc.stdout and "report" in proc.stdout


def test_module_missing_user_file_names_where_it_was_looked_for(tmp_path):
    project = _project(tmp_path)
    (project / "config/genesets/mine.gmt").unlink()
    proc = _snakemake(project, "-n")
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "config/genesets/mine.gmt" in err and "relative to the working directory" in err
    assert "<workflow>/" in err


@pytest.mark.slow
def test_module_deployment_runs_in_the_users_folder(tmp_path):
    project = _project(tmp_path)
    t0 = time.time() - 1
    proc = _snakemake(project)
    assert proc.returncode == 0, proc.stderr[-6000:]
    res = project / "results"
    de = pd.read_csv(res / "my_series/de/post_vs_pre.tsv", sep="\t")
    assert len(de) > 1000 and de["padj"].notna().any()
    pairs = pd.read_csv(res / "my_series/pairs.tsv", sep="\t")
    assert (pairs["status"] == "kept").sum() == 20
    assert (res / "report.html").stat().st_size > 0
    claims = pd.read_csv(res / "claims.tsv", sep="\t")
    assert set(claims["dataset"]) == {"my_series"}
    manifest = pd.read_csv(project / "resources/geo/my_series/manifest.tsv", sep="\t")
    assert manifest["url"].str.startswith(str(ROOT / "resources/demo/geo")).all()
    collections = pd.read_csv(res / "genesets/collections.tsv", sep="\t")
    assert collections["collection"].tolist() == ["mine"]
    assert collections["source"].iloc[0].endswith("config/genesets/mine.gmt")
    # nothing of the run went into the checkout
    assert _files_newer_than(ROOT, t0) == []


def test_workflow_marker_resolves_only_marked_strings():
    from prepost.paths import resolve_workflow_paths

    cfg = {"claims": "<workflow>/config/claims.yaml", "results": "results",
           "download": {"base_url": "<workflow>/resources/demo/geo", "timeout": 60},
           "enrichment": {"collections": [{"name": "a", "path": "config/x.gmt"},
                                          {"name": "b", "path": "<workflow>/config/genesets/y.gmt"}]},
           "datasets": {"d": {"description": "text mentioning <workflow>/ in the middle", "n": 3}}}
    out = resolve_workflow_paths(cfg, "/opt/prepost")
    assert out["claims"] == "/opt/prepost/config/claims.yaml"
    assert out["download"] == {"base_url": "/opt/prepost/resources/demo/geo", "timeout": 60}
    assert [c["path"] for c in out["enrichment"]["collections"]] == ["config/x.gmt", "/opt/prepost/config/genesets/y.gmt"]
    assert out["results"] == "results" and out["datasets"] == cfg["datasets"]
    assert cfg["claims"] == "<workflow>/config/claims.yaml"  # the input is not changed
    # a remote module: the repository's URL
    assert resolve_workflow_paths("<workflow>/resources/demo/geo", "https://example.org/raw/v1/") == \
        "https://example.org/raw/v1/resources/demo/geo"
