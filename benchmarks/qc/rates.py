"""QC rules against known truth: detection and false-flag rates on simulated paired cohorts.

    python benchmarks/qc/rates.py [--quick] [--genes 5000] [--seeds 5]

Cohorts from prepost.qc.simulate (paired NB counts with subtypes and tumour-composition
programmes; parameters measured on GSE91061). For each cohort size (30, 60, 100 patients: 60,
120, 200 samples) it plants, in separate cohorts: another tissue in 5 % and 10 % of samples,
degraded libraries in 5 % and 10 %, one lone noisy library, and a swapped pair of post labels;
clean cohorts give the false flags. Rates are the whole prepost.qc.samples.qc_dataset's flags
(robust distances + correlation rule; pair identity). Prints one table; targets from issue 15:
>= 90 % of planted samples flagged, <= 1 false flag per 100 clean samples, the lone noisy
sample caught, both swapped pairs flagged, <= 1 false identity flag per 100 genuine pairs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

from prepost.qc.samples import qc_dataset
from prepost.qc.simulate import paired_cohort

SCENARIOS = [("clean", None, 0.0, None), ("tissue 5%", "tissue", 0.05, None),
             ("tissue 10%", "tissue", 0.10, None), ("degraded 5%", "degraded", 0.05, None),
             ("degraded 10%", "degraded", 0.10, None), ("lone noisy", "noisy", 0.0, 1),
             ("swapped pair", None, 0.0, None)]


def run(sizes, seeds, n_genes):
    rows = []
    for label, defect, frac, n_def in SCENARIOS:
        for n in sizes:
            agg = dict(planted=0, caught=0, clean=0, false=0, pairs=0, id_false=0, swapped=0,
                       swaps_caught=0, seconds=0.0, defective_pairs=0,
                       defective_id_flags=0)
            for seed in range(seeds):
                swap = (1, 4) if label == "swapped pair" else None
                c = paired_cohort(n, n_genes, 1000 + seed, defect=defect, fraction=frac,
                                  n_defect=n_def, swap=swap)
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = qc_dataset(c.counts, "counts", c.sheet)
                agg["seconds"] += time.perf_counter() - t
                s = res.samples.set_index("sample")
                truth = (c.defect != "").reindex(s.index)
                # a swapped pair's difference is truly abnormal: its samples are not "clean"
                swapped_samples = s["patient"].isin(["P002", "P005"]) if swap else False
                clean = ~truth & ~swapped_samples
                agg["planted"] += int(truth.sum())
                agg["caught"] += int(s["outlier"][truth].sum())
                agg["clean"] += int(clean.sum())
                agg["false"] += int(s["outlier"][clean].sum())
                ident = res.pair_identity
                swapped = ident["patient"].isin(["P002", "P005"]) if swap else pd.Series(False, index=ident.index)
                # genuine pairs with no planted defect in either sample (a degraded library
                # distorts its identity genes too; counted apart)
                defective = ident["post_sample"].map(truth).astype(bool) | ident["own_pre_sample"].map(truth).astype(bool)
                genuine = ~swapped & ~defective
                agg["pairs"] += int(genuine.sum())
                agg["id_false"] += int(ident["flag"][genuine].sum())
                agg["defective_pairs"] += int(defective.sum())
                agg["defective_id_flags"] += int(ident["flag"][defective].sum())
                agg["swapped"] += int(swapped.sum())
                agg["swaps_caught"] += int(ident["flag"][swapped].sum())
            rows.append({
                "scenario": label, "samples": 2 * n, "cohorts": seeds,
                "planted_flagged": f"{agg['caught']}/{agg['planted']}" if agg["planted"] else "",
                "false_flags_per_100": round(100 * agg["false"] / max(agg["clean"], 1), 2),
                "identity_false_per_100_pairs": round(100 * agg["id_false"] / max(agg["pairs"], 1), 2),
                "swapped_pairs_flagged": f"{agg['swaps_caught']}/{agg['swapped']}" if agg["swapped"] else "",
                "defective_pairs_identity_flagged": (f"{agg['defective_id_flags']}/{agg['defective_pairs']}"
                                                     if agg["defective_pairs"] else ""),
                "qc_seconds_per_cohort": round(agg["seconds"] / seeds, 2),
            })
            print(rows[-1], file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 and 120 samples, 2 seeds, 3,000 genes")
    ap.add_argument("--genes", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args(argv)
    sizes, seeds, genes = ((30, 60), 2, 3000) if a.quick else ((30, 60, 100), a.seeds, a.genes)
    table = run(sizes, seeds, genes)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
