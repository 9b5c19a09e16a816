"""prepost.de.nb against R DESeq2 1.38 on the whole of real GSE91061 (22,069 genes).

The designs and the data preparation are tests/fixtures/nb_real/make_fixtures.py's (paired:
43 pairs; grouped: 42 pairs by best overall response; two_group: 49 pre samples). R runs
tests/fixtures/nb_real/deseq2.R (its results are cached in --workdir, as make_fixtures.py
leaves them: full_<design>.results.tsv; --rerun-r refits). Prints per contrast the numbers of
the issue's table (padj < 0.1 / < 0.05 sets, Pearson r, genes with |d stat| > 1 / > 10, the
named genes) and the agreement rule of tools/deseq2_agreement.py, and the compute seconds of
both (R's as timed inside R: DESeq() + results()).

Needs ../shared/data and R with DESeq2 (apt-get install r-bioc-deseq2).
Usage: .venv/bin/python benchmarks/de/gse91061.py [--shared ../shared/data] [--rerun-r]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests/fixtures/nb_real")]

from deseq2_agreement import agreement  # noqa: E402
from make_fixtures import load_gse91061, run_r  # noqa: E402

NAMED = ["G6PC1", "CRP", "C4BPA", "CFHR2", "CFHR5"]


def fit(design: str, counts: pd.DataFrame, sheet: pd.DataFrame) -> dict:
    from prepost.de import nb

    s = sheet[sheet[design]].set_index("sample")
    c = counts[list(s.index)]
    if design == "paired":
        return {"post_vs_pre": nb.fast_paired_deseq2(c, s, n_cpus=2)}
    if design == "grouped":
        return nb.fast_grouped_paired_deseq2(c, s, n_cpus=2)
    return {"responder_vs_non_responder": nb.fast_two_group_deseq2(c, s, n_cpus=2)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/out/nb_real")
    ap.add_argument("--rerun-r", action="store_true")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    counts, sheet = load_gse91061(args.shared)
    for design in ("paired", "grouped", "two_group"):
        prefix = args.workdir / f"full_{design}"
        if args.rerun_r or not Path(f"{prefix}.results.tsv").exists():
            run_r(design, counts, sheet, prefix)
        r_all = pd.read_csv(f"{prefix}.results.tsv", sep="\t", low_memory=False)
        r_info = pd.read_csv(f"{prefix}.info.tsv", sep="\t").set_index("key")["value"]
        t0 = time.perf_counter()
        tables = fit(design, counts, sheet)
        seconds = time.perf_counter() - t0
        print(f"\n## {design}: R DESeq2 {r_info['DESeq2']} {float(r_info['seconds']):.1f} s, "
              f"prepost {seconds:.1f} s (n_cpus 2)")
        for contrast, ours in tables.items():
            r = r_all[r_all["contrast"] == contrast]
            res = agreement(ours, r)
            o = ours.set_index("gene").reindex(r["gene"])
            rr = r.set_index("gene")
            ok = np.isfinite(o["stat"]) & np.isfinite(rr["stat"])
            d = (o["stat"] - rr["stat"]).abs()
            print(f"### {contrast}")
            for alpha in (0.1, 0.05):
                k = res[f"padj<{alpha}"]
                print(f"padj < {alpha}: R {k['R']}, prepost {k['prepost']}, shared {k['shared']}")
            print(
                f"Pearson r log2fc {np.corrcoef(o['log2fc'][ok], rr['log2FoldChange'][ok])[0, 1]:.10f}, "
                f"stat {np.corrcoef(o['stat'][ok], rr['stat'][ok])[0, 1]:.10f} over {int(ok.sum())} genes; "
                f"|d stat| > 1: {int((d > 1).sum())}, > 10: {int((d > 10).sum())}"
            )
            print(
                f"optim genes R {res['optim_genes_R']}, prepost {res['optim_genes']}; non-optim "
                f"genes {res['plain_genes']}: max rel log2fc {res['max_rel_log2fc']:.2g}, lfcSE "
                f"{res['max_rel_lfc_se']:.2g}, stat {res['max_rel_stat']:.2g}, max |d log10 p| "
                f"{res['max_abs_log10p']:.2g}; optim genes rel log2fc median "
                f"{res.get('optim_log2fc_rel_median', 0):.2g}, p90 {res.get('optim_log2fc_rel_p90', 0):.2g}"
            )
            print("rule:", "; ".join(res["failures"]) or "holds")
            if contrast == "post_vs_pre":
                cols = ["log2FoldChange", "lfcSE", "stat"]
                named = pd.concat(
                    [rr.loc[NAMED, cols].add_prefix("R_"), o.loc[NAMED, ["log2fc", "lfc_se", "stat"]]],
                    axis=1,
                )
                print(named.to_string(float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
