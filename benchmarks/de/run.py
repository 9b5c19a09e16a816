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

Issue 19 (speed): "glmGamPoi" (glmGamPoi 1.10's glm_gp + test_de) and "DESeq2_glmGamPoi"
(DESeq2 1.38 with fitType = "glmGamPoi") are further R methods for the counts, run by
bench_glmgampoi.R under a time limit (--r-timeout, default 30 min; a run past it is reported as
such); they are compared with R DESeq2 where that ran. ``--ref COMMIT`` runs the prepost
methods a second time from a clean worktree of that commit (its src/ on PYTHONPATH, this
driver), alternating with HEAD, and prints HEAD/ref ratios of compute time and peak memory and
whether the two tables are equal; at sizes where R DESeq2 does not finish (2,000 samples:
hours) the ref's validated table is the reference for "equal results".

Usage:
  .venv/bin/python benchmarks/de/run.py [--sizes 20 60 200] [--genes 20000]
      [--methods pydeseq2 nbglm arrays glmGamPoi DESeq2_glmGamPoi] [--no-r] [--reuse-r]
      [--skip-deseq2] [--ref COMMIT] [--workdir benchmarks/out/de]
The machine is shared: timings are noisy; repeat key numbers (--repeat N keeps the minimum);
the load average before each run is recorded beside it (load1).
"""

from __future__ import annotations

import argparse
import os
import signal
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
    """Run a command; return compute seconds (printed by it), wall seconds, peak RSS (MB) and
    the 1-minute load average before it."""
    load = os.getloadavg()[0]
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
    return {"compute_s": compute, "wall_s": wall, "peak_mb": peak, "blas": blas, "load1": load}


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
    load = os.getloadavg()[0]
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
    return {"compute_s": compute, "wall_s": wall, "peak_mb": peak, "blas": blas, "load1": load}


R_METHODS = {"glmGamPoi": "glmgampoi", "DESeq2_glmGamPoi": "deseq2_glmgampoi"}


def run_r_extra(method: str, prefix: Path, out: Path, timeout_s: float) -> dict:
    """glmGamPoi or DESeq2(fitType = "glmGamPoi") by bench_glmgampoi.R; past ``timeout_s``
    the run is stopped and reported with compute_s NaN and ``timed_out`` True."""
    cmd = ["/usr/bin/time", "-f", "peak_kb %M", "Rscript", str(HERE / "bench_glmgampoi.R"),
           R_METHODS[method], str(prefix), str(out)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    # its own process group, so that the time limit stops R and not only /usr/bin/time
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"compute_s": np.nan, "wall_s": time.perf_counter() - t0, "peak_mb": np.nan,
                "timed_out": True, "load1": load}
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"R {method} failed:\n{stderr[-3000:]}")
    compute = float(
        next(ln.split()[1] for ln in stdout.splitlines() if ln.startswith("compute_seconds"))
    )
    peak = float(next(ln.split()[1] for ln in stderr.splitlines() if ln.startswith("peak_kb")))
    peak /= 1024
    return {"compute_s": compute, "wall_s": wall, "peak_mb": peak, "timed_out": False,
            "load1": load}


def worktree(rev: str, dest: Path) -> Path:
    """A clean detached worktree of ``rev`` (the --ref commit) at ``dest``."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), rev],
                   check=True, capture_output=True)
    return dest


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


def cached_r(kind: str, prefix: Path, args, run) -> dict | None:
    """An R run's timing row, from its cache (--reuse-r / --no-r) or by ``run(out)``; None
    when --no-r and nothing is cached."""
    r_out = Path(f"{prefix}_R_{kind}.tsv")
    r_time = Path(f"{prefix}_R_{kind}.time.tsv")
    if (args.reuse_r or args.no_r) and r_time.exists():
        return pd.read_csv(r_time, sep="\t").iloc[0].to_dict()
    if args.no_r:
        return None
    print(f"[{prefix.name}] R {kind} ...", file=sys.stderr, flush=True)
    info = run(r_out)
    pd.DataFrame([info]).to_csv(r_time, sep="\t", index=False)
    return info


def read_table(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, sep="\t") if path.exists() else None


def tables_equal(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, float]:
    """Whether two result tables are identical, and the largest relative difference of their
    statistics (by gene)."""
    a, b = a.set_index("gene"), b.set_index("gene").reindex(a.set_index("gene").index)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.nanmax(np.abs(a["stat"] - b["stat"]) / np.abs(a["stat"]))
    return bool(a.equals(b)), float(rel)


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
    ap.add_argument("--skip-deseq2", type=int, nargs="*", default=[], metavar="SIZE",
                    help="sizes at which R DESeq2 (default fit) is not run (2,000: hours)")
    ap.add_argument("--r-timeout", type=float, default=1800,
                    help="seconds before a glmGamPoi / DESeq2_glmGamPoi run is stopped")
    ap.add_argument("--ref", default=None, help="also run the prepost methods of this commit")
    ap.add_argument("--repeat", type=int, default=1, help="runs per prepost method (min time kept)")
    ap.add_argument("--n-cpus", type=int, default=2)
    ap.add_argument("--stress", action="store_true", help="counts from tools/nb_stress.py")
    args = ap.parse_args(argv)
    methods = args.methods
    if methods is None:
        methods = ["pydeseq2", "arrays"]
        if (ROOT / "src/prepost/de/nb/__init__.py").exists():
            methods.insert(1, "nbglm")
    unknown = [m for m in methods if m not in (*R_METHODS, "pydeseq2", "nbglm", "nbglm_shrink",
                                                "arrays")]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    trees = {"": None}
    tmp = None
    if args.ref:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="bench-de-"))
        trees = {"": None, "@ref": worktree(args.ref, tmp / "ref")}
    rows = []
    try:
        for n in args.sizes:
            rows += bench_size(n, methods, args, trees)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(trees["@ref"])], capture_output=True)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.workdir / "summary.tsv", sep="\t", index=False)
    cols = [
        "samples", "kind", "method", "compute_s", "wall_s", "peak_mb", "load1", "ratio_vs_R",
        "ratio_vs_ref", "peak_ratio_vs_ref", "equal_to_ref", "r_log2fc", "r_stat",
        "max_abs_d_stat", "jaccard", "precision", "recall", "precision_R", "recall_R", "n_sig",
        "n_sig_R", "optim_genes", "rule_failures",
    ]
    fmt = {c: (lambda v: f"{v:.10f}") for c in ("r_log2fc", "r_stat", "jaccard")}
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(
            table.reindex(columns=[c for c in cols if c in table.columns]).to_string(
                index=False, formatters=fmt, float_format=lambda v: f"{v:.4g}"
            )
        )


