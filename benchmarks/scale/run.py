"""Whole-workflow scale benchmark: wall time and per-rule time/peak memory on generated cohorts.

Why: the issue's targets are about the workflow as users run it (Snakemake, one process per job,
files on disk), not about one function, so each scenario runs the real ``snakemake`` on a
generated GEO mirror (benchmarks/scale/generate.py) and reads every rule's ``benchmark:`` TSV.

Scenarios: ``s20 s60 s200 s600`` = one dataset of 20/60/200/600 samples (20,000 genes);
``d1 d4 d16`` = 1/4/16 datasets of 60 samples (``d1`` is ``s60``, run once). Outputs go to
benchmarks/scale/out/ (git-ignored): ``work/<scenario>/`` (config, results, Snakemake log),
``jobs.tsv`` (one row per job), ``scenarios.tsv`` and ``summary.md``.

    python benchmarks/scale/run.py                       # s20 s60 s200 d4 d16
    python benchmarks/scale/run.py --scenarios s600      # the long one
    python benchmarks/scale/run.py --report-only         # re-read finished work/ folders
    python benchmarks/scale/run.py --dag                 # DAG build / dry run, 16 datasets
    python benchmarks/scale/run.py --ref 3f723e1 --scenarios s200 d16   # before/after ratios

With ``--ref <commit>`` every scenario (and --dag) is run twice in the same session, first by
that commit (a clean ``git worktree`` in a temporary folder, its own Snakefile and src/ on
PYTHONPATH, this virtualenv; work folders ``<scenario>-ref``) and then by this checkout, and
head/ref ratios of wall and summed job CPU time are printed with the load beside each.

The machine may be shared: the load average (1 min) is printed before and after and sampled
every 5 s during each run; read the times with it.
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
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from demo import compile_tree, worktree  # noqa: E402

ROOT = generate.ROOT
OUT = generate.OUT
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SCENARIOS = {
    "s20": (20, 1),
    "s60": (60, 1),
    "s200": (200, 1),
    "s600": (600, 1),
    "d1": (60, 1),
    "d4": (60, 4),
    "d16": (60, 16),
}
DEFAULT = ["s20", "s60", "s200", "d4", "d16"]
TARGET_S200_S = 60.0  # issue 19: 200 samples, all five contrasts, end to end
TARGET_RSS_MB = 4096.0
TARGET_DAG_S = 5.0  # issue 19: dry run of 16 datasets


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class LoadSampler:
    """Mean and max of the 1-minute load average while a run is going (sampled every ``every`` s)."""

    def __init__(self, every: float = 5.0):
        self.every, self.values, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            self.values.append(load1())
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def specs_of(scenario: str, kinds: list[str]) -> list[tuple[str, int, int]]:
    """(kind, samples, index) of each dataset; with two kinds, datasets alternate between them."""
    samples, n = SCENARIOS[scenario]
    if n == 1:
        return [(k, samples, 0) for k in kinds]
    return [(kinds[i % len(kinds)], samples, i // len(kinds)) for i in range(n)]


def base(name: str) -> str:
    """Scenario of a work folder name: ``s200-array5`` -> ``s200``."""
    return name.split("-", 1)[0]


def prepare_workdir(name: str, kinds: list[str], contrasts: list[str]) -> Path:
    """Fresh work/<name>/ with its config.yaml (data generated if missing)."""
    specs = specs_of(base(name), kinds)
    t0 = time.perf_counter()
    generate.generate(specs, OUT / "mirror", log=lambda m: print(f"  data {m}", flush=True))
    print(f"  data ready in {time.perf_counter() - t0:.1f} s", flush=True)
    work = OUT / "runs" / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = generate.scenario_config(specs, OUT / "mirror", contrasts)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


# The job scheduler of profiles/default (the workflow profile is skipped here, so that its
# configfile cannot leak in): greedy. Snakemake's default ILP scheduler solves an LP per round
# (0.37 s of CPU per job at 4 datasets, more with 16); ref and head get the same one.
SCHEDULER = "greedy"


def snakemake_cmd(work: Path, cores: int, *extra: str, root: Path = ROOT,
                  scheduler: str = SCHEDULER) -> list[str]:
    return [
        str(SNAKEMAKE), "--snakefile", str(root / "Snakefile"), "--directory", str(work),
        "--configfile", str(work / "config.yaml"), "--workflow-profile", "none",
        "--cores", str(cores), "--scheduler", scheduler, *extra,
    ]


def tree_env(root: Path) -> dict:
    """The environment a tree's workflow runs in: its own package first on the path."""
    return dict(os.environ, PYTHONPATH=str(root / "src"))


