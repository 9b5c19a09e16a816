"""How prepost's DESeq2 tables are held to R DESeq2's (tests/test_nb_real.py, tests/test_nb_stress.py,
benchmarks/de/gse91061.py).

DESeq2 is deterministic except where it hands a gene to optim (fitNbinomGLMsOptim, see
prepost.de.nb.optim): its L-BFGS-B stops on a relative change of the objective, and on the
flat objectives of those genes (patients whose counts are all zero, whose coefficients drift
towards the -30 bound) the stopping point depends on the optimiser's path. R itself moves
them: the same data with another reference patient (the same model in another coding) moves
their log2 fold changes by a median 0.2% and up to 78% (GSE91061, paired), and their p-values
by up to 8 orders of magnitude (grouped), which in turn moves padj of other genes through the
BH ranks. So the rule is:

1. the NA pattern of every column is R's;
2. every gene fitted without optim (in R's final fit, and in prepost's fit at the starting
   dispersions, whose mu the gene-wise dispersions use: R does not report that one): log2fc,
   lfcSE and stat within 1e-4 relative or 1e-6 absolute, log10 p within 1e-3 relative (or
   1e-3 absolute below |log10 p| = 1); for an effect near zero the relative part is taken of
   its standard error (log2fc within 1e-4 lfcSE, stat within 1e-4): the optim genes' gene-wise
   dispersions enter the parametric trend, so the trend, and through the MAP every gene's
   dispersion, carries their arbitrariness at 1e-5 relative (measured: GSE91061 subset,
   grouped design, trend 5.5e-5, gene-wise values equal to 1e-12), which moves a log2 fold
   change of 0.0035 (lfcSE 0.64) by 5e-6;
3. the genes R hands to optim (betaIter == 100 in R's final fit) are the genes prepost hands
   to optim (``table.attrs["fit"]["optim_genes"]``);
4. on those genes, the median and 90th percentile of the relative log2fc and stat
   differences to R are no larger than R's own differences between two reference patients
   (the ``last`` table), or than 1e-3 where those are smaller (~ response has no patients);
5. padj: putting R's p-values on the optim genes and re-running DESeq2's independent
   filtering reproduces R's padj (log10 within 1e-3 relative, as p) and its padj < 0.05
   and < 0.1 sets exactly.
   So every difference in the sets comes from the optim genes' p-values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prepost.de.nb.filtering import independent_filtering

R_COLUMNS = {"log2FoldChange": "log2fc", "lfcSE": "lfc_se", "stat": "stat", "pvalue": "pvalue", "padj": "padj"}
REL, ABS, LOGP, OPTIM_FLOOR = 1e-4, 1e-6, 1e-3, 1e-3


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.maximum(np.abs(b), ABS)


def agreement(ours: pd.DataFrame, r: pd.DataFrame, r_last: pd.DataFrame | None = None) -> dict:
    """Check prepost's table ``ours`` (contract columns) against R's ``r`` (deseq2.R columns:
    gene, baseMean, log2FoldChange, lfcSE, stat, pvalue, padj, betaIter) by the rule above;
    ``r_last``: R with the other reference patient (rule 4; skipped without). Returns a dict
    of measurements and ``failures`` (a list of strings, empty when the rule holds)."""
    r = r.set_index("gene")
    o = ours.set_index("gene").reindex(r.index)
    fail, out = [], {"genes": len(r)}
    for rc, oc in R_COLUMNS.items():
        bad = int((o[oc].isna() != r[rc].isna()).sum())
        out[f"na_mismatch_{oc}"] = bad
        if bad:
            fail.append(f"{oc}: NA pattern differs on {bad} genes")
    optim_r = r["betaIter"].to_numpy(float) >= 100
    fit = ours.attrs.get("fit", {})
    optim_o = r.index.isin(fit.get("optim_genes", []))
    out["optim_genes_R"], out["optim_genes"] = int(optim_r.sum()), int(optim_o.sum())
    if (optim_r != optim_o).any():
        fail.append(
            f"optim genes differ: R {int(optim_r.sum())}, prepost {int(optim_o.sum())}, "
            f"shared {int((optim_r & optim_o).sum())}"
        )
    plain = ~optim_r & ~r.index.isin(fit.get("optim_genes_genewise", []))
    out["plain_genes"] = int(plain.sum())
    se_r = r["lfcSE"].to_numpy(float)
    scale = {"log2FoldChange": se_r, "lfcSE": 0.0, "stat": 1.0}  # the floor of rule 2
    for rc in ("log2FoldChange", "lfcSE", "stat"):
        oc = R_COLUMNS[rc]
        x, y = o[oc].to_numpy(float), r[rc].to_numpy(float)
        err = np.abs(x - y)
        tol = np.maximum(REL * np.maximum(np.abs(y), scale[rc]), ABS)
        ok = (err <= tol) | (np.isnan(x) & np.isnan(y))
        n_bad = int((~ok & plain).sum())
        out[f"max_rel_{oc}"] = float(np.nanmax(np.where(plain, _rel(x, y), np.nan), initial=0))
        if n_bad:
            fail.append(f"{oc}: {n_bad} non-optim genes outside rule 2's tolerance")
    with np.errstate(divide="ignore"):
        lx, ly = np.log10(o["pvalue"].to_numpy(float)), np.log10(r["pvalue"].to_numpy(float))
    with np.errstate(invalid="ignore"):  # -inf - -inf (p = 0 in both) is handled below
        err = np.abs(lx - ly)
    okp = (err <= LOGP * np.maximum(np.abs(ly), 1)) | (np.isnan(lx) & np.isnan(ly)) | (lx == ly)
    out["max_abs_log10p"] = float(np.nanmax(np.where(plain, err, np.nan), initial=0))
    if int((~okp & plain).sum()):
        fail.append(f"log10 p: {int((~okp & plain).sum())} non-optim genes outside 1e-3 rel")

    if optim_r.any():
        for rc in ("log2FoldChange", "stat"):
            oc = R_COLUMNS[rc]
            e = _rel(o[oc].to_numpy(float)[optim_r], r[rc].to_numpy(float)[optim_r])
            e = e[np.isfinite(e)]
            out[f"optim_{oc}_rel_median"], out[f"optim_{oc}_rel_p90"] = (
                (float(np.median(e)), float(np.quantile(e, 0.9))) if e.size else (0.0, 0.0)
            )
            if r_last is not None and e.size:
                last = r_last.set_index("gene").reindex(r.index)
                s = _rel(last[rc].to_numpy(float)[optim_r], r[rc].to_numpy(float)[optim_r])
                s = s[np.isfinite(s)]
                # floor 1e-3 (a design without patients has no such spread; there scipy's and
                # R's L-BFGS-B differ by up to 1.3e-4 at p90, stress simulation n200)
                med, p90 = max(float(np.median(s)), OPTIM_FLOOR), max(float(np.quantile(s, 0.9)), OPTIM_FLOOR)
                out[f"R_self_{oc}_rel_median"], out[f"R_self_{oc}_rel_p90"] = med, p90
                if np.median(e) > med or np.quantile(e, 0.9) > p90:
                    fail.append(
                        f"optim genes' {oc}: median / p90 rel difference {np.median(e):.3g} / "
                        f"{np.quantile(e, 0.9):.3g} exceed R's own {med:.3g} / {p90:.3g}"
                    )

    swapped = o["pvalue"].to_numpy(float).copy()
    swapped[optim_r] = r["pvalue"].to_numpy(float)[optim_r]
    padj = independent_filtering(o["mean_expr"].to_numpy(float), swapped)
    pr = r["padj"].to_numpy(float)
    with np.errstate(divide="ignore"):
        lq, lr = np.log10(padj), np.log10(pr)
    with np.errstate(invalid="ignore"):
        dq = np.abs(lq - lr)
    okq = (dq <= LOGP * np.maximum(np.abs(lr), 1)) | (np.isnan(lq) & np.isnan(lr))
    okq |= lq == lr
    if not okq.all():
        fail.append(f"padj with R's optim p-values: {int((~okq).sum())} genes outside 1e-3 rel in log10")
    for alpha in (0.05, 0.1):
        a, b = set(r.index[padj < alpha]), set(r.index[pr < alpha])
        direct = set(r.index[o["padj"].to_numpy(float) < alpha])
        out[f"padj<{alpha}"] = {"R": len(b), "prepost": len(direct), "shared": len(b & direct)}
        if a != b:
            fail.append(f"padj < {alpha} with R's optim p-values: sets differ by {len(a ^ b)} genes")
    out["failures"] = fail
    return out
