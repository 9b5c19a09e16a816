"""GSE91061 with pairing.unpaired: block (every usable sample, patient as a random effect) vs
the paired-only analyses, and prepost.de.mixed against R limma/edgeR on the same real data.

Samples: tests/fixtures/nb_real/make_fixtures.load_gse91061 (108 libraries: 43 complete pairs
+ 22 patients with one sample; Pt109's re-sequenced On library left out). Fits:

- block: prepost.de.mixed.voom_block, ``~ timepoint`` on all 108 samples (and R's
  duplicateCorrelation / voom pipeline, benchmarks/de/block_voom.R, for parity);
- paired voom: ``~ patient + timepoint`` on the 86 paired samples (prepost.de.mixed.voom_fixed
  and R), the same method without the unpaired samples;
- paired DESeq2: prepost.de.nb.fast_paired_deseq2 on the 86 samples (the workflow's default).

Prints significant genes (BH padj < 0.05 / 0.1), overlaps, Pearson r of t / log2FC on the
genes both tested, the consensus correlation, parity with R (max |d t|, max |d log10 p|) and
the compute seconds. Usage: .venv/bin/python benchmarks/de/block_gse91061.py [--shared DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests/fixtures/nb_real")]

from make_fixtures import load_gse91061  # noqa: E402


def run_r(mode: str, counts: pd.DataFrame, sheet: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        c, s, out = Path(tmp) / "counts.tsv", Path(tmp) / "samples.tsv", Path(tmp) / "out"
        counts[list(sheet["sample"])].to_csv(c, sep="\t")
        sheet[["sample", "patient", "timepoint"]].to_csv(s, sep="\t", index=False)
        subprocess.run(["Rscript", str(ROOT / "benchmarks/de/block_voom.R"), mode, str(c), str(s), str(out)],
                       check=True)
        res = pd.read_csv(f"{out}.results.tsv", sep="\t").set_index("gene")
        info = pd.read_csv(f"{out}.info.tsv", sep="\t").set_index("key")["value"].to_dict()
    return res, info


def parity(ours: pd.DataFrame, r: pd.DataFrame) -> str:
    o = ours.set_index("gene")
    common = o.index.intersection(r.index)
    same = len(common) == len(o) == len(r)
    dt = np.max(np.abs(o.loc[common, "stat"] - r.loc[common, "t"]))
    dp = np.max(np.abs(np.log10(o.loc[common, "pvalue"]) - np.log10(r.loc[common, "P.Value"])))
    return f"genes {len(o)} vs R {len(r)} ({'same set' if same else 'DIFFERENT sets'}); max |d t| {dt:.2e}, max |d log10 p| {dp:.2e}"


def compare(a: pd.DataFrame, b: pd.DataFrame, na: str, nb: str) -> None:
    a, b = a.set_index("gene"), b.set_index("gene")
    common = a.index.intersection(b.index)
    for cut in (0.05, 0.1):
        sa, sb = set(a.index[a["padj"] < cut]), set(b.index[b["padj"] < cut])
        print(f"  padj < {cut}: {na} {len(sa)}, {nb} {len(sb)}, both {len(sa & sb)}")
    r_t = np.corrcoef(a.loc[common, "stat"], b.loc[common, "stat"])[0, 1]
    r_l = np.corrcoef(a.loc[common, "log2fc"], b.loc[common, "log2fc"])[0, 1]
    print(f"  genes tested by both {len(common)}; Pearson r of t {r_t:.4f}, of log2FC {r_l:.4f}")
    top_a = set(a.loc[common].nsmallest(200, "pvalue").index)
    top_b = set(b.loc[common].nsmallest(200, "pvalue").index)
    print(f"  top-200 genes by p shared: {len(top_a & top_b)}")


def main(argv=None) -> None:
    from prepost.de import mixed, nb

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args(argv)
    counts, sheet = load_gse91061(args.shared)
    s = sheet.set_index("sample")
    n_pat = s.groupby("patient")["timepoint"].nunique()
    print(f"GSE91061: {len(s)} samples, {int((n_pat == 2).sum())} complete pairs, "
          f"{int((n_pat == 1).sum())} patients with one sample; {len(counts)} genes")
    post = (s["timepoint"] == "post").astype(float)
    d_block = pd.DataFrame({"Intercept": 1.0, "timepoint[post]": post}, index=s.index)
    t0 = time.perf_counter()
    block = mixed.voom_block(counts, d_block, "timepoint[post]", s["patient"])
    t_block = time.perf_counter() - t0
    fit = block.attrs["fit"]
    print(f"block (voom, random patient effect, {len(s)} samples): {t_block:.1f} s; consensus "
          f"correlation {fit['consensus_correlation']:.4f} (first pass {fit['first_correlation']:.4f}); "
          f"{len(block)} genes after filterByExpr")
    ps = s[s["paired"]]
    patients = sorted(ps["patient"].unique())
    d_pair = pd.DataFrame({"Intercept": 1.0}, index=ps.index)
    for p in patients[1:]:
        d_pair[f"patient[{p}]"] = (ps["patient"] == p).astype(float)
    d_pair["timepoint[post]"] = (ps["timepoint"] == "post").astype(float)
    t0 = time.perf_counter()
    paired = mixed.voom_fixed(counts[list(ps.index)], d_pair, "timepoint[post]")
    t_paired = time.perf_counter() - t0
    print(f"paired voom (~ patient + timepoint, {len(ps)} samples): {t_paired:.1f} s; {len(paired)} genes")
    t0 = time.perf_counter()
    deseq = nb.fast_paired_deseq2(counts[list(ps.index)], ps, n_cpus=2)
    print(f"paired DESeq2 (prepost.de.nb, {len(ps)} samples): {time.perf_counter() - t0:.1f} s")
    print("block vs paired voom:")
    compare(block, paired, "block", "paired")
    print("block vs paired DESeq2:")
    compare(block, deseq.dropna(subset=["pvalue"]), "block", "DESeq2")
    print("paired voom vs paired DESeq2:")
    compare(paired, deseq.dropna(subset=["pvalue"]), "paired voom", "DESeq2")
    if not args.no_r:
        r_block, info = run_r("block", counts, sheet)
        print(f"R block: {float(info['seconds']):.1f} s, correlation {float(info['correlation']):.6f} "
              f"(prepost {fit['consensus_correlation']:.6f}); {parity(block, r_block)}")
        r_paired, info = run_r("paired", counts, sheet[sheet["paired"]])
        print(f"R paired voom: {float(info['seconds']):.1f} s; {parity(paired, r_paired)}")


if __name__ == "__main__":
    main()