def run_scenario(scenario: str, kinds: list[str], contrasts: list[str], cores: int,
                 root: Path = ROOT) -> dict:
    work = prepare_workdir(scenario, kinds, contrasts)
    cmd = snakemake_cmd(work, cores, "--rerun-incomplete", "--show-failed-logs", root=root)
    before = uptime()
    print(f"  before: {before}\n  $ {' '.join(cmd)}", flush=True)
    with LoadSampler() as load, open(work / "snakemake.log", "w") as log:
        t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=tree_env(root))
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = uptime()
    print(f"  after:  {after}\n  wall {wall:.1f} s, exit {proc.returncode}", flush=True)
    info = {
        "scenario": scenario, "wall_s": round(wall, 1), "exit": proc.returncode,
        # user + system CPU of Snakemake and every job it ran (exact, from the kernel; the
        # benchmark files' cpu_time is sampled and misses the end of short jobs)
        "cpu_s": round(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime, 1),
        "load_before": before.rsplit("load average:", 1)[-1].strip(),
        "load_after": after.rsplit("load average:", 1)[-1].strip(),
        "load_mean": round(statistics.fmean(load.values), 2) if load.values else float("nan"),
        "load_max": max(load.values, default=float("nan")),
        "cores": cores, "kinds": "+".join(kinds), "contrasts": len(contrasts),
    }
    (work / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    if proc.returncode:
        tail = (work / "snakemake.log").read_text().splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
    return info


def rule_of(path: Path, datasets: list[str], contrasts: list[str]) -> tuple[str, str, str]:
    """(dataset, rule, contrast) from results/benchmarks/[<ds>/]<rule>[_<contrast>].tsv."""
    ds = path.parent.name if path.parent.name in datasets else ""
    stem = path.name.split(".", 1)[0]  # download.<file>.tsv: one job per downloaded file
    for c in sorted(contrasts, key=len, reverse=True):
        if stem.endswith("_" + c):
            return ds, stem[: -len(c) - 1], c
    return ds, stem, ""


def collect_jobs(scenario: str) -> pd.DataFrame:
    """Every benchmark TSV of a finished scenario, one row per job."""
    work = OUT / "runs" / scenario
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    datasets = list(cfg["datasets"])
    contrasts = sorted({c for d in cfg["datasets"].values() for c in d["contrasts"]})
    rows = []
    for f in sorted((work / "results" / "benchmarks").rglob("*.tsv")):
        b = pd.read_csv(f, sep="\t")
        ds, rule, contrast = rule_of(f, datasets, contrasts)
        rows.append({
            "scenario": scenario, "dataset": ds, "rule": rule, "contrast": contrast,
            "s": float(b["s"].iloc[0]), "max_rss_mb": float(pd.to_numeric(b["max_rss"], errors="coerce").iloc[0]),
            "cpu_time": float(pd.to_numeric(b["cpu_time"], errors="coerce").iloc[0]),
        })
    return pd.DataFrame(rows)


def scenario_row(scenario: str, jobs: pd.DataFrame) -> dict:
    work = OUT / "runs" / scenario
    info = yaml.safe_load((work / "run.yaml").read_text())
    samples, n = SCENARIOS[base(scenario)]
    j = jobs[jobs["scenario"] == scenario]
    slow = j.loc[j["s"].idxmax()]
    big = j.loc[j["max_rss_mb"].idxmax()]
    by_rule = j.groupby("rule")["s"].sum().sort_values(ascending=False)
    return {
        "scenario": scenario, "kinds": info["kinds"], "datasets": n, "samples": samples,
        "contrasts": info["contrasts"], "jobs": len(j), "wall_s": info["wall_s"],
        "sum_rule_s": round(j["s"].sum(), 1), "sum_rule_cpu_s": round(j["cpu_time"].sum(), 1),
        "slowest_job": f"{slow['rule']}{':' + slow['contrast'] if slow['contrast'] else ''} {slow['s']:.1f}s",
        "top_rule_total": f"{by_rule.index[0]} {by_rule.iloc[0]:.1f}s",
        "max_rss_mb": round(big["max_rss_mb"], 1), "max_rss_rule": big["rule"],
        "wall_per_sample_s": round(info["wall_s"] / (samples * n), 3),
        "wall_per_dataset_s": round(info["wall_s"] / n, 1),
        "load_before": info["load_before"], "load_mean": info["load_mean"], "load_max": info["load_max"],
        "exit": info["exit"],
    }


PROFILE_DEFAULTS = {"mem_mb": 1000, "runtime": 30}  # profiles/slurm default-resources


def declared_resources(rules_dir: Path = ROOT / "workflow" / "rules") -> pd.DataFrame:
    """threads, mem_mb and runtime (minutes) each rule declares (the SLURM profile's defaults for
    what it leaves out), read from the snakefmt-formatted rule files: the benchmark checks them
    against what the rules used."""
    rows = []
    for smk in sorted(rules_dir.glob("*.smk")):
        blocks = re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)
        for block in blocks:
            head = re.match(r"rule (\w+):", block)
            if not head:
                continue
            row = {"rule": head.group(1), "file": smk.name, "threads": 1, **PROFILE_DEFAULTS}
            for key in ("threads", "mem_mb", "runtime"):
                m = re.search(rf"^\s+{key}\s*[:=]\s*(\d+)", block, flags=re.M)
                if m:
                    row[key] = int(m.group(1))
            rows.append(row)
    return pd.DataFrame(rows)


