"""Benchmark prepost's paired DE against R (DESeq2 1.38, limma 3.54) on simulated data.

For each size (samples = 2 x patients) the same paired datasets are simulated (fixed seed):
negative-binomial counts and log-normal arrays, 20,000 genes, 10% of genes with a known
post-vs-pre effect. R and prepost run side by side, each in its own process (so peak memory is
per tool), and the driver prints per method: Pearson r of log2FC and of the statistic vs R,
Jaccard of the padj < 0.05 sets, precision/recall of padj < 0.05 against the truth (R's and
prepost's), compute time (model fit only, as timed inside each process), whole-process wall
time, peak RSS, and the time ratio prepost/R. Arrays also report max |delta t| vs limma.

Methods: counts — "pydeseq2" (prepost.de.general.paired_deseq2, pydeseq2 as is) and "nbglm"
(prepost.de.nb.fast_paired_deseq2, when the module exists), "nbglm_shrink" (the same with
lfc_shrink="apeglm"; not run by default); arrays — "arrays"
(prepost.de.limma.paired_moderated_t). R results are cached in the work dir and reused with
--reuse-r (R DESeq2 at 200 samples takes about 11 minutes with OpenBLAS on 2 cores).

Usage:
  .venv/bin/python benchmarks/de/run.py [--sizes 20 60 200] [--genes 20000]
      [--methods pydeseq2 nbglm arrays] [--no-r] [--reuse-r] [--workdir benchmarks/out/de]
The machine is shared: timings are noisy; repeat key numbers (--repeat N keeps the minimum).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEED = 20251123
FDR = 0.05


def simulate(n_samples: int, n_genes: int = 20000, seed: int = SEED):
    """Paired counts and arrays with known log2 effects; returns (counts, arrays, sheet, truth).

    Counts: NB with DESeq2-like mean-dispersion trend (0.03 + 1.5/mu, log-normal scatter), a
    patient effect (sd 0.35 on the log scale), size factors 0.5-2. Arrays: log2 normal with
    patient effects and gene-wise variances from a scaled inverse chi-square (limma's model).
    """
    if n_samples % 2:
        raise ValueError(f"n_samples must be even (pairs), got {n_samples}")
    rng = np.random.default_rng([seed, n_samples, n_genes])
    n_pat = n_samples // 2
    patients = [f"P{i:03d}" for i in range(1, n_pat + 1)]
    sheet = pd.DataFrame(
        [(f"{p}_{t}", p, t) for p in patients for t in ("pre", "post")],
        columns=["sample", "patient", "timepoint"],
    )
    genes = [f"G{i:05d}" for i in range(1, n_genes + 1)]
    is_post = (sheet["timepoint"] == "post").to_numpy(float)
    pidx = np.repeat(np.arange(n_pat), 2)
    n_de = n_genes // 10

    lfc_c = np.zeros(n_genes)
    de = rng.choice(n_genes, n_de, replace=False)
    lfc_c[de] = rng.choice([-1.0, 1.0], n_de) * rng.uniform(0.3, 1.5, n_de)
    log_mu = rng.normal(np.log(150), 1.8, n_genes)[:, None]
    pat = rng.normal(0, 0.35, (n_genes, n_pat))[:, pidx]
    sf = rng.uniform(0.5, 2.0, n_samples)
    mu = np.exp(log_mu + pat + np.log(2) * lfc_c[:, None] * is_post) * sf
    disp = (0.03 + 1.5 / mu.mean(axis=1))[:, None] * np.exp(rng.normal(0, 0.5, (n_genes, 1)))
    counts = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp)).astype(np.int64)

    lfc_a = np.zeros(n_genes)
    de_a = rng.choice(n_genes, n_de, replace=False)
    lfc_a[de_a] = rng.choice([-1.0, 1.0], n_de) * rng.uniform(0.2, 1.2, n_de)
    base = rng.normal(7, 2, n_genes)[:, None]
    sd = np.sqrt(0.1 * 4 / rng.chisquare(4, n_genes))[:, None]
    y = base + rng.normal(0, 0.5, (n_genes, n_pat))[:, pidx] + lfc_a[:, None] * is_post
    y = np.round(y + sd * rng.normal(size=y.shape), 6)

    idx = pd.Index(genes, name="gene")
    cols = list(sheet["sample"])
    truth = pd.DataFrame({"gene": genes, "counts": lfc_c, "arrays": lfc_a})
    return (
        pd.DataFrame(counts, index=idx, columns=cols),
        pd.DataFrame(y, index=idx, columns=cols),
        sheet,
        truth,
    )


def write_inputs(workdir: Path, n: int, n_genes: int, stress: bool = False) -> Path:
    """Simulated inputs of one size; with ``stress`` the counts are tools/nb_stress.py's
    (contaminated genes, all-zero timepoints and groups, a 10x library, zero inflation)."""
    prefix = workdir / f"n{n}_g{n_genes}{'_stress' if stress else ''}"
    inputs = [Path(f"{prefix}_{k}.tsv") for k in ("counts", "arrays", "samples", "truth")]
    if not all(f.exists() for f in inputs):
        counts, arrays, sheet, truth = simulate(n, n_genes)
        if stress:
            sys.path.insert(0, str(ROOT / "tools"))
            from nb_stress import simulate_stress

            counts, st_sheet, st_truth = simulate_stress(n, n_genes)
            sheet = st_sheet.reset_index()[["sample", "patient", "timepoint"]]
            truth["counts"] = st_truth["lfc"].to_numpy()
        counts.to_csv(f"{prefix}_counts.tsv", sep="\t")
        arrays.to_csv(f"{prefix}_arrays.tsv", sep="\t", float_format="%.6f")
        sheet.to_csv(f"{prefix}_samples.tsv", sep="\t", index=False)
        truth.to_csv(f"{prefix}_truth.tsv", sep="\t", index=False)  # written last: the marker
    return prefix


def run_timed(cmd: list[str], env=None) -> dict:
    """Run a command; return compute seconds (printed by it), wall seconds and peak RSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    compute = next(
        (float(line.split()[1]) for line in out.splitlines() if line.startswith("compute_seconds")),
        np.nan,
    )
    peak = next(
        (float(line.split()[1]) for line in out.splitlines() if line.startswith("peak_mb")), np.nan
    )
    blas = next((line for line in out.splitlines() if line.startswith("blas")), "")
    return {"compute_s": compute, "wall_s": wall, "peak_mb": peak, "blas": blas}


def run_r(mode: str, prefix: Path, out: Path) -> dict:
    """R in a child wrapped by /usr/bin/time so its peak RSS is measured too."""
    cmd = [
        "/usr/bin/time",
        "-f",
        "peak_kb %M",
        "Rscript",
        str(HERE / "bench.R"),
        mode,
        str(prefix),
        str(out),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"R {mode} failed:\n{proc.stderr[-3000:]}")
    compute = float(
        next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("compute_seconds"))
    )
    peak = (
        float(next(ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("peak_kb")))
        / 1024
    )
    blas = next((ln for ln in proc.stdout.splitlines() if ln.startswith("blas")), "")
    return {"compute_s": compute, "wall_s": wall, "peak_mb": peak, "blas": blas}


