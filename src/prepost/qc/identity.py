"""Is each post sample its patient's? Sex from expression, pair identity on genotype-driven
genes, and reads in genes foreign to the cohort (contamination).

Pair identity. Genome-wide correlation is swamped by treatment and tissue composition (on real
cohorts the own pre sample ranks first for under half of the post samples), so identity is
scored on genes whose expression is set by the germline and not by treatment:

* sex: XIST and the Y-linked RPS4Y1, DDX3Y, KDM5D, UTY, EIF1AY, USP9Y, ZFY;
* common deletion polymorphisms (homozygous nulls give no expression): GSTM1, GSTT1, GSTT2,
  GSTT2B, UGT2B17, LCE3C, APOBEC3B, SIGLEC14, LILRA3;
* strong cis-eQTL genes (expression several-fold apart between genotypes in GTEx tissues):
  ERAP2, CHI3L2, THNSL2, PEX6, XRRA1, ZP3, POMZP3, FAM118A, PILRB, CHURC1, SPATA20, GSTM3,
  NBPF3, ACOT1, KANSL1-AS1, LRRC37A4P, HLA-DRB4 (present on DR4/DR7/DR9 haplotypes only).

HLA class II genes other than HLA-DRB4 are left out: their level follows immune infiltration,
which treatment changes. A gene is used when present and expressed in part of the cohort
(counts: 90th percentile of normalised counts >= 20; arrays: any). With fewer than
MIN_IDENTITY_GENES such genes (targeted panels) the score is computed on the 500 most variable
genes for information only: ``basis`` says so and such a z never flags a pair (only a sex
disagreement does).

Score: each gene standardised across all samples; the similarity of a post and a pre sample is
the Pearson correlation of their standardised values. It is calibrated on the cohort's own
non-pairs: ``z`` = (own similarity - median of all non-pair similarities) / (1.4826 MAD of
them). A swapped or mislabelled pair has an own similarity drawn from the non-pairs (z near 0);
a genuine pair sits far above. ``flag`` when z < Z_MIN or the expressed sexes of pre and post
disagree. The best-matching other pre sample and its z are given as a hint of the true partner.
Z_MIN was chosen on prepost.qc.simulate's cohorts (benchmarks/qc/rates.py), not on real data.

Sex from expression (only when XIST and >= 2 Y genes are in the data): counts, on normalised counts: male when the mean of the Y genes present
>= Y_MALE; female when it is < Y_FEMALE and XIST >= XIST_FEMALE; otherwise unknown (no Y and no
XIST: a tumour may lose the inactive X or the Y). Log2 arrays: the cohort's Y scores (mean of the
Y genes) split at their widest gap when it is >= LOG2_GAP log2 units (a mixed-sex cohort);
without such a gap the sex is not called (single-sex cohorts look alike on arrays).

Contamination: for each count sample, its TOP_N most expressed genes (normalised); those at
>= FOREIGN_FOLD x the cohort median of the gene are genes not expressed at that level in most
samples. ``foreign_share`` = their reads / the library; the genes are named. Flag at
>= FOREIGN_SHARE (chosen on simulation: a clean cohort stays far below; a biopsy with another
tissue's block of genes far above).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEX_X = "XIST"
SEX_Y = ("RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY", "USP9Y", "ZFY")
DELETION_GENES = ("GSTM1", "GSTT1", "GSTT2", "GSTT2B", "UGT2B17", "LCE3C", "APOBEC3B",
                  "SIGLEC14", "LILRA3")
EQTL_GENES = ("ERAP2", "CHI3L2", "THNSL2", "PEX6", "XRRA1", "ZP3", "POMZP3", "FAM118A",
              "PILRB", "CHURC1", "SPATA20", "GSTM3", "NBPF3", "ACOT1", "KANSL1-AS1",
              "LRRC37A4P", "HLA-DRB4")
IDENTITY_GENES = (SEX_X, *SEX_Y, *DELETION_GENES, *EQTL_GENES)
MIN_IDENTITY_GENES = 8
MIN_EXPRESSED = 20.0
Z_MIN = 2.0
Y_MALE, Y_FEMALE, XIST_FEMALE = 10.0, 2.0, 10.0
MIN_Y_GENES = 2
LOG2_GAP = 1.5
TOP_N = 100
FOREIGN_FOLD = 32.0
FOREIGN_MEDIAN = 10.0
FOREIGN_SHARE = 0.02
N_FALLBACK = 500

IDENTITY_COLUMNS = [
    "post_sample", "patient", "own_pre_sample", "similarity_own", "z_own", "null_median",
    "null_mad", "best_other_pre_sample", "best_other_patient", "z_best_other", "own_rank",
    "sex_pre", "sex_post", "flag", "reason", "basis", "n_genes", "n_features",
]


def _robust(x: np.ndarray) -> tuple[float, float]:
    med = float(np.median(x))
    return med, float(1.4826 * np.median(np.abs(x - med)))


def identity_genes(mat: pd.DataFrame, norm: pd.DataFrame | None) -> list[str]:
    """The identity genes present in the QC matrix and expressed in part of the cohort."""
    present = [g for g in IDENTITY_GENES if g in mat.index]
    if norm is not None:
        hi = norm.reindex(present).quantile(0.9, axis=1)
        present = [g for g in present if hi.get(g, 0) >= MIN_EXPRESSED]
    sd = mat.loc[present].std(axis=1, ddof=1) if present else pd.Series(dtype=float)
    return [g for g in present if sd.get(g, 0) > 0]


def expressed_sex(mat: pd.DataFrame, norm: pd.DataFrame | None) -> pd.DataFrame:
    """Per sample: y_score, xist, sex (male, female, unknown) and the rule that called it."""
    ys = [g for g in SEX_Y if g in mat.index]
    out = pd.DataFrame(index=mat.columns)
    if len(ys) < MIN_Y_GENES or SEX_X not in mat.index:
        # one Y gene at background level (a targeted panel's UTY probe) would call every
        # sample male: not called without XIST and two Y genes
        out["y_score"], out["xist"], out["sex_expr"] = np.nan, np.nan, "unknown"
        out["sex_rule"] = (f"not called: the data hold {len(ys)} Y-linked gene(s) "
                           f"{'and XIST' if SEX_X in mat.index else 'and no XIST'}; "
                           f"needs XIST and >= {MIN_Y_GENES} Y genes")
        return out
    if norm is not None:
        y = norm.loc[ys].mean(axis=0)
        x = norm.loc[SEX_X] if SEX_X in norm.index else pd.Series(np.nan, index=norm.columns)
        sex = np.where(y >= Y_MALE, "male",
                       np.where((y < Y_FEMALE) & (x >= XIST_FEMALE), "female", "unknown"))
        rule = f"normalised counts: mean Y >= {Y_MALE:g} male; < {Y_FEMALE:g} with XIST >= {XIST_FEMALE:g} female"
    else:
        y = mat.loc[ys].mean(axis=0)
        x = mat.loc[SEX_X] if SEX_X in mat.index else pd.Series(np.nan, index=mat.columns)
        v = np.sort(y.to_numpy())
        gaps = np.diff(v)
        if len(gaps) and gaps.max() >= LOG2_GAP:
            cut = v[np.argmax(gaps)] + gaps.max() / 2
            sex = np.where(y > cut, "male", "female")
            rule = f"log2: Y score split at its widest gap ({gaps.max():.2f} >= {LOG2_GAP:g}) at {cut:.2f}"
        else:
            sex = np.full(len(y), "unknown", dtype=object)
            rule = f"log2: no gap >= {LOG2_GAP:g} in the Y scores (one sex, or unclear): not called"
    out["y_score"], out["xist"], out["sex_expr"], out["sex_rule"] = y, x, sex, rule
    return out


def sheet_sex(sheet: pd.DataFrame) -> pd.Series:
    """The sex a sample sheet gives (a column named sex or gender, any case; GEO's
    'Sex: F'), as male/female; NaN where absent or unreadable."""
    s = sheet.set_index("sample")
    cols = [c for c in s.columns if str(c).strip().lower() in ("sex", "gender")]
    if not cols:
        return pd.Series(np.nan, index=s.index, dtype=object)
    v = s[cols[0]].astype(str).str.strip().str.lower()
    return v.map({"m": "male", "male": "male", "man": "male", "f": "female", "female": "female",
                  "woman": "female"})


def pair_identity(mat: pd.DataFrame, pairs: pd.DataFrame, sex: pd.DataFrame,
                  norm: pd.DataFrame | None) -> pd.DataFrame:
    """One row per complete pair: own similarity calibrated on the non-pairs (module doc)."""
    if len(pairs) < 2:
        return pd.DataFrame(columns=IDENTITY_COLUMNS)
    genes = identity_genes(mat, norm)
    if len(genes) >= MIN_IDENTITY_GENES:
        basis, sub = "identity genes", mat.loc[genes]
    else:
        rv = mat.var(axis=1, ddof=1).sort_values(ascending=False, kind="mergesort")
        basis = (f"{min(N_FALLBACK, len(rv))} most variable genes (only {len(genes)} identity "
                 f"genes expressed; < {MIN_IDENTITY_GENES}): not assessable, z shown, not flagged")
        sub = mat.loc[rv.index[:N_FALLBACK]]
    x = sub.to_numpy(float)
    sd = x.std(axis=1, ddof=1, keepdims=True)
    sd[sd == 0] = 1.0
    zx = pd.DataFrame((x - x.mean(axis=1, keepdims=True)) / sd, index=sub.index, columns=mat.columns)
    sex_rows = [g for g in zx.index if g in (SEX_X, *SEX_Y)]
    if basis == "identity genes" and len(sex_rows) > 1:
        # sex is one bit: its genes enter as one feature (XIST counted against the Y genes), so
        # that eight sex genes do not make every same-sex non-pair look alike
        sign = np.where(np.array(sex_rows) == SEX_X, -1.0, 1.0)[:, None]
        composite = (zx.loc[sex_rows].to_numpy() * sign).mean(axis=0)
        composite = (composite - composite.mean()) / max(composite.std(ddof=1), 1e-12)
        zx = pd.concat([zx.drop(index=sex_rows),
                        pd.DataFrame([composite], index=["sex (XIST vs Y)"], columns=zx.columns)])
    pre, post = list(pairs["pre"]), list(pairs["post"])
    a = zx[post].to_numpy()
    b = zx[pre].to_numpy()
    a = (a - a.mean(axis=0)) / np.maximum(np.linalg.norm(a - a.mean(axis=0), axis=0), 1e-12)
    b = (b - b.mean(axis=0)) / np.maximum(np.linalg.norm(b - b.mean(axis=0), axis=0), 1e-12)
    sim = a.T @ b  # post x pre
    n = len(pre)
    own = np.diag(sim)
    off = ~np.eye(n, dtype=bool)
    med, mad = _robust(sim[off])
    mad = mad if mad > 0 else 1e-12
    z = (sim - med) / mad
    z_off = np.where(off, z, -np.inf)
    best = np.argmax(z_off, axis=1)
    rank = 1 + np.sum(sim > own[:, None], axis=1)
    patients = pairs.index.astype(str).tolist()
    s_pre = sex["sex_expr"].reindex(pre).to_numpy()
    s_post = sex["sex_expr"].reindex(post).to_numpy()
    known = np.isin(s_pre, ["male", "female"]) & np.isin(s_post, ["male", "female"])
    sex_mismatch = known & (s_pre != s_post)
    # without identity genes the score is treatment- and tissue-driven (on the real 730-gene
    # NanoString cohort it "flagged" 33 of 70 pairs): shown, never flagged
    low = (np.diag(z) < Z_MIN) & (basis == "identity genes")
    reason = []
    for i in range(n):
        why = []
        if low[i]:
            why.append(f"own pre no more similar than other patients' (z {z[i, i]:.1f} < {Z_MIN:g})")
        if sex_mismatch[i]:
            why.append(f"expressed sex differs (pre {s_pre[i]}, post {s_post[i]})")
        reason.append("; ".join(why))
    return pd.DataFrame({
        "post_sample": post,
        "patient": patients,
        "own_pre_sample": pre,
        "similarity_own": own,
        "z_own": np.diag(z),
        "null_median": med,
        "null_mad": mad,
        "best_other_pre_sample": [pre[j] for j in best],
        "best_other_patient": [patients[j] for j in best],
        "z_best_other": z_off[np.arange(n), best],
        "own_rank": rank,
        "sex_pre": s_pre,
        "sex_post": s_post,
        "flag": low | sex_mismatch,
        "reason": reason,
        "basis": basis,
        "n_genes": int(sub.shape[0]),
        "n_features": int(zx.shape[0]),
    })[IDENTITY_COLUMNS]


def foreign_reads(counts: pd.DataFrame, norm: pd.DataFrame) -> pd.DataFrame:
    """Per count sample: the share of its reads in top genes foreign to the cohort, named."""
    nc = norm.to_numpy(float)
    med = np.median(nc, axis=1)
    top_n = min(TOP_N, nc.shape[0])
    top = np.argsort(-nc, axis=0, kind="stable")[:top_n]  # top_n x samples
    cols = np.arange(nc.shape[1])
    foreign = (nc[top, cols] >= FOREIGN_FOLD * np.maximum(med[top], 0.5)) & (med[top] < FOREIGN_MEDIAN)
    raw = counts.to_numpy(float)
    lib = raw.sum(axis=0)
    share = np.where(foreign, raw[top, cols], 0).sum(axis=0) / np.where(lib > 0, lib, 1)
    genes = counts.index.astype(str).to_numpy()
    named = [", ".join(genes[top[foreign[:, j], j]][:8]) for j in cols]
    return pd.DataFrame({"foreign_share": share, "foreign_genes": named,
                         "n_foreign_genes": foreign.sum(axis=0),
                         "contamination": share >= FOREIGN_SHARE}, index=counts.columns)