def resource_check(jobs: pd.DataFrame, declared: pd.DataFrame) -> pd.DataFrame:
    """Per rule: declared mem_mb / runtime against the largest peak RSS and the longest job over
    every scenario run (and where it was measured)."""
    big = jobs.loc[jobs.groupby("rule")["max_rss_mb"].idxmax(), ["rule", "max_rss_mb", "scenario"]]
    slow = jobs.loc[jobs.groupby("rule")["s"].idxmax(), ["rule", "s", "scenario"]]
    out = (
        declared.merge(big.rename(columns={"scenario": "rss_at"}), on="rule", how="inner")
        .merge(slow.rename(columns={"scenario": "s_at", "s": "max_s"}), on="rule", how="inner")
    )
    out["rss_share"] = (out["max_rss_mb"] / out["mem_mb"]).round(2)
    out["time_share"] = (out["max_s"] / (60 * out["runtime"])).round(3)
    out["ok"] = (out["rss_share"] < 1) & (out["time_share"] < 1)
    cols = ["rule", "threads", "mem_mb", "max_rss_mb", "rss_at", "rss_share", "runtime", "max_s",
            "s_at", "time_share", "ok"]
    return out[cols].round({"max_rss_mb": 0, "max_s": 1}).sort_values("rss_share", ascending=False)


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def checks(table: pd.DataFrame, jobs: pd.DataFrame) -> list[str]:
    """The issue's three targets, on whatever scenarios have been run."""
    out = []
    t = table.set_index("scenario")
    for name in [n for n in t.index if base(n) == "s200"]:
        w, k, c = t.loc[name, "wall_s"], t.loc[name, "kinds"], t.loc[name, "contrasts"]
        out.append(f"{name} ({k}, {c} contrasts): 200 samples end to end {w:.0f} s "
                   f"(target <= {TARGET_S200_S:.0f} s): {'PASS' if w <= TARGET_S200_S else 'FAIL'}")
    d = {k: t.loc[k, "wall_s"] for k in ("d1", "s60", "d4", "d16") if k in t.index}
    d1 = d.get("d1", d.get("s60"))
    c = {k: t.loc[k, "sum_rule_cpu_s"] for k in ("d1", "s60", "d4", "d16") if k in t.index}
    c1 = c.get("d1", c.get("s60"))
    if c1 is not None and "d4" in c:
        more = f", {(c['d16'] - c['d4']) / 12:.1f} s (4->16)" if "d16" in c else ""
        out.append(f"datasets, CPU seconds summed over jobs (load-independent): 1/4/16 = {c1:.0f}/"
                   f"{c['d4']:.0f}/{c.get('d16', float('nan')):.0f} s; per added dataset "
                   f"{(c['d4'] - c1) / 3:.1f} s (1->4){more}")
    if d1 is not None and "d4" in d and "d16" in d:
        m1, m2 = (d["d4"] - d1) / 3, (d["d16"] - d["d4"]) / 12
        ratio = m2 / m1 if m1 > 0 else float("nan")
        out.append(
            f"datasets 1/4/16: wall {d1:.0f}/{d['d4']:.0f}/{d['d16']:.0f} s; per added dataset "
            f"{m1:.1f} s (1->4) vs {m2:.1f} s (4->16), ratio {ratio:.2f} "
            f"(linear or better if <= 1.25): {'PASS' if ratio <= 1.25 else 'FAIL'}; "
            f"wall(16)/wall(1) = {d['d16'] / d1:.1f}"
        )
    for name in [n for n in t.index if base(n) == "s600"]:
        j = jobs[jobs["scenario"] == name]
        big = j.loc[j["max_rss_mb"].idxmax()]
        out.append(f"{name}: 600 samples, largest rule peak RSS: {big['rule']} {big['max_rss_mb']:.0f} MB "
                   f"(target < {TARGET_RSS_MB:.0f} MB): {'PASS' if big['max_rss_mb'] < TARGET_RSS_MB else 'FAIL'}")
    return out