def bench_size(n: int, methods: list[str], args, trees: dict) -> list[dict]:
    """The rows of one size: R DESeq2 / limma (the reference), the R methods of issue 19, and
    each prepost method from HEAD (and the --ref tree, alternating)."""
    prefix = write_inputs(args.workdir, n, args.genes, args.stress)
    truth = pd.read_csv(f"{prefix}_truth.tsv", sep="\t").set_index("gene")
    rows = []
    needed = {"arrays" if m == "arrays" else "counts" for m in methods}
    if n in args.skip_deseq2:
        needed.discard("counts")
    r_info = {}
    for mode in sorted(needed):
        info = cached_r(mode, prefix, args, lambda out, mode=mode: run_r(mode, prefix, out))
        if info is None:
            raise SystemExit(f"--no-r but no cached R {mode} result for {prefix}")
        r_info[mode] = info
        rows.append({"samples": n, "kind": mode,
                     "method": "R " + ("DESeq2" if mode == "counts" else "limma"),
                     **{k: info.get(k, np.nan) for k in ("compute_s", "wall_s", "peak_mb",
                                                         "load1")}})
    for m in [m for m in methods if m in R_METHODS]:
        info = cached_r(m, prefix, args,
                        lambda out, m=m: run_r_extra(m, prefix, out, args.r_timeout))
        if info is None:
            continue
        row = {"samples": n, "kind": "counts", "method": "R " + m,
               **{k: info.get(k, np.nan) for k in ("compute_s", "wall_s", "peak_mb", "load1")}}
        if info.get("timed_out"):
            row["rule_failures"] = f"stopped after {args.r_timeout:.0f} s"
        ref = read_table(Path(f"{prefix}_R_counts.tsv"))
        test = read_table(Path(f"{prefix}_R_{m}.tsv"))
        if ref is not None and test is not None and not info.get("timed_out"):
            if "counts" in r_info:
                row["ratio_vs_R"] = info["compute_s"] / r_info["counts"]["compute_s"]
            row.update(compare(ref, test, truth["counts"]))
            if m == "glmGamPoi":  # its statistic is a quasi-likelihood F, not a Wald z
                row["r_stat"] = row["max_abs_d_stat"] = np.nan
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False), file=sys.stderr, flush=True)
    for m in [m for m in methods if m not in R_METHODS]:
        mode = "arrays" if m == "arrays" else "counts"
        runs = {tag: [] for tag in trees}
        for _ in range(args.repeat):
            for tag, tree in trees.items():  # HEAD and ref alternate
                env = None if tree is None else dict(os.environ, PYTHONPATH=str(tree / "src"))
                out = f"{prefix}_out_{m}{tag}.tsv"
                print(f"[n={n}] {m}{tag} ...", file=sys.stderr, flush=True)
                runs[tag].append(run_timed(
                    [sys.executable, __file__, "worker", m, str(prefix), out, str(args.n_cpus)],
                    env=env))
        head_table = pd.read_csv(f"{prefix}_out_{m}.tsv", sep="\t")
        for tag in trees:
            info = min(runs[tag], key=lambda d: d["compute_s"])
            out = f"{prefix}_out_{m}{tag}.tsv"
            test = pd.read_csv(out, sep="\t")
            fit_file = Path(out + ".fit.json")
            fit = None
            if fit_file.exists():
                import json

                fit = json.loads(fit_file.read_text())
            row = {
                "samples": n, "kind": mode, "method": m + tag,
                **{k: info[k] for k in ("compute_s", "wall_s", "peak_mb", "load1")},
                "all_compute_s": ",".join(f"{d['compute_s']:.1f}" for d in runs[tag]),
            }
            if mode in r_info:
                ref = pd.read_csv(f"{prefix}_R_{mode}.tsv", sep="\t")
                row["ratio_vs_R"] = info["compute_s"] / r_info[mode]["compute_s"]
                row["wall_ratio_vs_R"] = info["wall_s"] / r_info[mode]["wall_s"]
                row.update(compare(ref, test, truth[mode], fit))
            if tag == "" and "@ref" in trees:
                ref_info = min(runs["@ref"], key=lambda d: d["compute_s"])
                row["ratio_vs_ref"] = info["compute_s"] / ref_info["compute_s"]
                row["peak_ratio_vs_ref"] = info["peak_mb"] / ref_info["peak_mb"]
                equal, rel = tables_equal(
                    pd.read_csv(f"{prefix}_out_{m}@ref.tsv", sep="\t"), head_table)
                row["equal_to_ref"] = "identical" if equal else f"max rel d stat {rel:.2g}"
            rows.append(row)
            print(pd.DataFrame([row]).to_string(index=False), file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
