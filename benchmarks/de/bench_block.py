"""Speed and agreement of prepost.de.mixed against R limma on a simulated partly paired cohort:
20,000 genes x 200 samples (60 patients with pre and post, 40 with pre only, 40 with post only;
patient random effect, 10% of genes with a post effect; seed 20261203).

- arrays: duplicateCorrelation + lmFit(block = patient) + eBayes on log2 values;
- counts: the voom / duplicateCorrelation / voom / duplicateCorrelation / lmFit(block) pipeline
  with filterByExpr + TMM (R: benchmarks/de/block_voom.R, which times its own fit, without
  package loading and file reading).

Prints seconds (prepost: fit only, best of --repeat), the ratio prepost / R, the consensus
correlations and max |d t|, max |d log10 p| vs R. The machine load (os.getloadavg) is printed
beside every timing. Usage: .venv/bin/python benchmarks/de/bench_block.py [--genes 20000]
[--samples 200] [--repeat 2] [--no-r]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent


def simulate(genes: int, samples: int, seed: int = 20261203):
    rng = np.random.default_rng(seed)
    n_pairs = int(round(samples * 0.3))  # 60 pairs = 120 samples at 200
    n_single = samples - 2 * n_pairs
    rows = []
    for i in range(n_pairs):
        rows += [(f"P{i:03d}", "pre"), (f"P{i:03d}", "post")]
    for j in range(n_single):
        rows.append((f"S{j:03d}", "pre" if j % 2 == 0 else "post"))
    sheet = pd.DataFrame(rows, columns=["patient", "timepoint"])
    sheet["sample"] = sheet["patient"] + "_" + sheet["timepoint"]
    pidx = pd.factorize(sheet["patient"])[0]
    n_pat = pidx.max() + 1
    post = (sheet["timepoint"] == "post").to_numpy(float)
    effect = np.where(rng.random(genes) < 0.1, rng.normal(0, 1, genes), 0.0)
    names = [f"G{g:05d}" for g in range(genes)]
    sd = np.sqrt(0.2 * 6 / rng.chisquare(6, genes))
    u = rng.normal(size=(genes, n_pat)) * sd[:, None]
    logs = rng.normal(8, 1.5, genes)[:, None] + effect[:, None] * post + u[:, pidx] + rng.normal(size=(genes, samples)) * sd[:, None]
    arrays = pd.DataFrame(logs, index=names, columns=sheet["sample"])
    mu0 = np.exp(rng.normal(4, 2, genes))
    up = rng.normal(0, 0.4, (genes, n_pat))
    lib = rng.uniform(0.5, 2, samples)
    mu = mu0[:, None] * np.exp(np.log(2) * effect[:, None] * post + up[:, pidx]) * lib
    counts = pd.DataFrame(rng.negative_binomial(10, 10 / (10 + mu)), index=names, columns=sheet["sample"])
    return arrays, counts, sheet


def run_r(mode, data, sheet):
    with tempfile.TemporaryDirectory() as tmp:
        c, s, out = Path(tmp) / "x.tsv", Path(tmp) / "s.tsv", Path(tmp) / "out"
        data.to_csv(c, sep="\t", float_format="%.17g")
        sheet[["sample", "patient", "timepoint"]].to_csv(s, sep="\t", index=False)
        subprocess.run(["Rscript", str(ROOT / "block_voom.R"), mode, str(c), str(s), str(out)], check=True)
        res = pd.read_csv(f"{out}.results.tsv", sep="\t").set_index("gene")
        info = pd.read_csv(f"{out}.info.tsv", sep="\t").set_index("key")["value"].to_dict()
    return res, info


def main(argv=None) -> None:
    from prepost.de import mixed

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args(argv)
    arrays, counts, sheet = simulate(args.genes, args.samples)
    s = sheet.set_index("sample")
    design = pd.DataFrame({"Intercept": 1.0, "post": (s["timepoint"] == "post").astype(float)}, index=s.index)
    print(f"{args.genes} genes x {args.samples} samples, {s['patient'].nunique()} patients")
    for mode, data, fn in (("arrays", arrays, mixed.block_moderated_t), ("block", counts, mixed.voom_block)):
        times = []
        for _ in range(args.repeat):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            out = fn(data, design, "post", s["patient"])
            times.append((time.perf_counter() - t0, load))
        best = min(times)
        rho = out.attrs["fit"]["consensus_correlation"]
        line = f"{mode}: prepost {best[0]:.2f} s (load {best[1]:.1f}; runs {', '.join(f'{t:.2f}' for t, _ in times)}), correlation {rho:.6f}"
        if not args.no_r:
            load = os.getloadavg()[0]
            r, info = run_r(mode, data, sheet)
            o = out.set_index("gene")
            common = o.index.intersection(r.index)
            dt = np.max(np.abs(o.loc[common, "stat"] - r.loc[common, "t"]))
            dp = np.max(np.abs(np.log10(o.loc[common, "pvalue"]) - np.log10(r.loc[common, "P.Value"])))
            rs = float(info["seconds"])
            line += (f"; R {rs:.1f} s (load {load:.1f} at start), ratio prepost/R {best[0] / rs:.4f}; "
                     f"R correlation {float(info['correlation']):.6f}; genes {len(o)} / R {len(r)}; "
                     f"max |d t| {dt:.2e}, max |d log10 p| {dp:.2e}")
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