def report(scenarios: list[str]) -> None:
    """Tables of every finished work folder (the given scenarios first, then tagged runs)."""
    found = sorted(p.parent.name for p in (OUT / "runs").glob("*/run.yaml"))
    done = [s for s in scenarios if s in found] + [s for s in found if s not in scenarios]
    if not done:
        print("no finished scenario to report")
        return
    jobs = pd.concat([collect_jobs(s) for s in done], ignore_index=True)
    table = pd.DataFrame([scenario_row(s, jobs) for s in done])
    per_rule = (
        jobs.groupby(["scenario", "rule"])
        .agg(jobs=("s", "size"), total_s=("s", "sum"), max_s=("s", "max"), cpu_s=("cpu_time", "sum"),
             max_rss_mb=("max_rss_mb", "max"))
        .round(1)
        .reset_index()
    )
    jobs.to_csv(OUT / "jobs.tsv", sep="\t", index=False)
    table.to_csv(OUT / "scenarios.tsv", sep="\t", index=False)
    per_rule.to_csv(OUT / "rules.tsv", sep="\t", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.drop(columns=["load_before"]).to_string(index=False))
    lines = checks(table, jobs)
    res = resource_check(jobs, declared_resources())
    res.to_csv(OUT / "resources.tsv", sep="\t", index=False)
    over = res.loc[~res["ok"], "rule"].tolist()
    lines.append(
        f"declared resources (mem_mb, runtime) cover every measured job of {res.shape[0]} rules: "
        + ("PASS" if not over else f"FAIL for {over}")
        + f" (largest share of mem_mb used: {res['rule'].iloc[0]} {res['rss_share'].iloc[0]:.2f})"
    )
    for line in lines:
        print(line)
    wide = per_rule.pivot(index="rule", columns="scenario", values="total_s").reindex(columns=done)
    cpu = per_rule.pivot(index="rule", columns="scenario", values="cpu_s").reindex(columns=done).round(1)
    rss = per_rule.pivot(index="rule", columns="scenario", values="max_rss_mb").reindex(columns=done)
    md = [
        "# Scale benchmark (generated by benchmarks/scale/run.py)", "",
        f"Machine: {os.cpu_count()} CPUs; load average (1 min) before/mean/max per scenario in the table.", "",
        md_table(table), "", *[f"- {c}" for c in lines], "",
        "## Seconds per rule (sum over jobs)", "", md_table(wide.fillna("").reset_index()), "",
        "## CPU seconds per rule (sum over jobs; less sensitive to machine load)", "",
        md_table(cpu.fillna("").reset_index()), "",
        "## Declared resources vs measured (max over scenarios)", "",
        "mem_mb and runtime (minutes) as declared in workflow/rules/*.smk (profile defaults "
        f"{PROFILE_DEFAULTS} where a rule declares none); rss_share = peak RSS / mem_mb, "
        "time_share = longest job / runtime.", "", md_table(res), "",
        "## Peak RSS per rule (MB, max over jobs)", "", md_table(rss.fillna("").reset_index()), "",
    ]
    (OUT / "summary.md").write_text("\n".join(md))
    print(f"wrote {OUT / 'scenarios.tsv'}, {OUT / 'jobs.tsv'}, {OUT / 'rules.tsv'}, "
          f"{OUT / 'resources.tsv'}, {OUT / 'summary.md'}")


