"""One self-contained HTML report of a run: results/report.html.

Why one file: it can be mailed or archived with a paper and opened anywhere; every image is
inlined as a base64 data URI and the style sheet is in the page (no external CSS/JS, no
network). The page is rendered by jinja2 with autoescaping, so sample names, claim statements or
config values cannot inject markup. It carries no timestamp (download dates stay in the
manifests), so two runs on the same results give byte-identical files.

``build_report(layout, dest, config)`` takes a ``layout`` dict of result paths (built by the
report rule; see ``workflow/rules/report.smk``)::

    {"datasets": {ds: {"samples", "pairs", "summary", "manifest" (or None), "lanes" (or None),
                       "qc": {"samples_qc", "pair_identity", "plots": {title: png}},
                       "contrasts": {c: {"table", "fit", "volcano", "ma", "slopes", "gsea",
                                         "dotplot", "genesets_found"}},
                       "set_slopes": png or None}},
     "claims": tsv, "claims_meta": tsv or None, "forest": {claim: png}}

Any path may be missing from the dict (that part of the report is left out); the meta-analysis
section appears only when ``claims_meta`` is given. A contrast's ``fit`` is the de rule's
record (de/{contrast}.fit.json): the engine and dispersion trend it names go into the DE
section and the methods paragraph, with a warning when a contrast fell back from prepost.de.nb
to pydeseq2 or used a mean dispersion trend (its list of optim genes stays in the JSON).
"""

from __future__ import annotations

import base64
import json
import math
from io import BytesIO
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from prepost import files, provenance
from prepost.report.scoreboard import CSS, MARK, evidence_rows, scoreboard
from prepost.report.slopes import legend_text as slope_legend, paired_values, slope_svg
from prepost.vocabulary import ALPHA

