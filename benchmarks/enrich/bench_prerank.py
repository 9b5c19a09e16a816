"""gseapy prerank (multilevel and permutation) vs an independent gene-set-permutation reference.

The reference is written here from the definitions (Subramanian et al. 2005; fgsea's
calcGseaStat/simple permutation, Korotkevich et al. 2021): ES from the sorted hit positions,
NES = ES / mean(null ES of the same sign), p = (#{null as extreme} + 1) / (#{same-sign null} + 1).
Known answers: a simulated ranking of N genes in which `n_planted` sets have their genes' statistic
shifted (true positives) and the rest are random sets (true nulls).

    .venv/bin/python benchmarks/enrich/bench_prerank.py [--genes 20000] [--sets 55] [--nperm 10000]

Prints NES/p concordance, calls at padj < 0.05 and wall time; writes nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from prepost import enrich, genesets as gs


def es_from_positions(pos: np.ndarray, w_sorted: np.ndarray, n: int) -> np.ndarray:
    """ES for each row of sorted hit positions (perm x k), weight |stat|^1."""
    k = pos.shape[1]
    w = w_sorted[pos]
    cw = np.cumsum(w, axis=1)
    tot = cw[:, -1:]
    misses_before = pos - np.arange(k)  # misses preceding each hit
    top = cw / tot - misses_before / (n - k)
    bottom = (cw - w) / tot - misses_before / (n - k)
    hi, lo = top.max(axis=1), bottom.min(axis=1)
    return np.where(hi > -lo, hi, lo)


def reference(stat: pd.Series, sets: dict[str, list[str]], nperm: int, seed: int) -> pd.DataFrame:
    s = stat.sort_values(ascending=False)
    n = len(s)
    w = np.abs(s.to_numpy())
    index = pd.Index(s.index)
    rng = np.random.default_rng(seed)
    sizes = {name: int((index.get_indexer(g) >= 0).sum()) for name, g in sets.items()}
    # as fgsea: one random ordered sample of the largest size per permutation; its first k
    # members are a uniform random k-subset, so all set sizes share the permutations
    draws = np.stack([rng.choice(n, max(sizes.values()), replace=False) for _ in range(nperm)])
    null_by_k: dict[int, np.ndarray] = {}
    rows = []
    for name, genes in sets.items():
        pos = np.sort(index.get_indexer(genes))
        pos = pos[pos >= 0]
        k = len(pos)
        es = es_from_positions(pos[None, :], w, n)[0]
        if k not in null_by_k:  # fgsea shares the null across sets of one size
            null_by_k[k] = es_from_positions(np.sort(draws[:, :k], axis=1), w, n)
        null = null_by_k[k]
        same = null[null >= 0] if es >= 0 else null[null <= 0]
        nes = es / np.abs(same).mean()
        extreme = (same >= es).sum() if es >= 0 else (same <= es).sum()
        rows.append((name, k, es, nes, (extreme + 1) / (len(same) + 1)))
    out = pd.DataFrame(rows, columns=["set", "n_found", "es", "nes", "pvalue"])
    out["padj"] = enrich.bh(out["pvalue"].to_numpy())
    return out.set_index("set")


def simulate(n_genes: int, n_sets: int, n_planted: int, seed: int):
    rng = np.random.default_rng(seed)
    genes = np.array([f"G{i:05d}" for i in range(n_genes)])
    stat = rng.standard_normal(n_genes)
    sizes = rng.integers(15, 200, n_sets)
    sets, truth = {}, {}
    for i, k in enumerate(sizes):
        members = rng.choice(n_genes, k, replace=False)
        planted = i < n_planted
        if planted:  # shift half the members by +-0.8 SD: a moderate pathway shift
            sign = 1 if i % 2 == 0 else -1
            stat[members[: k // 2]] += sign * 0.8
        name = f"{'PLANTED' if planted else 'NULL'}_{i:02d}"
        sets[name] = list(genes[members])
        truth[name] = planted
    return pd.DataFrame({"gene": genes, "stat": stat}), sets, pd.Series(truth)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--sets", type=int, default=55)
    ap.add_argument("--planted", type=int, default=10)
    ap.add_argument("--nperm", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    de, sets, truth = simulate(a.genes, a.sets, a.planted, a.seed)
    table = gs.from_dict(sets)
    t0 = time.perf_counter()
    ref = reference(de.set_index("gene")["stat"], sets, a.nperm, a.seed)
    t_ref = time.perf_counter() - t0
    print(f"{a.genes} genes, {a.sets} sets ({a.planted} planted), reference {a.nperm} perms: {t_ref:.1f} s")
    for method in ("multilevel", "permutation"):
        t0 = time.perf_counter()
        res = enrich.prerank(
            de, table, method=method, permutations=a.nperm, seed=a.seed, threads=a.threads, min_size=10
        ).set_index("set")
        dt = time.perf_counter() - t0
        r = res.join(ref, rsuffix="_ref")
        assert np.allclose(r["es"], r["es_ref"], atol=1e-6), "ES differs from the definition"
        r_nes = np.corrcoef(r["nes"], r["nes_ref"])[0, 1]
        resolvable = r["pvalue_ref"] > 10 / a.nperm  # where a permutation p has precision
        r_logp = np.corrcoef(
            np.log10(r.loc[resolvable, "pvalue"]), np.log10(r.loc[resolvable, "pvalue_ref"])
        )[0, 1]
        called = r["padj"] < 0.05
        tp = int((called & truth.reindex(r.index)).sum())
        fp = int((called & ~truth.reindex(r.index)).sum())
        print(
            f"gseapy {method:11s} {dt:5.1f} s  NES r={r_nes:.5f}  max|dNES|={np.abs(r['nes'] - r['nes_ref']).max():.3f}  "
            f"log10 p r={r_logp:.3f} (n={int(resolvable.sum())})  padj<0.05: {tp}/{a.planted} planted, {fp} null"
        )
    print(f"reference             padj<0.05: {int(((ref['padj'] < 0.05) & truth).sum())}/{a.planted} planted, "
          f"{int(((ref['padj'] < 0.05) & ~truth).sum())} null")  # fmt: skip


if __name__ == "__main__":
    main()
