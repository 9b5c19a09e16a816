"""QC plots of one dataset: PCA with each patient's pre and post joined, the sample correlation
heatmap, per-sample distributions and library sizes (rules and matrices: prepost.qc.samples)."""

from __future__ import annotations

import matplotlib.style
import pandas as pd

from prepost.plots.common import DPI, RESPONSE_COLOURS, RESPONSE_LABELS, TITLE_Y, new_figure, save
from prepost.prepare.pairing import complete_pairs
from prepost.qc.samples import QcResult


# ---------------------------------------------------------------------------------------------
# plots (deterministic: prepost.plots conventions)
# ---------------------------------------------------------------------------------------------
def _order(sheet: pd.DataFrame, samples: list[str]) -> list[str]:
    s = sheet.assign(sample=sheet["sample"].astype(str)).set_index("sample").reindex(samples)
    tp = s["timepoint"].map({"pre": 0, "post": 1}).fillna(2)
    key = pd.DataFrame({"patient": s["patient"].astype(str).to_numpy(), "tp": tp.to_numpy(),
                        "sample": samples})
    return list(key.sort_values(["patient", "tp", "sample"], kind="mergesort")["sample"])


def _labels(sheet: pd.DataFrame, samples: list[str]) -> list[str]:
    s = sheet.assign(sample=sheet["sample"].astype(str)).set_index("sample")
    return [f"{s.at[x, 'patient']} {s.at[x, 'timepoint']}" if x in s.index else x for x in samples]