TOP_N = 20
IMG_MAX_W = 1000
IMG_SMALL_W = 640  # the other contrasts' plots (priority 4 and 5): smaller, so more of them fit
DE_COLUMNS = ["gene", "mean_expr", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
GSEA_COLUMNS = ["collection", "set", "size", "nes", "pvalue", "padj", "leading_edge"]
CLAIM_COLUMNS = ["claim", "dataset", "contrast", "feature", "direction_expected", "effect",
                 "ci_low", "ci_high", "pvalue", "claim_padj", "n_pairs", "verdict", "reason"]
META_COLUMNS = ["claim", "feature", "contrast", "direction_expected", "k", "datasets", "effect",
                "ci_low", "ci_high", "pvalue", "i2", "q_pvalue", "verdict", "reason"]
VERDICT_CLASS = CSS
MAX_MB = 15  # report.max_mb's default
COMPACT_AFTER = 5
LONG_ROWS = 60  # per-sample tables longer than this show their flagged rows, the rest is a download  # more datasets than this: scoreboard cells show the verdict only


class ReportError(ValueError):
    """A result file the report cannot read; the message names it."""


def _read(path, what: str, **kw) -> pd.DataFrame:
    try:
        return files.read_tsv(path, **kw)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ReportError(f"report: cannot read {what} {str(path)!r}: {err}") from None


def _fmt(x) -> str:
    """Numbers to 3 significant digits, whole numbers as integers, missing as empty."""
    if hasattr(x, "item"):
        x = x.item()  # numpy scalar -> Python
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return ""
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        return f"{x:.3g}"
    return str(x)


def _rows(df: pd.DataFrame, columns: list[str]) -> dict:
    cols = [c for c in columns if c in df.columns]
    rows = [[_fmt(v) for v in rec] for rec in df[cols].itertuples(index=False)]
    return {"columns": cols, "rows": rows}


class Images:
    """The report's plots, inlined as data URIs within a size budget.

    Sections register a PNG with a priority (1: the claims' forest plots and PCA; 2: the first
    contrast's volcano and the other QC plots; 3: the first contrast's other plots; 4: the other
    contrasts' volcanos; 5: everything else) and keep its path; the template asks for a path's
    URI through the ``img`` filter. ``resolve(budget)`` encodes the plots in priority order (then
    by path; at most IMG_MAX_W pixels wide, IMG_SMALL_W for priorities 4-5, WebP: see
    _encode_png) while they fit in ``budget`` bytes; from
    the first plot that does not fit, this one and every later one are linked to their files,
    relative to the report, and never encoded (which also keeps a large report fast to build).
    Priority 1 is always inlined. ``workers`` threads encode side by side (Pillow releases the
    GIL), a batch at a time, and plots are accepted in the same order as one by one, so the page
    is the same whatever the number of workers."""

    def __init__(self, base: Path | None = None, workers: int = 1):
        self.base = base
        self.workers = max(1, int(workers))
        self.priority: dict[str, int] = {}
        self.uri: dict[str, str] = {}

    def add(self, path, priority: int = 5) -> str | None:
        if not path or not Path(path).exists():
            return None
        key = str(path)
        self.priority[key] = min(priority, self.priority.get(key, priority))
        return key

    def link_all(self) -> None:
        self.uri = {k: _relative(k, self.base) for k in self.priority}

    def resolve(self, budget: int | None) -> dict:
        from concurrent.futures import ThreadPoolExecutor

        order = sorted(self.priority, key=lambda k: (self.priority[k], k))
        encoded: dict[str, str] = {}

        def encode(at: int) -> None:  # this plot and the next workers - 1 still wanted
            batch = [k for k in order[at:] if k not in encoded and (not full or self.priority[k] == 1)]
            batch = batch[: self.workers]
            widths = [IMG_MAX_W if self.priority[k] <= 3 else IMG_SMALL_W for k in batch]
            with ThreadPoolExecutor(self.workers) as pool:
                encoded.update(zip(batch, pool.map(_encode_png, batch, widths)))

        total, linked, full = 0, 0, False
        for at, key in enumerate(order):
            if not full or self.priority[key] == 1:
                if key not in encoded:
                    encode(at)
                uri = encoded.pop(key)
                if budget is None or total + len(uri) <= budget or self.priority[key] == 1:
                    self.uri[key] = uri
                    total += len(uri)
                    continue
                full = True
            self.uri[key] = _relative(key, self.base)
            linked += 1
        return {"inlined_bytes": total, "linked": linked, "images": len(self.priority)}

    def __call__(self, key) -> str:
        return self.uri.get(str(key), "") if key else ""


def _relative(path, base: Path | None) -> str:
    import os

    if base is None:
        return Path(path).as_posix()
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def _encode_png(path, max_w: int = 1000) -> str:
    """A plot for the page: at most IMG_MAX_W pixels wide, WebP at quality 80 (about half the
    bytes of a 256-colour PNG and twice as fast to encode; libwebp is deterministic, so the same
    plot gives the same bytes). Narrowed with a Hamming filter: for the page's 1.1-2.8x
    reductions of line plots it looks as Lanczos does, at half the time (0.6 vs 1.2 s for the
    demo's 53 wide plots; Lanczos was a fifth of the report job)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > max_w:
            im = im.resize((max_w, round(im.height * max_w / im.width)), Image.Resampling.HAMMING)
        buf = BytesIO()
        im.save(buf, format="WEBP", quality=80, method=2)  # 4: 35 % slower, 3 % smaller
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _long_table(df: pd.DataFrame, flagged: pd.Series, name: str) -> dict:
    """A per-sample table for the page: every row up to LONG_ROWS rows, else the flagged rows
    only; the whole table is always a TSV download."""
    shown = df if len(df) <= LONG_ROWS else df[flagged.to_numpy()]
    out = _rows(shown, list(df.columns))
    out["total"] = len(df)
    out["download"] = _download(df, name, "" if len(shown) == len(df) else f"all {len(df)} rows")
    return out


def _download(df: pd.DataFrame, name: str, note: str = "") -> dict:
    """A table as an embedded TSV download link (data URI: no network, no extra file)."""
    text = df.to_csv(sep="\t", index=False, lineterminator="\n")
    uri = "data:text/tab-separated-values;charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii")
    return {"name": name, "uri": uri, "note": note}


def software_versions() -> dict[str, str]:
    """The report step's own environment (the other steps record theirs: see collect_software)."""
    return provenance.software_versions("pandas", "jinja2", "pillow", "pyyaml")


def collect_software(datasets: list[dict], report_versions: dict, snakemake_version: str | None) -> dict:
    """What each step ran with, from the records the steps wrote in their own environments:
    {"rows": [[package, version, steps]], "by_package": {package: [versions]}}. A package at two
    versions in two steps (conda environments that drifted) shows as two rows."""
    seen: dict[tuple[str, str], set[str]] = {}

    def add(step, versions):
        for pkg, ver in (versions or {}).items():
            seen.setdefault((pkg, str(ver)), set()).add(step)

    for d in datasets:
        add("prepare", d.get("software"))
        for c in d.get("contrasts", []):
            add("de", (c.get("fit") or {}).get("software"))
            add("enrich", (c.get("enrich_record") or {}).get("software"))
    add("report", report_versions)
    if snakemake_version:
        add("workflow (Snakemake)", {"snakemake": snakemake_version})
    order = ["workflow (Snakemake)", "prepare", "de", "enrich", "report"]
    rows = sorted(([pkg, ver, ", ".join(sorted(steps, key=order.index))] for (pkg, ver), steps in seen.items()),
                  key=lambda r: (r[0] != "snakemake", r[0] != "python", r[0] != "prepost", r[0], r[1]))
    by_package: dict[str, list[str]] = {}
    for pkg, ver, _ in rows:
        by_package.setdefault(pkg, []).append(ver)
    return {"rows": rows, "columns": ["package", "version", "steps that ran it"], "by_package": by_package}


def _read_fit(path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"report: cannot read {what} {str(path)!r}: {err}") from None


def _engine_text(fit: dict) -> str:
    """'pydeseq2 0.5.4', 'prepost.de.nb (DESeq2 1.38 re-implementation)', or the engine."""
    engine = str(fit.get("engine") or "engine not recorded")
    if fit.get("version"):
        return f"{engine} {fit['version']}"
    method = str(fit.get("method") or "")
    if "re-implementation" in method and "(" not in engine:
        return f"{engine} ({method.split(' (')[0]} re-implementation)"
    return engine


def _trend_text(fit: dict) -> str:
    """'parametric trend 0.034 + 2.09/mean', 'mean trend 0.21' or '' (no dispersion trend)."""
    kind = fit.get("dispersion_trend")
    coef = fit.get("trend_coefficients") or {}
    if kind == "parametric" and {"asymptDisp", "extraPois"} <= set(coef):
        return f"parametric trend {_fmt(coef['asymptDisp'])} + {_fmt(coef['extraPois'])}/mean"
    if kind == "mean" and "mean" in coef:
        return f"mean trend {_fmt(coef['mean'])}"
    return f"{kind} trend" if kind else ""


def _optim_text(fit: dict) -> str:
    n = fit.get("genes_refit_with_optim")
    if n is None:
        return ""
    if not n:
        return "no gene refitted with optim"
    return f"{n} gene{'s' if n != 1 else ''} refitted with L-BFGS-B as DESeq2's optim"


def fit_description(fit: dict) -> str:
    """Engine, dispersion trend and optim refits of a fit record, as the methods name them."""
    return ", ".join(t for t in (_engine_text(fit), _trend_text(fit), _optim_text(fit)) if t)


def fit_warnings(fit: dict) -> list[str]:
    """What a reader must not miss: a fallback from prepost.de.nb to pydeseq2, a mean trend."""
    out = []
    if fit.get("fallback"):
        out.append(
            f"fell back from {fit.get('fallback_from') or 'prepost.de.nb'} to "
            f"{_engine_text(fit)} ({fit['fallback']})"
        )
    if fit.get("dispersion_trend") == "mean":
        out.append("used a mean dispersion trend because the parametric fit failed")
    return out


def _fit_line(fit: dict) -> str:
    """One line of the DE section: engine, design, trend, prior, optim refits."""
    parts = [_engine_text(fit)]
    if fit.get("design"):
        parts.append(f"design {fit['design']}")
    disp = [t for t in (_trend_text(fit), fit.get("prior_variance") is not None
                        and f"prior variance {_fmt(fit['prior_variance'])}") if t]
    if disp:
        parts.append("dispersions: " + ", ".join(disp))
    if fit.get("df_prior") is not None:
        parts.append(f"variance prior: df {_fmt(fit['df_prior'])}, s0\u00b2 {_fmt(fit.get('s2_prior'))}")
    if _optim_text(fit):
        parts.append(_optim_text(fit))
    if fit.get("patient_model"):
        rho = fit.get("consensus_correlation")
        parts.append(f"{fit.get('samples_entered', '?')} samples entered; patient as {fit['patient_model']}"
                     + (f" (consensus correlation {_fmt(rho)})" if rho is not None else ""))
    return "; ".join(parts)


def _fit_entry(fit: dict) -> dict:
    """The fit keys of a contrast's report entry (no gene list: that stays in the JSON)."""
    warnings = fit_warnings(fit)
    flags = (["fallback to " + str(fit.get("engine"))] if fit.get("fallback") else []) + (
        ["mean trend"] if fit.get("dispersion_trend") == "mean" else []
    )
    trend = fit.get("dispersion_trend")
    return {
        "fit": {k: v for k, v in fit.items() if k != "optim_genes"},
        "fit_short": str(fit.get("engine") or "") + (f", {trend} trend" if trend else ""),
        "fit_line": _fit_line(fit),
        "fit_warnings": warnings,
        "fit_flag": "; ".join(flags),
    }


def _diagnostics(paths: dict, fit: dict, values, images: Images, priority: int) -> dict:
    """A contrast's model diagnostics subsection: the p-value histogram, the dispersion
    (counts) or residual SD (arrays) plot and, when the fit has hidden factors
    (unwanted_factors k > 0), PC1/PC2 coloured by each factor and a sentence naming them."""
    model_title = "Dispersion estimates" if values == "counts" else "Residual SD vs mean (SA)"
    hidden = fit.get("unwanted_factors") or {}
    wanted = [("p-value histogram", "pvalues"), (model_title, "model")]
    if hidden.get("k"):
        wanted.append(("PC1/PC2 by hidden factor", "factors"))
    plots = [(t, u) for t, u in ((t, images.add(paths.get(k), priority + 1)) for t, k in wanted) if u]
    text = (f"{hidden['k']} hidden factor{'s' if hidden['k'] != 1 else ''} "
            f"({', '.join(hidden.get('factors', []))}) estimated by {hidden.get('method')} on "
            f"{hidden.get('genes_used')} genes and added to the design" if hidden.get("k") else "")
    return {"diagnostics": plots, "hidden_text": text}


def _dataset_section(name: str, d: dict, cfg: dict, top_n: int, images: Images) -> dict:
    summary = json.loads(Path(d["summary"]).read_text()) if d.get("summary") else {}
    sec = {"name": name, "description": cfg.get("description", ""), "kind": cfg.get("kind", ""),
           "accession": cfg.get("accession", summary.get("accession", "")),
           "values": summary.get("values", ""), "genes": summary.get("genes", ""),
           "samples": summary.get("samples", ""), "pairs": summary.get("pairs", ""),
           "dropped": summary.get("dropped", {}), "software": summary.get("software") or {},
           "data_kind": cfg.get("kind", summary.get("kind", ""))}
    if d.get("pairs"):
        ledger = _read(d["pairs"], "pair ledger", dtype=str)
        counts = ledger.groupby(["status", "reason"], dropna=False).size().reset_index(name="samples")
        sec["ledger"] = _rows(counts, ["status", "reason", "samples"])
        sec["ledger"]["download"] = _download(ledger, f"{name}_sample_ledger.tsv", "every sample")
    if d.get("samples"):
        sheet = _read(d["samples"], "sample sheet", dtype=str)
        if "response" in sheet:
            paired = sheet[sheet["in_pair"].astype(str) == "True"] if "in_pair" in sheet else sheet
            resp = paired.drop_duplicates("patient")["response"].fillna("unknown").value_counts()
            sec["response"] = ", ".join(f"{k}: {v}" for k, v in sorted(resp.items()))
    qc = d.get("qc") or {}
    sec["qc_plots"] = [(t, u) for t, u in ((t, images.add(p, 1 if t == "PCA" else 2))
                                           for t, p in qc.get("plots", {}).items()) if u]
    if qc.get("pair_identity"):
        ident = _read(qc["pair_identity"], "pair identity table", dtype={"post_sample": str, "patient": str})
        sec["pair_identity"] = _long_table(ident, ident["flag"].astype(str).str.lower().eq("true"),
                                           f"{name}_pair_identity.tsv")
        sec["identity_flags"] = int(ident["flag"].astype(str).str.lower().eq("true").sum()) if len(ident) else 0
        sec["identity_basis"] = str(ident["basis"].iloc[0]) if len(ident) and "basis" in ident else ""
    if qc.get("samples_qc"):
        sq = _read(qc["samples_qc"], "sample QC table", dtype={"sample": str, "patient": str})
        sec["outliers"] = sq.loc[sq["outlier"].astype(str).str.lower().eq("true"), "sample"].tolist()
        sec["outlier_rule"] = str(sq["rule"].iloc[0]) if len(sq) else ""
        sec["samples_qc"] = _long_table(sq.drop(columns="rule"), sq["outlier"].astype(str).str.lower().eq("true"),
                                        f"{name}_samples_qc.tsv")
        sexes = sq["sex_expr"].fillna("unknown").value_counts() if "sex_expr" in sq else {}
        sec["sex_calls"] = ", ".join(f"{k}: {v}" for k, v in sorted(dict(sexes).items()))
        fs = pd.to_numeric(sq.get("foreign_share"), errors="coerce") if "foreign_share" in sq else None
        if fs is not None and fs.notna().any():
            top = sq.assign(fs=fs).sort_values("fs", ascending=False).head(3)
            sec["foreign_top"] = [f"{r.sample} {100 * r.fs:.1f}% ({r.foreign_genes})"
                                  for r in top.itertuples() if r.fs > 0]
    if qc.get("exclusions"):
        ex = _read(qc["exclusions"], "QC exclusion table", dtype={"sample": str, "patient": str})
        truthy = lambda col: ex[col].astype(str).str.lower().eq("true")  # noqa: E731
        sec["qc_exclude"] = {
            "excluded": ex.loc[truthy("excluded"), "sample"].tolist(),
            "partners": ex.loc[truthy("partner_excluded"), "sample"].tolist(),
            "would": ex.loc[truthy("would_exclude"), "sample"].tolist(),
            "table": dict(_rows(ex, list(ex.columns)), download=_download(ex, f"{name}_qc_exclusions.tsv"))
            if len(ex) else None,
        }
    if qc.get("impact"):
        imp = _read(qc["impact"], "QC impact table")
        sec["qc_impact"] = _rows(imp, list(imp.columns))
        sec["qc_impact"]["download"] = _download(imp, f"{name}_qc_impact.tsv")
    if qc.get("pc_associations"):
        pa = _read(qc["pc_associations"], "PC association table")
        if len(pa):
            full = pa.sort_values("pvalue")
            sec["pc_associations"] = _rows(full.head(15), list(pa.columns))
            sec["pc_associations"]["download"] = _download(full, f"{name}_pc_associations.tsv", "all tests")
    sec["contrasts"] = []
    for i, (c, paths) in enumerate((d.get("contrasts") or {}).items()):  # the configured order
        entry = {"name": c, "plots": []}
        prio = 2 if i == 0 else 4
        if paths.get("fit"):
            entry.update(_fit_entry(_read_fit(paths["fit"], f"DE fit record ({name}, {c})")))
        if paths.get("table"):
            de = _read(paths["table"], f"DE table ({name}, {c})")
            entry["n_tested"] = int(de["pvalue"].notna().sum()) if "pvalue" in de else len(de)
            entry["n_sig"] = int((de["padj"] < ALPHA).sum()) if "padj" in de else 0
            top = de.sort_values(["padj", "pvalue"], kind="mergesort", na_position="last").head(top_n)
            entry["top"] = _rows(top, DE_COLUMNS)
            entry["top"]["download"] = {**_download(top, f"{name}_{c}_top{top_n}.tsv"),
                                        "file": _relative(paths["table"], images.base)}
        for title, key in (("Volcano", "volcano"), ("MA", "ma"), ("Slopes", "slopes")):
            uri = images.add(paths.get(key), prio if key == "volcano" else prio + 1)
            if uri:
                entry["plots"].append((title, uri))
        entry.update(_diagnostics(paths, entry.get("fit") or {}, summary.get("values"), images, prio))
        if paths.get("gsea"):
            g = _read(paths["gsea"], f"GSEA table ({name}, {c})")
            g = g.sort_values(["padj", "pvalue"], kind="mergesort", na_position="last").head(top_n)
            entry["gsea"] = _rows(g, GSEA_COLUMNS)
            entry["gsea"]["download"] = {**_download(g, f"{name}_{c}_gsea_top{top_n}.tsv"),
                                         "file": _relative(paths["gsea"], images.base)}
        entry["dotplot"] = images.add(paths.get("dotplot"), prio + 1)
        if paths.get("enrich_record") and Path(paths["enrich_record"]).exists():
            entry["enrich_record"] = _read_fit(paths["enrich_record"], f"enrichment record ({name}, {c})")
        if paths.get("genesets_found"):
            found = _read(paths["genesets_found"], f"gene-set coverage ({name}, {c})")
            if "collection_status" in found:
                st = found.drop_duplicates("collection")
                entry["skipped"] = [f"{a}: {b}" for a, b in zip(st["collection"], st["collection_status"])
                                    if str(b) != "tested"]
        sec["contrasts"].append(entry)
    sec["set_slopes"] = images.add(d.get("set_slopes"), 3)
    sec.update(_panel_section(d, summary))
    if d.get("manifest"):
        m = _read(d["manifest"], "download manifest", dtype=str)
        sec["manifest"] = _rows(m, ["file", "url", "bytes", "sha256", "status"])
        sec["manifest"]["download"] = _download(m, f"{name}_manifest.tsv")
    return sec


LANE_COLUMNS = ["sample", "fov_ratio", "binding_density", "pos_linearity_r2", "neg_mean_2sd",
                "pos_e_count", "flag", "reason"]


def _panel_section(d: dict, summary: dict) -> dict:
    """A NanoString dataset's lane QC (flagged lanes first, highlighted) and its size factors:
    the housekeeping genes used and those screened out, with the reason."""
    out: dict = {}
    if d.get("lanes"):
        lanes = _read(d["lanes"], "lane QC table", dtype={"sample": str})
        flagged = lanes["flag"].astype(str).str.lower().eq("true")
        lanes = pd.concat([lanes[flagged], lanes[~flagged]])
        out["lanes"] = _rows(lanes, [c for c in LANE_COLUMNS if c in lanes])
        out["lanes"]["download"] = _download(lanes, "lanes.tsv")
        out["lane_classes"] = ["flag-row" if f else "" for f in sorted(flagged, reverse=True)]
        out["lanes_flagged"] = lanes.loc[lanes["flag"].astype(str).str.lower().eq("true"), "sample"].tolist()
    sf = summary.get("size_factors")
    if sf:
        out["size_factors"] = {
            "method": sf.get("method", ""),
            "control_genes": sf.get("control_genes", []),
            "screened_out": sorted((sf.get("housekeeping_screened_out") or {}).items()),
            "not_tested": len(summary.get("not_tested") or []),
        }
    return out


def _engine_sentences(datasets: list[dict]) -> list[str]:
    """Per dataset, the contrasts grouped by engine and dispersion trend, then one warning
    sentence per contrast that fell back to pydeseq2 or used a mean trend."""
    out, warn = [], []
    for d in datasets:
        groups: dict[str, list[str]] = {}
        for c in d.get("contrasts", []):
            fit = c.get("fit")
            groups.setdefault(fit_description(fit) if fit else "engine not recorded", []).append(c["name"])
            warn.extend(f"Warning: {d['name']} {c['name']} {w}." for w in (c.get("fit_warnings") or []))
        if groups:
            text = "; ".join(f"{', '.join(names)}: {desc}" for desc, names in groups.items())
            trend = any((c.get("fit") or {}).get("dispersion_trend") for c in d["contrasts"])
            label = "Engine and dispersion trend" if trend or d.get("values") == "counts" else "Engine"
            out.append(f"{label}, {d['name']}: {text}.")
    return out + warn


def _panel_sentences(datasets: list[dict]) -> list[str]:
    """Per NanoString dataset: lane QC and housekeeping normalisation, as run."""
    out = []
    for d in datasets:
        sf = d.get("size_factors")
        if "lanes" in d:
            n = len(d["lanes"]["rows"])
            flagged = d.get("lanes_flagged") or []
            out.append(
                f"{d['name']} (NanoString RCC files): lane QC by nSolver 4.0's default rules "
                f"(imaging, binding density, positive-control linearity, limit of detection) flagged "
                f"{len(flagged)} of {n} lanes."
            )
        if sf and sf.get("method") == "housekeeping":
            screened = len(sf.get("screened_out") or [])
            out.append(
                f"Its size factors were DESeq2's median of ratios over {len(sf.get('control_genes') or [])} "
                f"housekeeping genes (controlGenes; {screened} screened out as low or unstable by a "
                f"rule fixed in advance), and the {sf.get('not_tested', 0)} housekeeping genes were not tested."
            )
        skipped = sorted({s.split(":", 1)[0] for c in d.get("contrasts", []) for s in c.get("skipped", [])})
        if skipped:
            out.append(
                f"Gene-set collection{'s' if len(skipped) != 1 else ''} {', '.join(skipped)} covered too "
                f"little of {d['name']}'s measured genes (enrichment.min_coverage) and "
                f"{'were' if len(skipped) != 1 else 'was'} not tested there."
            )
    return out


def _versions(software: dict, pkg: str) -> str:
    """'1.1.4' or '1.1.4 / 1.1.5' (steps that ran different versions) or 'not recorded'."""
    return " / ".join((software.get("by_package") or {}).get(pkg, [])) or "not recorded"


def _patient_sentences(datasets: list[dict]) -> list[str]:
    """How each contrast modelled the patient, when its fit record says (fixed block, random
    effect with the consensus correlation, unpaired) and how many samples entered."""
    out = []
    for d in datasets:
        for c in d.get("contrasts", []):
            fit = c.get("fit") or {}
            model = fit.get("patient_model")
            if not model:
                continue
            rho = fit.get("consensus_correlation")
            text = f"{d['name']} {c['name']}: {fit.get('samples_entered', fit.get('samples', '?'))} samples, patient as {model}"
            if rho is not None and "correlation" not in str(fit.get("patient_model_reason") or ""):
                text += f" (consensus within-patient correlation {_fmt(rho)})"
            if fit.get("patient_model_reason"):
                text += f", {fit['patient_model_reason']}"
            out.append(text + ".")
    return out


def _dataset_sentence(d: dict) -> str:
    values = {"counts": "counts", "log2": "log2 values"}.get(d.get("values"), d.get("values") or "values")
    source = {"nanostring": "NanoString RCC files", "geo_counts": "a GEO count table",
              "geo_series_matrix": "a GEO series matrix", "local": "local files"}.get(d.get("data_kind"), "")
    bits = [f"{d['samples']} samples" if d.get("samples", "") != "" else "",
            f"{d['pairs']} complete pairs" if d.get("pairs", "") != "" else ""]
    excl = (d.get("qc_exclude") or {}).get("excluded") or []
    if excl:
        bits.append(f"{len(excl)} sample{'s' if len(excl) != 1 else ''} excluded by QC ({', '.join(excl)})")
    dropped = sum(int(v) for v in (d.get("dropped") or {}).values())
    if dropped:
        bits.append(f"{dropped} sample{'s' if dropped != 1 else ''} not paired (listed in its ledger)")
    acc = f", {d['accession']}" if d.get("accession") else ""
    src = f" from {source}" if source else ""
    return f"{d['name']}{acc}: {values}{src}, {', '.join(b for b in bits if b)}."


def methods_text(config: dict, datasets: list[dict], software: dict) -> str:
    """A methods paragraph from what ran: the datasets as prepared, the engine and model of every
    contrast (their fit records), QC rules and exclusions as applied, enrichment settings of the
    enrich records, and the versions each step recorded in its own environment."""
    n_ds = len(datasets)
    pairs = sum(int(d["pairs"]) for d in datasets if str(d.get("pairs", "")).isdigit())
    counts = [d for d in datasets if d.get("values") == "counts"]
    arrays = [d["name"] for d in datasets if d.get("values") == "log2"]
    cs = config.get("claims_settings", {})
    parts = [
        f"We analysed {n_ds} paired pre-/post-treatment tumour expression dataset"
        f"{'s' if n_ds != 1 else ''} ({pairs} patients with both a pre- and a post-treatment sample"
        f"{' in total' if n_ds > 1 else ''}) with prepost {_versions(software, 'prepost')} "
        f"(Snakemake {_versions(software, 'snakemake')}, Python {_versions(software, 'python')}).",
    ]
    parts.extend(_dataset_sentence(d) for d in datasets)
    engines = {str((c.get("fit") or {}).get("engine") or "") for d in counts for c in d.get("contrasts", [])}
    if counts:
        kinds = sorted({"NanoString panel counts" if d.get("data_kind") == "nanostring" else "RNA-seq counts"
                        for d in counts})
        by = " or ".join(sorted(e for e in engines if e)) or "an engine not recorded"
        ver = f" {_versions(software, 'pydeseq2')}" if "pydeseq2" in engines else ""
        what = " and ".join(kinds)
        parts.append(
            f"{what[0].upper() + what[1:]} ({len(counts)} dataset{'s' if len(counts) != 1 else ''}) were "
            "tested with DESeq2's negative-binomial Wald test (median-of-ratios size factors, gene-wise "
            "dispersions shrunk towards a fitted dispersion trend, Cook's outlier handling, independent "
            f"filtering at alpha 0.1) as run by {by}{ver} (prepost.de.nb: a vectorised re-implementation "
            "of DESeq2 1.38)."
        )
    if arrays:
        parts.append(
            f"Microarray log2 values ({len(arrays)} dataset{'s' if len(arrays) != 1 else ''}; GEO2R's "
            "rule for log2 transformation, probes collapsed to the gene's highest-mean probe) were "
            "tested with a patient-blocked linear model and limma's empirical-Bayes moderated t."
        )
    parts.extend(_engine_sentences(datasets))
    if any((d.get("pairing") or {}).get("unpaired") == "block" for d in config.get("datasets", {}).values()):
        parts.append("Where pairing.unpaired was block, paired contrasts kept every usable sample and modelled the patient as a random effect (limma duplicateCorrelation consensus correlation, lmFit with block; voom with duplicateCorrelation run twice for counts), as each contrast's fit record states.")
    parts.extend(_patient_sentences(datasets))
    parts.extend(_panel_sentences(datasets))
    rules = sorted({d["outlier_rule"] for d in datasets if d.get("outlier_rule")})
    qc = " ".join(f"Outlier rule: {r}." for r in rules)
    mode = (config.get("qc") or {}).get("exclude", "none")
    parts.append(
        "P-values were adjusted by Benjamini-Hochberg. Sample QC used DESeq2's blind variance-"
        "stabilising transformation (counts) or log2 values (arrays): PCA, a pre/post pair-identity "
        f"check and outlier flags. {qc} QC exclusion (qc.exclude): {mode}."
    )
    records = [c["enrich_record"] for d in datasets for c in d.get("contrasts", []) if c.get("enrich_record")]
    if records:
        settings = sorted({(r.get("method"), r.get("permutations"), r.get("seed"), r.get("min_size"),
                            r.get("max_size"), r.get("ora_alpha")) for r in records}, key=str)
        text = "; ".join(f"method {m}, {n} permutations, seed {sd}, set sizes {lo}-{hi}, ORA at padj < {a}"
                         for m, n, sd, lo, hi, a in settings)
        parts.append(
            f"Gene-set enrichment ({len(records)} contrasts) used gseapy {_versions(software, 'gseapy')} "
            f"prerank on the paired-model statistic and over-representation of significant genes ({text})."
        )
    if cs:
        adj = "across the claim tests of each dataset" if cs.get("adjust") == "claims" else "genome-wide"
        parts.append(
            f"Published claims were counted as reproduced when the effect had the expected "
            f"direction with adjusted p < {cs.get('alpha')} (BH {adj}); effects were pooled across "
            "cohorts by DerSimonian-Laird random effects on the standardised mean difference."
        )
    return " ".join(parts)


def _claims_part(layout: dict, images: Images) -> dict:
    """The scoreboard, the claim pages, and the full claims and meta tables (with downloads)."""
    out: dict = {"board": None, "claim_pages": [], "claims": None, "meta": None}
    if not layout.get("claims"):
        return out
    cl = _read(layout["claims"], "claims table", dtype={"claim": str})
    cl["reason"] = cl["reason"].fillna("")
    m = None
    if layout.get("claims_meta"):
        m = _read(layout["claims_meta"], "meta-analysis table", dtype={"claim": str})
        m["reason"] = m["reason"].fillna("")
    board = scoreboard(cl, m)
    board["compact"] = len(board["datasets"]) > COMPACT_AFTER
    board["download"] = _download(scoreboard_table(board), "scoreboard.tsv")
    forest = layout.get("forest") or {}
    values = _claim_values(layout, cl)
    pages = []
    for r in board["rows"]:
        pages.append(dict(
            r, css=VERDICT_CLASS.get(r["overall"], ""), mark=MARK.get(r["overall"], ""),
            evidence=evidence_rows(cl, r["claim"]), forest=images.add(forest.get(r["claim"]), 1),
            slopes=_claim_slopes(r, values), slope_legend=slope_legend(),
        ))
    claims = _rows(cl, CLAIM_COLUMNS)
    claims["classes"] = [VERDICT_CLASS.get(v, "") for v in cl["verdict"].astype(str)]
    claims["download"] = _download(cl, "claims.tsv")
    out.update(board=board, claim_pages=pages, claims=claims)
    if m is not None:
        meta = _rows(m, META_COLUMNS)
        meta["classes"] = [VERDICT_CLASS.get(v, "") for v in m["verdict"].astype(str)]
        meta["download"] = _download(m, "claims_meta.tsv")
        out["meta"] = meta
    return out


def _claim_values(layout: dict, claims: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    """Per expression dataset: the paired values of every claim feature, and their unit."""
    out = {}
    features = list(dict.fromkeys(claims["feature"].astype(str)))
    for ds, d in sorted((layout.get("datasets") or {}).items()):
        need = [d.get("expression"), d.get("analysis_samples") or d.get("samples"), d.get("summary")]
        if not all(p and Path(p).exists() for p in need):
            continue
        summary = json.loads(Path(d["summary"]).read_text())
        vals = paired_values(need[0], need[1], summary, d.get("set_scores"), features)
        unit = "log2 normalised count" if summary.get("values") == "counts" else "log2 expression"
        out[ds] = (vals, unit)
    return out


def _claim_slopes(row: dict, values: dict) -> list[tuple[str, str]]:
    """(dataset title, SVG panels) of a claim's features, at most six per dataset."""
    out = []
    for ds, (vals, unit) in values.items():
        u = "set score" if row["kind"] != "gene_change" else unit
        panels = [slope_svg(vals, f, row["direction"], u) for f in row["features"][:6]]
        panels = [p for p in panels if p]
        if panels:
            out.append((ds, "".join(panels)))
    return out


def scoreboard_table(board: dict) -> pd.DataFrame:
    """The scoreboard as a tidy TSV: one row per claim, a verdict column per dataset."""
    recs = []
    for r in board["rows"]:
        rec = {"claim": r["claim"], "statement": r["statement"], "citation": r["citation"],
               "contrast": r["contrast"], "direction_expected": r["direction"]}
        for ds, c in zip(board["datasets"], r["cells"]):
            rec[ds] = c["verdict"] if c else ""
        rec["pooled"] = r["pooled"]["verdict"] if r["pooled"] else ""
        rec["overall"] = r["overall"]
        rec["summary"] = r["sentence"]
        recs.append(rec)
    return pd.DataFrame(recs)


def build_report(layout: dict, dest, config: dict, *, top_n: int = TOP_N,
                 snakemake_version: str | None = None, threads: int = 1) -> dict:
    """Render results/report.html from the result files in ``layout``; returns a summary.
    ``snakemake_version``: the version of the Snakemake that ran the workflow (the report
    rule's environment need not have Snakemake); ``threads``: plots encoded side by side."""
    ds_cfg = config.get("datasets", {})
    max_mb = float((config.get("report") or {}).get("max_mb", MAX_MB))
    images = Images(base=Path(dest).parent, workers=threads)
    datasets = [
        _dataset_section(name, d, ds_cfg.get(name, {}), top_n, images)
        for name, d in sorted(layout.get("datasets", {}).items())
    ]
    part = _claims_part(layout, images)
    software = collect_software(datasets, software_versions(), snakemake_version)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prepost.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["img"] = images
    template = env.get_template("report.html.j2")

    def render(inlined: dict) -> str:
        return template.render(
            datasets=datasets, **part, software=software, images=inlined,
            config_yaml=yaml.safe_dump(config, sort_keys=True, default_flow_style=False),
            methods=methods_text(config, datasets, software),
        )

    # the page without its plots, then the plots that fit in what the budget leaves
    images.link_all()
    bare = len(render({"linked": 0, "images": 0}).encode())
    inlined = images.resolve(max(0, int(max_mb * 1e6) - bare - 20_000))
    html = render(inlined)
    files.write_text(html, dest)
    return {"datasets": len(datasets), "claims": len(part["claims"]["rows"]) if part["claims"] else 0,
            "meta": len(part["meta"]["rows"]) if part["meta"] else 0, "bytes": len(html.encode()),
            **inlined}
