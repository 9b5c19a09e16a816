"""Benchmark the within-group / interaction count contrasts: pydeseq2 (the old path of
prepost.de.fit.fit_contrast) vs prepost.de.nb.fast_grouped_paired_deseq2 (the new path),
both against R DESeq2 1.38 with the same design.

One simulated dataset per size (fixed seed): 20,000 genes, half the patients responders, NB
counts as benchmarks/de/run.py (trend 0.03 + 1.5/mu with log-normal scatter, patient effects,
size factors 0.5-2), a post effect in 10% of genes for non-responders plus an extra responder
effect (interaction) in another 10%. Each tool runs in its own process; printed: fit seconds
(one fit gives all three contrasts; fit_contrast fits once per contrast), peak RSS, and per
contrast r of log2FC and stat vs R, max |d log2FC|, Jaccard of padj < 0.05 sets.

Usage: .venv/bin/python benchmarks/de/grouped.py [--sizes 60] [--genes 20000]
           [--methods nbglm pydeseq2 R] [--workdir benchmarks/out/de_grouped]
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
SEED = 20251124
NAMES = ("post_vs_pre_responder", "post_vs_pre_non_responder", "interaction")


def simulate(n_samples: int, n_genes: int, seed: int = SEED):
    rng = np.random.default_rng([seed, n_samples, n_genes])
    n_pat = n_samples // 2
    patients = [f"P{i:03d}" for i in range(1, n_pat + 1)]
    resp = ["responder" if i % 2 else "non_responder" for i in range(n_pat)]
    sheet = pd.DataFrame(
        [(f"{p}_{t}", p, t, r) for p, r in zip(patients, resp) for t in ("pre", "post")],
        columns=["sample", "patient", "timepoint", "response"],
    ).assign(in_pair=True)
    post = (sheet["timepoint"] == "post").to_numpy(float)
    is_r = (sheet["response"] == "responder").to_numpy(float)
    pidx = np.repeat(np.arange(n_pat), 2)
    n_de = n_genes // 10
    eff, inter = np.zeros(n_genes), np.zeros(n_genes)
    de = rng.choice(n_genes, 2 * n_de, replace=False)
    eff[de[:n_de]] = rng.choice([-1.0, 1.0], n_de) * rng.uniform(0.3, 1.5, n_de)
    inter[de[n_de:]] = rng.choice([-1.0, 1.0], n_de) * rng.uniform(0.3, 1.5, n_de)
    log_mu = rng.normal(np.log(150), 1.8, n_genes)[:, None]
    pat = rng.normal(0, 0.35, (n_genes, n_pat))[:, pidx]
    sf = rng.uniform(0.5, 2.0, n_samples)
    lfc = eff[:, None] * post + inter[:, None] * post * is_r
    mu = np.exp(log_mu + pat + np.log(2) * lfc) * sf
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.5, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp)).astype(np.int64)
    genes = pd.Index([f"G{i:05d}" for i in range(1, n_genes + 1)], name="gene")
    return pd.DataFrame(counts, index=genes, columns=list(sheet["sample"])), sheet


def worker(method: str, prefix: str, out: str) -> None:
    """Fit in this process; write the long table; print compute seconds and peak RSS."""
    counts = pd.read_csv(f"{prefix}_counts.tsv", sep="\t", index_col=0)
    sheet = pd.read_csv(f"{prefix}_samples.tsv", sep="\t", dtype=str)
    from prepost.de import contrasts

    spec = contrasts.build_contrast(sheet, "interaction", "bench")
    t0 = time.perf_counter()
    if method == "nbglm":
        from prepost.de import nb

        tables = nb.fast_grouped_paired_deseq2(counts, spec.samples, n_cpus=2)
    else:
        from prepost.de.general import deseq2

        within = contrasts.build_contrast(sheet, "post_vs_pre_responder", "bench")
        r, nr = "timepoint[post]:response[responder]", "timepoint[post]:response[non_responder]"
        tables = deseq2(
            counts[list(within.samples.index)], within.samples, within.design,
            {NAMES[0]: r, NAMES[1]: nr, NAMES[2]: pd.Series({r: 1.0, nr: -1.0})}, n_cpus=2,
        )
    secs = time.perf_counter() - t0
    long = pd.concat([t.assign(contrast=k) for k, t in tables.items()])
    long.to_csv(out, sep="\t", index=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"compute_seconds {secs:.2f}\npeak_rss_mb {rss:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[60])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--methods", nargs="+", default=["nbglm", "pydeseq2", "R"])
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/out/de_grouped")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return
    a.workdir.mkdir(parents=True, exist_ok=True)
    for n in a.sizes:
        prefix = a.workdir / f"n{n}_g{a.genes}"
        if not Path(f"{prefix}_samples.tsv").exists():
            counts, sheet = simulate(n, a.genes)
            counts.to_csv(f"{prefix}_counts.tsv", sep="\t")
            sheet.to_csv(f"{prefix}_samples.tsv", sep="\t", index=False)
        res = {}
        for m in a.methods:
            out = Path(f"{prefix}_{m}.tsv")
            if m == "R":
                cmd = ["Rscript", str(HERE / "bench_grouped.R"), str(prefix), str(out)]
            else:
                cmd = [sys.executable, __file__, "--worker", m, str(prefix), str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{m} failed:\n{proc.stderr[-3000:]}")
            wall = time.perf_counter() - t0
            info = dict(
                line.split(maxsplit=1) for line in proc.stdout.splitlines() if line.count(" ") >= 1
            )
            print(f"n={n} {m}: compute {info.get('compute_seconds', '?').strip()} s, wall "
                  f"{wall:.1f} s, peak RSS {info.get('peak_rss_mb', '?')} MB", flush=True)
            res[m] = pd.read_csv(out, sep="\t")
        if "R" not in res:
            continue
        for m in [k for k in res if k != "R"]:
            for name in NAMES:
                x = res[m][res[m]["contrast"] == name].set_index("gene")
                r = res["R"][res["R"]["contrast"] == name].set_index("gene").loc[x.index]
                ok = x["log2fc"].notna() & r["log2fc"].notna()
                a_set = set(x.index[x["padj"] < 0.05])
                b_set = set(r.index[r["padj"] < 0.05])
                print(
                    f"  {m:8s} {name:26s} r_lfc {np.corrcoef(x.loc[ok, 'log2fc'], r.loc[ok, 'log2fc'])[0, 1]:.10f} "
                    f"r_stat {np.corrcoef(x.loc[ok, 'stat'], r.loc[ok, 'stat'])[0, 1]:.10f} "
                    f"max_dlfc {np.max(np.abs(x.loc[ok, 'log2fc'] - r.loc[ok, 'log2fc'])):.2e} "
                    f"NA_equal {bool((x['log2fc'].isna() == r['log2fc'].isna()).all())} "
                    f"padj<0.05 {len(a_set)}/{len(b_set)} Jaccard {len(a_set & b_set) / max(1, len(a_set | b_set)):.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