def pca_plot(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """PC1 vs PC2; a grey line joins each patient's pre and post; flagged samples labelled."""
    with matplotlib.style.context("default"):
        fig = new_figure(6.4, 5.2, dpi)
        ax = fig.add_subplot()
        sc = res.scores
        pc2 = sc["PC2"] if "PC2" in sc else pd.Series(0.0, index=sc.index)
        pairs = complete_pairs(res.matrix, sheet, "PCA plot")
        for _, row in pairs.iterrows():
            ax.plot([sc.at[row["pre"], "PC1"], sc.at[row["post"], "PC1"]],
                    [pc2[row["pre"]], pc2[row["post"]]], color="0.6", lw=0.8, zorder=1)
        s = res.samples.set_index("sample")
        resp = s["response"].fillna("unknown").astype(str).where(
            lambda r: r.isin(list(RESPONSE_COLOURS)), "unknown")
        for tp, marker in (("pre", "o"), ("post", "^"), ("other", "s")):
            m = s["timepoint"].eq(tp) if tp != "other" else ~s["timepoint"].isin(["pre", "post"])
            for r in RESPONSE_COLOURS:
                mm = (m & resp.eq(r)).to_numpy()
                if mm.any():
                    ax.scatter(sc["PC1"].to_numpy()[mm], pc2.to_numpy()[mm], marker=marker, s=36,
                               c=RESPONSE_COLOURS[r], edgecolors="black", linewidths=0.4, zorder=2,
                               label=f"{tp}, {RESPONSE_LABELS[r]}")
        flagged = s.index[s["outlier"] | s["pair_identity"].eq("mismatch")]
        for x in flagged:
            ax.annotate(x, (sc.at[x, "PC1"], pc2[x]), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color="#D55E00")
        v = res.percent_var
        ax.set_xlabel(f"PC1 ({100 * v[0]:.1f}% of variance)")
        ax.set_ylabel(f"PC2 ({100 * v[1]:.1f}% of variance)" if len(v) > 1 else "PC2")
        ax.set_title(f"{title}\nPCA, top {res.info['top_genes']} variable genes; lines join a patient's samples",
                     fontsize=9, y=TITLE_Y)
        ax.legend(fontsize=7, loc="best", frameon=True, framealpha=0.9)
        save(fig, dest, dpi)
    return {"samples": int(len(sc)), "pairs": int(len(pairs)), "labelled": list(flagged)}


def correlation_heatmap(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Sample-sample Pearson correlation (top variable genes), samples ordered by patient."""
    order = _order(sheet, list(res.correlation.index))
    c = res.correlation.loc[order, order].to_numpy()
    n = len(order)
    size = min(3.0 + 0.18 * n, 16.0)
    with matplotlib.style.context("default"):
        fig = new_figure(size + 1.2, size, dpi)
        ax = fig.add_subplot()
        im = ax.imshow(c, cmap="viridis", interpolation="nearest", aspect="equal")
        if n <= 80:
            labels = _labels(sheet, order)
            fs = 7 if n <= 40 else 5
            ax.set_xticks(range(n), labels, rotation=90, fontsize=fs)
            ax.set_yticks(range(n), labels, fontsize=fs)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson correlation")
        ax.set_title(f"{title}\nsample correlation, top {res.info['top_genes']} variable genes", fontsize=9, y=TITLE_Y)
        save(fig, dest, dpi)
    return {"samples": n}


def distribution_plot(res: QcResult, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Boxplot of each sample's QC values (VST or log2); whiskers at 1.5 IQR, no fliers."""
    order = _order(sheet, list(res.matrix.columns))
    n = len(order)
    with matplotlib.style.context("default"):
        fig = new_figure(min(3.0 + 0.25 * n, 24.0), 4.0, dpi)
        ax = fig.add_subplot()
        ax.boxplot([res.matrix[x].to_numpy() for x in order], showfliers=False, widths=0.6,
                   medianprops={"color": "#D55E00"})
        ax.set_xticks(range(1, n + 1), _labels(sheet, order) if n <= 120 else [""] * n,
                      rotation=90, fontsize=6 if n > 40 else 7)
        ax.set_ylabel("VST (log2 scale)" if res.values == "counts" else "log2 expression")
        ax.set_title(f"{title}\nper-sample distribution ({res.info['genes_used']} genes)", fontsize=9, y=TITLE_Y)
        save(fig, dest, dpi)
    return {"samples": n}


def library_size_plot(data: pd.DataFrame, sheet: pd.DataFrame, dest, title: str, *, dpi: int = DPI) -> dict:
    """Total counts per sample, in millions."""
    data = data.copy()
    data.columns = data.columns.astype(str)
    order = _order(sheet, list(data.columns))
    lib = data[order].sum(axis=0) / 1e6
    n = len(order)
    with matplotlib.style.context("default"):
        fig = new_figure(min(3.0 + 0.25 * n, 24.0), 3.6, dpi)
        ax = fig.add_subplot()
        ax.bar(range(n), lib.to_numpy(), color="#0072B2", width=0.7)
        ax.set_xticks(range(n), _labels(sheet, order) if n <= 120 else [""] * n,
                      rotation=90, fontsize=6 if n > 40 else 7)
        ax.set_ylabel("library size (million counts)")
        ax.set_title(f"{title}\nlibrary sizes", fontsize=9, y=TITLE_Y)
        save(fig, dest, dpi)
    return {"samples": n, "min": float(lib.min()), "max": float(lib.max())}


def scree_plot(res: QcResult, dest, title: str, *, dpi: int = DPI) -> dict:
    """Percent of variance of PC1-10 (bars) and cumulative (line), plotPCA's top genes."""
    v = 100 * res.percent_var[:10]
    with matplotlib.style.context("default"):
        fig = new_figure(5.6, 3.6, dpi)
        ax = fig.add_subplot()
        x = range(1, len(v) + 1)
        ax.bar(x, v, color="#0072B2", width=0.7, label="component")
        ax.plot(x, v.cumsum(), color="#D55E00", marker="o", ms=3, label="cumulative")
        ax.set_xticks(list(x), [f"PC{i}" for i in x], fontsize=7)
        ax.set_ylabel("% of variance")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
        ax.set_title(f"{title}\nscree plot, top {res.info['top_genes']} variable genes", fontsize=9, y=TITLE_Y)
        save(fig, dest, dpi)
    return {"components": int(len(v))}


def association_heatmap(res: QcResult, dest, title: str, *, dpi: int = DPI) -> dict:
    """R² of each sample field on PC1-5 (prepost.qc.samples.pc_associations), p < 0.05 starred."""
    a = res.associations if res.associations is not None else pd.DataFrame()
    with matplotlib.style.context("default"):
        if a is None or a.empty:
            fig = new_figure(5.0, 1.6, dpi)
            ax = fig.add_subplot()
            ax.axis("off")
            ax.text(0.5, 0.5, "no sample field with 2 or more levels to associate", ha="center",
                    va="center", fontsize=8)
            ax.set_title(f"{title}\nPC-field associations", fontsize=9, y=TITLE_Y)
            save(fig, dest, dpi)
            return {"fields": 0}
        r2 = a.pivot(index="field", columns="pc", values="r2")
        p = a.pivot(index="field", columns="pc", values="pvalue").reindex_like(r2)
        r2 = r2.loc[r2.max(axis=1).sort_values(ascending=False).index[:30]]
        p = p.loc[r2.index]
        fig = new_figure(2.6 + 0.7 * r2.shape[1], 1.2 + 0.28 * len(r2), dpi)
        ax = fig.add_subplot()
        im = ax.imshow(r2.to_numpy(float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(r2.shape[1]), list(r2.columns), fontsize=7)
        ax.set_yticks(range(len(r2)), [str(x)[:40] for x in r2.index], fontsize=7)
        for i in range(len(r2)):
            for j in range(r2.shape[1]):
                if p.iat[i, j] < 0.05:
                    ax.text(j, i, "*", ha="center", va="center", color="white", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8, label="R²")
        ax.set_title(f"{title}\nwhich sample fields explain PC1-5 (* p < 0.05)", fontsize=9, y=TITLE_Y)
        save(fig, dest, dpi)
    return {"fields": int(len(r2))}
