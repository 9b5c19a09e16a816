"""Benchmark the unpaired count contrast responder_vs_non_responder_pre (~ response):
prepost.de.nb.fast_two_group_deseq2 (the workflow's path) vs pydeseq2 (its path before), both
against R DESeq2 1.38 with the same formula design.

One simulated dataset per size (fixed seed): 20,000 genes, half the samples responders, NB
counts (trend 0.03 + 1.5/mu with log-normal scatter, size factors 0.5-2), a responder effect in
10% of genes, 1 in 2,000 counts multiplied by 20 (Cook's outliers), 3% of genes with all-zero
counts in one group (DESeq2's optim refit). Each tool runs in its own process; printed: fit
seconds, peak RSS, and r of log2FC and stat vs R, max |d log2FC|, whether the NA patterns of
log2FC and pvalue equal R's, Jaccard of padj < 0.05 sets.

Usage: .venv/bin/python benchmarks/de/two_group.py [--sizes 20 100] [--genes 20000]
           [--methods nbglm pydeseq2 R] [--workdir benchmarks/out/de_two_group]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 20261123


def simulate(n_samples: int, n_genes: int, seed: int = SEED):
    rng = np.random.default_rng([seed, n_samples, n_genes])
    resp = np.where(np.arange(n_samples) % 2 == 1, "responder", "non_responder")
    sheet = pd.DataFrame({"sample": [f"S{i:03d}" for i in range(n_samples)], "response": resp})
    is_r = (resp == "responder").astype(float)
    eff = np.where(rng.random(n_genes) < 0.1, rng.choice([-1.0, 1.0], n_genes) * rng.uniform(0.3, 1.5, n_genes), 0)
    log_mu = rng.normal(np.log(150), 1.8, n_genes)[:, None]
    sf = rng.uniform(0.5, 2.0, n_samples)
    mu = np.exp(log_mu + np.log(2) * eff[:, None] * is_r) * sf
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.5, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp)).astype(np.int64)
    out = rng.random(counts.shape) < 5e-4
    counts[out] = counts[out] * 20 + 20
    zero = rng.random(n_genes) < 0.03
    counts[np.ix_(zero, is_r == 0)] = 0
    genes = pd.Index([f"G{i:05d}" for i in range(1, n_genes + 1)], name="gene")
    return pd.DataFrame(counts, index=genes, columns=list(sheet["sample"])), sheet


def worker(method: str, prefix: str, out: str) -> None:
    """Fit in this process; write the table; print compute seconds and peak RSS."""
    counts = pd.read_csv(f"{prefix}_counts.tsv", sep="\t", index_col=0)
    sheet = pd.read_csv(f"{prefix}_samples.tsv", sep="\t", dtype=str).set_index("sample")
    t0 = time.perf_counter()
    if method == "nbglm":
        from prepost.de import nb

        table = nb.fast_two_group_deseq2(counts, sheet, n_cpus=2)
    else:
        from prepost.de.general import deseq2

        design = pd.DataFrame(
            {"Intercept": 1.0, "response[responder]": (sheet["response"] == "responder").astype(float)},
            index=sheet.index,
        )
        table = deseq2(counts, None, design, "response[responder]", n_cpus=2)
    secs = time.perf_counter() - t0
    table.to_csv(out, sep="\t", index=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"compute_seconds {secs:.2f}\npeak_rss_mb {rss:.0f}")


R_SCRIPT = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
cts <- as.matrix(read.delim(paste0(args[1], "_counts.tsv"), row.names = 1, check.names = FALSE))
s <- read.delim(paste0(args[1], "_samples.tsv"), colClasses = "character")
s$response <- factor(s$response, levels = c("non_responder", "responder"))
rownames(s) <- s$sample
t0 <- proc.time()[["elapsed"]]
dds <- DESeq(DESeqDataSetFromMatrix(cts[, s$sample], colData = s, design = ~response), quiet = TRUE)
res <- results(dds, name = "response_responder_vs_non_responder")
cat("compute_seconds", proc.time()[["elapsed"]] - t0, "\n")
write.table(data.frame(gene = rownames(res), mean_expr = res$baseMean, log2fc = res$log2FoldChange,
                       lfc_se = res$lfcSE, stat = res$stat, pvalue = res$pvalue, padj = res$padj),
            args[2], sep = "\t", quote = FALSE, row.names = FALSE)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--methods", nargs="+", default=["nbglm", "pydeseq2", "R"])
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/out/de_two_group")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return
    a.workdir.mkdir(parents=True, exist_ok=True)
    rscript = a.workdir / "two_group.R"
    rscript.write_text(R_SCRIPT)
    for n in a.sizes:
        prefix = a.workdir / f"n{n}_g{a.genes}"
        if not Path(f"{prefix}_samples.tsv").exists():
            counts, sheet = simulate(n, a.genes)
            counts.to_csv(f"{prefix}_counts.tsv", sep="\t")
            sheet.to_csv(f"{prefix}_samples.tsv", sep="\t", index=False)
        res, secs = {}, {}
        for m in a.methods:
            out = Path(f"{prefix}_{m}.tsv")
            if m == "R":
                cmd = ["Rscript", str(rscript), str(prefix), str(out)]
            else:
                cmd = [sys.executable, __file__, "--worker", m, str(prefix), str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{m} failed:\n{proc.stderr[-3000:]}")
            wall = time.perf_counter() - t0
            info = dict(line.split(maxsplit=1) for line in proc.stdout.splitlines() if " " in line.strip())
            secs[m] = float(info.get("compute_seconds", "nan"))
            print(f"n={n} {m}: compute {secs[m]:.1f} s, wall {wall:.1f} s, peak RSS "
                  f"{info.get('peak_rss_mb', '?').strip()} MB", flush=True)
            res[m] = pd.read_csv(out, sep="\t").set_index("gene")
        if "R" not in res:
            continue
        r = res["R"]
        for m in [k for k in res if k != "R"]:
            x = res[m].loc[r.index]
            ok = x["log2fc"].notna() & r["log2fc"].notna()
            a_set, b_set = set(x.index[x["padj"] < 0.05]), set(r.index[r["padj"] < 0.05])
            print(
                f"  {m:8s} time/R {secs[m] / secs['R']:.3f} "
                f"r_lfc {np.corrcoef(x.loc[ok, 'log2fc'], r.loc[ok, 'log2fc'])[0, 1]:.10f} "
                f"r_stat {np.corrcoef(x.loc[ok, 'stat'], r.loc[ok, 'stat'])[0, 1]:.10f} "
                f"max_dlfc {np.max(np.abs(x.loc[ok, 'log2fc'] - r.loc[ok, 'log2fc'])):.2e} "
                f"NA_equal lfc {bool((x['log2fc'].isna() == r['log2fc'].isna()).all())} "
                f"pvalue {int((x['pvalue'].isna() != r['pvalue'].isna()).sum())} differ "
                f"padj<0.05 {len(a_set)}/{len(b_set)} Jaccard {len(a_set & b_set) / max(1, len(a_set | b_set)):.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
