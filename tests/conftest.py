"""Session fixtures shared by the end-to-end tests: one run of the whole demo workflow per
pytest session (``demo_run``), downloading from a GEO-like server on 127.0.0.1
(``geo_server``). Tests that need a run of their own (the byte-identity check, the
interruption tests) start one with ``run_workflow`` or ``workflow_cmd``, and
``copy_run`` gives a private copy of the finished run to mutate."""

from __future__ import annotations

import functools
import os
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from prepost.paths import resolve_workflow_paths

ROOT = Path(__file__).resolve().parents[1]
# Real public files (../shared/data beside the checkout, or $PREPOST_SHARED_DATA); tests that
# read them skip when the folder is absent.
SHARED_DATA = Path(os.environ.get("PREPOST_SHARED_DATA") or ROOT.parent / "shared/data")
DEMO_GEO = ROOT / "resources/demo/geo"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def geo_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DEMO_GEO))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def write_config(workdir: Path, base_url: str) -> Path:
    """The demo config with results/ and resources/ inside ``workdir`` (relative to it, so a
    copied run folder is a complete run of its own) and the repository files by absolute path."""
    cfg = resolve_workflow_paths(yaml.safe_load((ROOT / "config/config.yaml").read_text()), str(ROOT))
    cfg["results"] = "results"
    cfg["resources"] = "resources"
    cfg["claims"] = str(ROOT / "config/claims.yaml")
    for coll in cfg["enrichment"]["collections"]:
        if "path" in coll:
            coll["path"] = str(ROOT / coll["path"])
    for ds in cfg["datasets"].values():  # published DE tables (and universes) given by a local path
        for key in ("table", "universe"):
            if "path" in ds.get(key, {}):
                ds[key]["path"] = str(ROOT / ds[key]["path"])
    cfg["download"].update(base_url=base_url, retries=1, backoff=0.1, timeout=20)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def workflow_cmd(workdir: Path, base_url: str, *extra: str) -> list[str]:
    """The Snakemake command line for the demo in ``workdir`` (writes its config.yaml). The
    workflow profile (profiles/default) still applies: rerun-incomplete.
    Two settings for speed, neither changes a job or an output (checked byte for byte against
    --cores 2): --cores 4 on a 2-core machine, so a single-threaded job can run beside a rule
    of 2 threads (de, enrich: they keep 2, capped by --cores, and use about one core for most
    of their time); and the greedy scheduler instead of the default ILP one (a CBC solve at
    every scheduling round). One demo run, measured on the shared machine: 193 s with
    --cores 2, 160 s with --cores 4, 134 s with both.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, base_url)
    return SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                        "--configfile", str(config), "--cores", "4", "--scheduler", "greedy", *extra]


def run_workflow(workdir: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(workflow_cmd(workdir, base_url, *extra), capture_output=True, text=True,
                          timeout=2400)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, geo_server) -> Path:
    """The whole demo workflow, run once per session. Read it; to change files in it, take a
    ``copy_run`` first (``--report`` and dry runs, which write only outside results/, are fine)."""
    workdir = tmp_path_factory.mktemp("demo_run")
    proc = run_workflow(workdir, geo_server)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a finished run folder: results, resources and Snakemake's metadata
    (.snakemake/), modification times kept, so Snakemake sees it as up to date. Snakemake's
    logs are left behind."""
    shutil.copytree(src, dst, ignore=lambda d, names: ["log"] if Path(d).name == ".snakemake" else [])
    return dst
