"""The HTML report at scale: 16 datasets of 200 samples, size and Chromium open time.

Running the whole workflow on 16 x 200 samples takes far longer than a session allows on a
2-core machine, and the report's size and open time depend only on its inputs' layout, so this
benchmark builds the report from 16 copies of one finished 200-sample scenario (``run.py
--scenarios s200``; its results folder is copied under 16 dataset names, each copy's plots are
separate files and are encoded separately, the claims table gets each copy's rows). It prints:
report bytes, plots inlined / linked, build seconds, and Chromium's time to the load event and
to first contentful paint (median of ``--repeat`` cold starts, each in a fresh profile),
beside Chromium's time for an empty page measured in the same run.

    make bench-report                                    # 16 copies of out/runs/s200
    make bench-report BENCH_ARGS="--copies 4 --max-mb 15"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "out"
sys.path.insert(0, str(ROOT / "src"))

from prepost.paths import Layout, report_layout  # noqa: E402
from prepost.report.build import build_report  # noqa: E402

PROBE = """<script>
window.addEventListener("load", function () {
  var nav = performance.getEntriesByType("navigation")[0];
  var fcp = performance.getEntriesByName("first-contentful-paint")[0];
  var pre = document.createElement("pre"); pre.id = "timing";
  pre.textContent = JSON.stringify({load_ms: nav ? nav.loadEventStart : performance.now(),
    dcl_ms: nav ? nav.domContentLoadedEventEnd : null, fcp_ms: fcp ? fcp.startTime : null,
    scroll_width: document.scrollingElement.scrollWidth, width: window.innerWidth});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("report_scale: chromium is not installed (apt-get install chromium)")


def open_times(page: Path, repeat: int) -> dict:
    """Chromium's timings of ``page`` (with PROBE injected just after <head>), median over
    ``repeat`` cold starts; and the process wall time."""
    probe = page.with_name(page.stem + ".probe.html")
    html = page.read_text()
    probe.write_text(html.replace("<head>", "<head>\n" + PROBE, 1))
    rows = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as prof:
            t0 = time.perf_counter()
            run = subprocess.run(
                [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", f"--user-data-dir={prof}", "--window-size=1366,768",
                 "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=600,
            )
            wall = time.perf_counter() - t0
        text = run.stdout.split('<pre id="timing">', 1)[-1].split("</pre>", 1)[0]
        try:
            t = json.loads(text)
        except ValueError:
            raise SystemExit(f"report_scale: no timing from Chromium for {page}: {run.stderr[-500:]}") from None
        rows.append({**t, "wall_s": wall})
    probe.unlink()
    return {k: statistics.median(r[k] for r in rows if r[k] is not None)
            for k in rows[0] if any(r[k] is not None for r in rows)}


def replicate(source: Path, dest: Path, copies: int) -> tuple[dict, dict, list[str]]:
    """``copies`` copies of the source run's one dataset under dest/results; returns the
    config, the report layout and the dataset names."""
    cfg = yaml.safe_load((source / "config.yaml").read_text())
    (ds0, d0), = [(k, v) for k, v in cfg["datasets"].items() if v.get("kind") != "published_de"][:1]
    src_results, src_resources = source / "results", source / "resources"
    if dest.exists():
        shutil.rmtree(dest)
    results, resources = dest / "results", dest / "resources"
    names = [f"{ds0}_{k + 1:02d}" for k in range(copies)]
    for name in names:
        shutil.copytree(src_results / ds0, results / name)
        man = src_resources / "geo" / ds0 / "manifest.tsv"
        if man.exists():
            (resources / "geo" / name).mkdir(parents=True, exist_ok=True)
            shutil.copy(man, resources / "geo" / name / "manifest.tsv")
    shutil.copytree(src_results / "claims", results / "claims")
    claims = pd.read_csv(src_results / "claims.tsv", sep="\t", dtype=str, keep_default_na=False)
    one = claims[claims["dataset"] == ds0]
    pd.concat([one.assign(dataset=n) for n in names]).to_csv(results / "claims.tsv", sep="\t", index=False)
    shutil.copy(src_results / "claims_meta.tsv", results / "claims_meta.tsv")
    cfg = dict(cfg, results=str(results), resources=str(resources),
               datasets={n: dict(d0, description=f"copy {i + 1} of {ds0}") for i, n in enumerate(names)})
    P = Layout(str(results), str(resources))
    contrasts = d0.get("contrasts", ["post_vs_pre"])
    counts = (src_results / ds0 / "qc" / "library_size.png").exists()
    spec = {n: {"contrasts": contrasts, "counts": counts, "geo": (src_resources / "geo" / ds0).exists(),
                "nanostring": False} for n in names}
    claim_ids = list(dict.fromkeys(claims["claim"]))
    return cfg, report_layout(P, spec, claim_ids), names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=OUT / "runs" / "s200",
                    help="a finished scale scenario (default: out/runs/s200; make it with run.py --scenarios s200)")
    ap.add_argument("--copies", type=int, default=16)
    ap.add_argument("--max-mb", type=float, default=15.0, help="report.max_mb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="the report rule's threads (plots encoded side by side)")
    args = ap.parse_args(argv)
    if not (args.source / "results" / "claims.tsv").exists():
        raise SystemExit(f"report_scale: {args.source} has no finished run; "
                         "run `python benchmarks/scale/run.py --scenarios s200` first")
    dest = OUT / f"report_x{args.copies}"
    cfg, layout, names = replicate(args.source, dest, args.copies)
    cfg["report"] = {"max_mb": args.max_mb}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    summary = build_report(layout, dest / "results" / "report.html", cfg, threads=args.threads)
    build_s = time.perf_counter() - t0
    page = dest / "results" / "report.html"
    blank = dest / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head><title>x</title></head><body><p>x</p></body></html>\n")
    t_page, t_blank = open_times(page, args.repeat), open_times(blank, args.repeat)
    row = {
        "datasets": len(names), "samples_each": "see source", "bytes": page.stat().st_size,
        "mb": round(page.stat().st_size / 1e6, 2), "max_mb": args.max_mb,
        "plots": summary.get("images"), "plots_linked": summary.get("linked"), "build_s": round(build_s, 1),
        "load_ms": round(t_page["load_ms"]), "fcp_ms": round(t_page.get("fcp_ms", float("nan"))),
        "chromium_wall_s": round(t_page["wall_s"], 2), "blank_load_ms": round(t_blank["load_ms"]),
        "blank_wall_s": round(t_blank["wall_s"], 2),
        "scroll_width_ok": t_page["scroll_width"] <= t_page["width"],
        "load1_before": round(load_before, 2), "load1_after": round(os.getloadavg()[0], 2),
    }
    samples = pd.read_csv(args.source / "results" / names[0].rsplit("_", 1)[0] / "samples.tsv", sep="\t")
    row["samples_each"] = len(samples)
    print(pd.Series(row).to_string())
    print(f"\nreport under 15 MB: {row['mb'] < 15} ({row['mb']} MB); open (load event) under 3 s: "
          f"{row['load_ms'] < 3000} ({row['load_ms']} ms; an empty page: {row['blank_load_ms']} ms)")
    (OUT / f"report_x{args.copies}.json").write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