def bench_dag(kinds: list[str], contrasts: list[str], repeat: int, trees: dict[str, Path] | None = None) -> None:
    """Wall time of `snakemake -n` and `--dag` for 16 datasets (fresh workdir: every job
    pending); with ``trees`` ({"ref": path, "head": path}) each tree's run alternates."""
    trees = trees or {"head": ROOT}
    specs = specs_of("d16", kinds)
    generate.generate(specs, OUT / "mirror", log=lambda m: None)
    work = OUT / "runs" / "dag16"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(
        yaml.safe_dump(generate.scenario_config(specs, OUT / "mirror", contrasts), sort_keys=False)
    )
    print(f"before: {uptime()}", flush=True)
    rows = []
    for what, extra in [("dry-run", ["-n", "--quiet", "rules"]), ("dag", ["--dag"])]:
        for i in range(repeat):
            for side, root in trees.items():
                t0 = time.perf_counter()
                proc = subprocess.run(snakemake_cmd(work, 2, *extra, root=root), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, env=tree_env(root))
                wall = time.perf_counter() - t0
                if proc.returncode:
                    raise SystemExit(f"{what} ({side}) failed:\n{proc.stderr[-3000:]}")
                rows.append({"side": side, "what": what, "run": i + 1, "wall_s": round(wall, 2), "load1": load1()})
                print(f"{side} {what} run {i + 1}: {wall:.2f} s (load {load1():.2f})", flush=True)
    print(f"after:  {uptime()}")
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "dag.tsv", sep="\t", index=False)
    for (what, side), g in df.groupby(["what", "side"], sort=False):
        best = g["wall_s"].min()
        print(f"{side} {what}: best {best:.2f} s, median {g['wall_s'].median():.2f} s over {len(g)} runs "
              f"(target < {TARGET_DAG_S:.0f} s): {'PASS' if best < TARGET_DAG_S else 'FAIL'}")
    if len(trees) == 2:
        med = df.groupby(["what", "side"])["wall_s"].median()
        for what in df["what"].unique():
            print(f"{what}: median head/ref = {med[what, 'head'] / med[what, 'ref']:.2f}")


def ratios(pairs: list[tuple[str, str]]) -> None:
    """head/ref of wall and summed job CPU time per scenario run with --ref, load beside."""
    rows = []
    for ref, head in pairs:
        info = {side: yaml.safe_load((OUT / "runs" / name / "run.yaml").read_text())
                for side, name in (("ref", ref), ("head", head))}
        cpu = {side: info[side].get("cpu_s", float("nan")) for side in ("ref", "head")}
        rows.append({
            "scenario": head, "wall_ref_s": info["ref"]["wall_s"], "wall_head_s": info["head"]["wall_s"],
            "wall_head/ref": round(info["head"]["wall_s"] / info["ref"]["wall_s"], 2),
            "cpu_ref_s": round(cpu["ref"], 1), "cpu_head_s": round(cpu["head"], 1),
            "cpu_head/ref": round(cpu["head"] / cpu["ref"], 2),
            "load_mean_ref": info["ref"]["load_mean"], "load_mean_head": info["head"]["load_mean"],
        })
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "ratios.tsv", sep="\t", index=False)
    print("\nbefore (ref) / after (head), same session:")
    print(df.to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=DEFAULT, choices=list(SCENARIOS))
    ap.add_argument("--kind", nargs="+", default=["counts"], choices=["array", "counts"],
                    help="dataset kind(s); with both, a scenario's datasets alternate")
    ap.add_argument("--contrasts", nargs="+", default=generate.ALL_CONTRASTS, choices=generate.ALL_CONTRASTS)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--tag", default="", help="work folder suffix (work/<scenario>-<tag>), e.g. array5")
    ap.add_argument("--report-only", action="store_true", help="only re-read finished scenarios")
    ap.add_argument("--dag", action="store_true", help="time the DAG build / dry run of 16 datasets")
    ap.add_argument("--repeat", type=int, default=3, help="--dag repetitions")
    ap.add_argument("--ref", help="also run each scenario with this commit first; print head/ref")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="prepost-scale-ref-")) if args.ref else None
    ref_root = worktree(args.ref, tmp / "ref") if args.ref else None
    for root in (ROOT, ref_root) if ref_root else (ROOT,):
        compile_tree(root)  # as make run does: bytecode of both sides' src/
    try:
        if args.dag:
            bench_dag(args.kind, args.contrasts, args.repeat,
                      {"ref": ref_root, "head": ROOT} if ref_root else None)
            return 0
        todo = list(dict.fromkeys("s60" if s == "d1" else s for s in args.scenarios))
        if args.tag:
            todo = [f"{s}-{args.tag}" for s in todo]
        pairs = []
        if not args.report_only:
            for s in todo:
                if ref_root:
                    print(f"== {s}-ref ({args.ref})", flush=True)
                    run_scenario(f"{s}-ref", args.kind, args.contrasts, args.cores, root=ref_root)
                    pairs.append((f"{s}-ref", s))
                print(f"== {s}", flush=True)
                run_scenario(s, args.kind, args.contrasts, args.cores)
        report([*todo, *[s for s in SCENARIOS if s not in todo]])
        if pairs:
            ratios(pairs)
    finally:
        if ref_root:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_root)],
                           capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
