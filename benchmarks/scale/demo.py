"""The demo end to end, this checkout against a reference commit, measured in the same run.

Each side is a clean `git worktree` of its commit in a temporary folder; the runs alternate
(ref, head, ref, head, ...) so that load from other work on the machine falls on both alike.
Each run starts from nothing written by an earlier one (results, logs, downloads and gene sets
under resources/; `snakemake --cores N --scheduler greedy` in the worktree, the workflow profile
skipped, its scheduler given). The
package is imported from each worktree's own src/ (PYTHONPATH), with this checkout's virtualenv.
Prints per-run wall time (and Snakemake's own elapsed time), CPU, jobs and load, the medians, and
head/ref.

    make bench-demo                                  # against origin's main (or main)
    make bench-demo BENCH_ARGS="--ref 3b4ea4e --repeat 3"
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SCHEDULER = "greedy"  # profiles/default's (the profile itself is skipped); both sides alike


def worktree(rev: str, dest: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), rev],
                   check=True, capture_output=True)
    return dest


def compile_tree(tree: Path) -> None:
    """Byte-compile a tree's src/ as `make run` does (an editable install's src/ is otherwise
    compiled again by every job when PYTHONDONTWRITEBYTECODE is set): both sides alike, so the
    ratio compares the code, not where bytecode happened to be written."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "src")], check=True,
                   capture_output=True)


def run_demo(tree: Path, cores: int) -> dict:
    # Back to the clean checkout (results, logs, downloads and gene sets under resources/ are
    # all untracked): each run starts cold and runs every job, so runs and job counts compare.
    subprocess.run(["git", "-C", str(tree), "clean", "-xdfq"], check=True)
    compile_tree(tree)  # untimed, as make run's compile step is ~0.05 s when up to date
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    load = os.getloadavg()[0]
    t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(SNAKEMAKE), "--cores", str(cores), "--workflow-profile", "none",
                           "--configfile", "config/config.yaml", "--scheduler", SCHEDULER],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime  # Snakemake and its jobs
    if proc.returncode:
        raise SystemExit(f"demo failed in {tree}:\n{proc.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)$", proc.stderr, flags=re.M)  # Snakemake's job stats
    jobs = int(total.group(1)) if total else -1
    # Snakemake's own "Elapsed time" (the measure: from its first job's scheduling to
    # the end, without the interpreter start, imports and DAG build before it)
    el = re.search(r"Elapsed time: (\d+):(\d+):(\d+(?:\.\d+)?)", proc.stderr)
    elapsed = int(el.group(1)) * 3600 + int(el.group(2)) * 60 + float(el.group(3)) if el else float("nan")
    return {"wall_s": wall, "elapsed_s": elapsed, "cpu_s": cpu, "jobs": jobs,
            "load1_before": load, "load1_after": os.getloadavg()[0]}


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
                print(f"{side:4s} run {i + 1}: {r['wall_s']:6.1f} s wall ({r['elapsed_s']:.1f} s "
                      f"Snakemake elapsed), {r['cpu_s']:6.1f} s CPU, "
                      f"{r['jobs']} jobs, load "
                      f"{r['load1_before']:.2f} -> {r['load1_after']:.2f}", flush=True)
        for what in ("wall_s", "elapsed_s", "cpu_s"):
            med = {s: statistics.median(r[what] for r in rows if r["side"] == s) for s in ("ref", "head")}
            print(f"median {what[:-2]}: ref ({args.ref}) {med['ref']:.1f} s, head ({args.head}) "
                  f"{med['head']:.1f} s; head/ref = {med['head'] / med['ref']:.2f}")
    finally:
        for t in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(t)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