def worker(method: str, prefix: str, out: str, n_cpus: int) -> None:
    """Run one prepost method in this process; print compute_seconds and peak_mb."""
    import resource

    sheet = pd.read_csv(f"{prefix}_samples.tsv", sep="\t", dtype=str).set_index("sample")
    if method == "arrays":
        from prepost.de.limma import paired_moderated_t

        data = pd.read_csv(f"{prefix}_arrays.tsv", sep="\t", index_col=0)
        t0 = time.perf_counter()
        res = paired_moderated_t(data, sheet)
    else:
        data = pd.read_csv(f"{prefix}_counts.tsv", sep="\t", index_col=0)
        if method == "pydeseq2":
            from prepost.de.general import paired_deseq2 as fn
        elif method == "nbglm":
            from prepost.de.nb import fast_paired_deseq2 as fn
        elif method == "nbglm_shrink":  # nbglm + apeGLM shrinkage (log2fc stays the MLE)
            from functools import partial

            from prepost.de.nb import fast_paired_deseq2

            fn = partial(fast_paired_deseq2, lfc_shrink="apeglm")
        else:
            raise ValueError(f"unknown method {method!r}")
        t0 = time.perf_counter()
        res = fn(data, sheet, n_cpus=n_cpus)
    print(f"compute_seconds {time.perf_counter() - t0:.3f}")
    if "fit" in res.attrs:  # nb's record of its optim genes, for the agreement rule
        import json

        Path(out + ".fit.json").write_text(json.dumps(res.attrs["fit"]))
    res.to_csv(out + ".part", sep="\t", index=False, float_format="%.17g")
    os.replace(out + ".part", out)
    print(f"peak_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


def compare(ref: pd.DataFrame, test: pd.DataFrame, truth: pd.Series, fit=None) -> dict:
    """Concordance of a prepost table with R's and of both with the truth."""
    ref = ref.set_index("gene")
    test = test.set_index("gene").reindex(ref.index)
    out = {}
    for col in ("log2fc", "stat"):
        a, b = ref[col].to_numpy(float), test[col].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        out[f"r_{col}"] = float(np.corrcoef(a[ok], b[ok])[0, 1])
        out[f"max_abs_d_{col}"] = float(np.max(np.abs(a[ok] - b[ok])))
    out["n_na_mismatch"] = int((ref["stat"].isna() != test["stat"].isna()).sum())
    if fit is not None and "betaIter" in ref.columns:  # tools/deseq2_agreement.py's rule
        sys.path.insert(0, str(ROOT / "tools"))
        from deseq2_agreement import agreement

        r = ref.reset_index().rename(
            columns={"log2fc": "log2FoldChange", "lfc_se": "lfcSE", "mean_expr": "baseMean"}
        )
        t = test.reset_index()
        t.attrs["fit"] = fit
        res = agreement(t, r)
        out["rule_failures"] = "; ".join(res["failures"]) or "none"
        out["optim_genes"] = res["optim_genes"]
    sig_r = set(ref.index[ref["padj"] < FDR])
    sig_t = set(test.index[test["padj"] < FDR])
    union = sig_r | sig_t
    out["jaccard"] = len(sig_r & sig_t) / len(union) if union else 1.0
    out["n_sig_R"], out["n_sig"] = len(sig_r), len(sig_t)
    true_de = set(truth.index[truth != 0])
    for name, sig in (("R", sig_r), ("", sig_t)):
        tp = len(sig & true_de)
        out[f"precision{'_' + name if name else ''}"] = tp / len(sig) if sig else np.nan
        out[f"recall{'_' + name if name else ''}"] = tp / len(true_de) if true_de else np.nan
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 60, 200])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/out/de")
    ap.add_argument("--reuse-r", action="store_true", help="reuse cached R results and timings")
    ap.add_argument("--no-r", action="store_true", help="do not run R (needs cached R results)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per prepost method (min time kept)")
    ap.add_argument("--n-cpus", type=int, default=2)
    ap.add_argument("--stress", action="store_true", help="counts from tools/nb_stress.py")
    args = ap.parse_args(argv)
    methods = args.methods
    if methods is None:
        methods = ["pydeseq2", "arrays"]
        if (ROOT / "src/prepost/de/nb/__init__.py").exists():
            methods.insert(1, "nbglm")
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        prefix = write_inputs(args.workdir, n, args.genes, args.stress)
        truth = pd.read_csv(f"{prefix}_truth.tsv", sep="\t").set_index("gene")
        needed = {"counts" if m != "arrays" else "arrays" for m in methods}
        r_info = {}
        for mode in sorted(needed):
            r_out = Path(f"{prefix}_R_{mode}.tsv")
            r_time = Path(f"{prefix}_R_{mode}.time.tsv")
            if (args.reuse_r or args.no_r) and r_out.exists() and r_time.exists():
                r_info[mode] = pd.read_csv(r_time, sep="\t").iloc[0].to_dict()
            elif args.no_r:
                raise SystemExit(f"--no-r but no cached R result {r_out}")
            else:
                print(f"[n={n}] R {mode} ...", file=sys.stderr, flush=True)
                r_info[mode] = run_r(mode, prefix, r_out)
                pd.DataFrame([r_info[mode]]).to_csv(r_time, sep="\t", index=False)
            rows.append(
                {
                    "samples": n,
                    "kind": mode,
                    "method": "R " + ("DESeq2" if mode == "counts" else "limma"),
                    **{k: r_info[mode][k] for k in ("compute_s", "wall_s", "peak_mb")},
                }
            )
        for m in methods:
            mode = "arrays" if m == "arrays" else "counts"
            out = f"{prefix}_out_{m}.tsv"
            runs = []
            for _ in range(args.repeat):
                print(f"[n={n}] {m} ...", file=sys.stderr, flush=True)
                runs.append(
                    run_timed(
                        [sys.executable, __file__, "worker", m, str(prefix), out, str(args.n_cpus)]
                    )
                )
            info = min(runs, key=lambda d: d["compute_s"])
            ref = pd.read_csv(f"{prefix}_R_{mode}.tsv", sep="\t")
            test = pd.read_csv(out, sep="\t")
            fit_file = Path(out + ".fit.json")
            fit = None
            if fit_file.exists():
                import json

                fit = json.loads(fit_file.read_text())
            row = {
                "samples": n,
                "kind": mode,
                "method": m,
                **{k: info[k] for k in ("compute_s", "wall_s", "peak_mb")},
                "all_compute_s": ",".join(f"{d['compute_s']:.1f}" for d in runs),
                "ratio_vs_R": info["compute_s"] / r_info[mode]["compute_s"],
                "wall_ratio_vs_R": info["wall_s"] / r_info[mode]["wall_s"],
                **compare(ref, test, truth[mode], fit),
            }
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.workdir / "summary.tsv", sep="\t", index=False)
    cols = [
        "samples",
        "kind",
        "method",
        "compute_s",
        "wall_s",
        "peak_mb",
        "ratio_vs_R",
        "r_log2fc",
        "r_stat",
        "max_abs_d_stat",
        "jaccard",
        "precision",
        "recall",
        "precision_R",
        "recall_R",
        "n_sig",
        "n_sig_R",
        "optim_genes",
        "rule_failures",
    ]
    fmt = {c: (lambda v: f"{v:.10f}") for c in ("r_log2fc", "r_stat", "jaccard")}
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(
            table.reindex(columns=cols).to_string(
                index=False, formatters=fmt, float_format=lambda v: f"{v:.4g}"
            )
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
