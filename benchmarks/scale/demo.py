"""The demo end to end, this checkout against a reference commit, measured in the same run.

Each side is a clean `git worktree` of its commit in a temporary folder; the runs alternate
(ref, head, ref, head, ...) so that load from other work on the machine falls on both alike.
Each run starts from no results (`snakemake --cores N` in the worktree, the workflow profile
skipped). The package is imported from each worktree's own src/ (PYTHONPATH), with this
checkout's virtualenv. Prints per-run wall time, jobs and load, the medians, and head/ref.

    make bench-demo                                  # against origin's main (or main)
    make bench-demo BENCH_ARGS="--ref 3b4ea4e --repeat 3"
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def worktree(rev: str, dest: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), rev],
                   check=True, capture_output=True)
    return dest


def run_demo(tree: Path, cores: int) -> dict:
    for d in ("results", ".snakemake"):
        shutil.rmtree(tree / d, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([str(SNAKEMAKE), "--cores", str(cores), "--workflow-profile", "none",
                           "--configfile", "config/config.yaml"],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"demo failed in {tree}:\n{proc.stderr[-3000:]}")
    jobs = proc.stderr.count("localrule ") + proc.stderr.count("\nrule ")
    return {"wall_s": wall, "jobs": jobs, "load1_before": load, "load1_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", default="main", help="reference commit (default: main)")
    ap.add_argument("--head", default="HEAD", help="commit to measure (default: HEAD)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="prepost-demo-ab-"))
    trees = {}
    try:
        for side, rev in (("ref", args.ref), ("head", args.head)):
            trees[side] = worktree(rev, tmp / side)
        rows = []
        for i in range(args.repeat):
            for side in ("ref", "head"):
                r = run_demo(trees[side], args.cores)
                rows.append({"side": side, "run": i + 1, **r})
                print(f"{side:4s} run {i + 1}: {r['wall_s']:6.1f} s, {r['jobs']} jobs, load "
                      f"{r['load1_before']:.2f} -> {r['load1_after']:.2f}", flush=True)
        med = {s: statistics.median(r["wall_s"] for r in rows if r["side"] == s) for s in ("ref", "head")}
        print(f"\nmedian wall: ref ({args.ref}) {med['ref']:.1f} s, head ({args.head}) {med['head']:.1f} s; "
              f"head/ref = {med['head'] / med['ref']:.2f}")
    finally:
        for t in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(t)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
