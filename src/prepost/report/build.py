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
import platform
from io import BytesIO
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from prepost import files
from prepost.vocabulary import (
    ALPHA, CONTRADICTED, NOT_TESTABLE, OPPOSITE_NS, REPRODUCED, SAME_NS,
)

SOFTWARE = ["snakemake", "pandas", "numpy", "scipy", "pydeseq2", "gseapy", "matplotlib", "jinja2"]
TOP_N = 20
IMG_MAX_W = 1000
DE_COLUMNS = ["gene", "mean_expr", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
GSEA_COLUMNS = ["collection", "set", "size", "nes", "pvalue", "padj", "leading_edge"]
CLAIM_COLUMNS = ["claim", "dataset", "contrast", "feature", "statement", "direction_expected", "effect",
                 "ci_low", "ci_high", "pvalue", "claim_padj", "n_pairs", "verdict", "reason"]
META_COLUMNS = ["claim", "feature", "statement", "contrast", "direction_expected", "k", "datasets", "effect",
                "ci_low", "ci_high", "pvalue", "i2", "q_pvalue", "verdict", "reason"]
VERDICT_CLASS = {REPRODUCED: "v-rep", SAME_NS: "v-same", CONTRADICTED: "v-contra",
                 OPPOSITE_NS: "v-opp", NOT_TESTABLE: "v-nt"}


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


def _img(path) -> str | None:
    """A PNG as a data URI (None when the file is not there).

    Re-encoded for the page: at most IMG_MAX_W pixels wide and a 256-colour palette (median cut,
    no dithering: deterministic), which makes the plots ~3x smaller with no visible change."""
    if not path or not Path(path).exists():
        return None
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > IMG_MAX_W:
            im = im.resize((IMG_MAX_W, round(im.height * IMG_MAX_W / im.width)), Image.Resampling.LANCZOS)
        pal = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = BytesIO()
    pal.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


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


def _diagnostics(paths: dict, fit: dict, values) -> dict:
    """A contrast's model diagnostics subsection: the p-value histogram, the dispersion
    (counts) or residual SD (arrays) plot and, when the fit has hidden factors
    (unwanted_factors k > 0), PC1/PC2 coloured by each factor and a sentence naming them."""
    model_title = "Dispersion estimates" if values == "counts" else "Residual SD vs mean (SA)"
    hidden = fit.get("unwanted_factors") or {}
    wanted = [("p-value histogram", "pvalues"), (model_title, "model")]
    if hidden.get("k"):
        wanted.append(("PC1/PC2 by hidden factor", "factors"))
    plots = [(t, u) for t, u in ((t, _img(paths.get(k))) for t, k in wanted) if u]
    text = (f"{hidden['k']} hidden factor{'s' if hidden['k'] != 1 else ''} "
            f"({', '.join(hidden.get('factors', []))}) estimated by {hidden.get('method')} on "
            f"{hidden.get('genes_used')} genes and added to the design" if hidden.get("k") else "")
    return {"diagnostics": plots, "hidden_text": text}


def _dataset_section(name: str, d: dict, cfg: dict, top_n: int) -> dict:
    summary = json.loads(Path(d["summary"]).read_text()) if d.get("summary") else {}
    sec = {"name": name, "description": cfg.get("description", ""), "kind": cfg.get("kind", ""),
           "accession": cfg.get("accession", summary.get("accession", "")),
           "values": summary.get("values", ""), "genes": summary.get("genes", ""),
           "samples": summary.get("samples", ""), "pairs": summary.get("pairs", ""),
           "dropped": summary.get("dropped", {})}
    if d.get("pairs"):
        ledger = _read(d["pairs"], "pair ledger", dtype=str)
        counts = ledger.groupby(["status", "reason"], dropna=False).size().reset_index(name="samples")
        sec["ledger"] = _rows(counts, ["status", "reason", "samples"])
    if d.get("samples"):
        sheet = _read(d["samples"], "sample sheet", dtype=str)
        if "response" in sheet:
            paired = sheet[sheet["in_pair"].astype(str) == "True"] if "in_pair" in sheet else sheet
            resp = paired.drop_duplicates("patient")["response"].fillna("unknown").value_counts()
            sec["response"] = ", ".join(f"{k}: {v}" for k, v in sorted(resp.items()))
    qc = d.get("qc") or {}
    sec["qc_plots"] = [(t, u) for t, u in ((t, _img(p)) for t, p in qc.get("plots", {}).items()) if u]
    if qc.get("pair_identity"):
        ident = _read(qc["pair_identity"], "pair identity table", dtype={"post_sample": str, "patient": str})
        sec["pair_identity"] = _rows(ident, list(ident.columns))
        sec["identity_flags"] = int(ident["flag"].astype(str).str.lower().eq("true").sum()) if len(ident) else 0
        sec["identity_basis"] = str(ident["basis"].iloc[0]) if len(ident) and "basis" in ident else ""
    if qc.get("samples_qc"):
        sq = _read(qc["samples_qc"], "sample QC table", dtype={"sample": str, "patient": str})
        sec["outliers"] = sq.loc[sq["outlier"].astype(str).str.lower().eq("true"), "sample"].tolist()
        sec["outlier_rule"] = str(sq["rule"].iloc[0]) if len(sq) else ""
        sec["samples_qc"] = _rows(sq, [c for c in sq.columns if c != "rule"])
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
            "table": _rows(ex, list(ex.columns)) if len(ex) else None,
        }
    if qc.get("impact"):
        imp = _read(qc["impact"], "QC impact table")
        sec["qc_impact"] = _rows(imp, list(imp.columns))
    if qc.get("pc_associations"):
        pa = _read(qc["pc_associations"], "PC association table")
        if len(pa):
            pa = pa.sort_values("pvalue").head(15)
            sec["pc_associations"] = _rows(pa, list(pa.columns))
    sec["contrasts"] = []
    for c, paths in (d.get("contrasts") or {}).items():  # the configured order
        entry = {"name": c, "plots": []}
        if paths.get("fit"):
            entry.update(_fit_entry(_read_fit(paths["fit"], f"DE fit record ({name}, {c})")))
        if paths.get("table"):
            de = _read(paths["table"], f"DE table ({name}, {c})")
            entry["n_tested"] = int(de["pvalue"].notna().sum()) if "pvalue" in de else len(de)
            entry["n_sig"] = int((de["padj"] < ALPHA).sum()) if "padj" in de else 0
            top = de.sort_values(["padj", "pvalue"], kind="mergesort", na_position="last").head(top_n)
            entry["top"] = _rows(top, DE_COLUMNS)
        for title, key in (("Volcano", "volcano"), ("MA", "ma"), ("Slopes", "slopes")):
            uri = _img(paths.get(key))
            if uri:
                entry["plots"].append((title, uri))
        entry.update(_diagnostics(paths, entry.get("fit") or {}, summary.get("values")))
        if paths.get("gsea"):
            g = _read(paths["gsea"], f"GSEA table ({name}, {c})")
            g = g.sort_values(["padj", "pvalue"], kind="mergesort", na_position="last").head(top_n)
            entry["gsea"] = _rows(g, GSEA_COLUMNS)
        entry["dotplot"] = _img(paths.get("dotplot"))
        if paths.get("genesets_found"):
            found = _read(paths["genesets_found"], f"gene-set coverage ({name}, {c})")
            if "collection_status" in found:
                st = found.drop_duplicates("collection")
                entry["skipped"] = [f"{a}: {b}" for a, b in zip(st["collection"], st["collection_status"])
                                    if str(b) != "tested"]
        sec["contrasts"].append(entry)
    sec["set_slopes"] = _img(d.get("set_slopes"))
    sec.update(_panel_section(d, summary))
    if d.get("manifest"):
        m = _read(d["manifest"], "download manifest", dtype=str)
        sec["manifest"] = _rows(m, ["file", "url", "bytes", "sha256", "status"])
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


def methods_text(config: dict, datasets: list[dict], versions: dict) -> str:
    """A methods paragraph from what was run (counts, models, versions, thresholds)."""
    n_ds = len(datasets)
    pairs = sum(int(d["pairs"]) for d in datasets if str(d.get("pairs", "")).isdigit())
    counts = [d["name"] for d in datasets if d.get("values") == "counts"]
    arrays = [d["name"] for d in datasets if d.get("values") == "log2"]
    enr = config.get("enrichment", {})
    cs = config.get("claims_settings", {})
    parts = [
        f"We analysed {n_ds} paired pre-/post-treatment tumour expression dataset"
        f"{'s' if n_ds != 1 else ''} ({pairs} patients with both a pre- and a post-treatment sample"
        f"{' in total' if n_ds > 1 else ''}) with prepost (Snakemake {versions.get('snakemake')}, "
        f"Python {versions.get('python')}).",
    ]
    if counts:
        parts.append(
            f"RNA-seq counts ({len(counts)} dataset{'s' if len(counts) != 1 else ''}) were tested with "
            "DESeq2's negative-binomial Wald test (median-of-ratios size factors, gene-wise "
            "dispersions shrunk towards a fitted dispersion trend, Cook's outlier handling, "
            "independent filtering at alpha 0.1) on prepost.de.nb (a vectorised "
            "re-implementation of DESeq2 1.38) or pydeseq2, as listed per contrast."
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
    parts.extend(_panel_sentences(datasets))
    parts.append(
        "P-values were adjusted by Benjamini-Hochberg. Sample QC used DESeq2's blind variance-"
        "stabilising transformation (counts) or log2 values (arrays): PCA of the 500 most "
        "variable genes, a pre/post pair-identity check (gene-centred Pearson correlation) and "
        "outlier flags (median inter-sample correlation below Q1 - 3 IQR)."
    )
    if enr:
        parts.append(
            f"Gene-set enrichment used gseapy {versions.get('gseapy')} prerank on the paired-model "
            f"statistic (method {enr.get('method')}, {enr.get('permutations')} permutations, seed "
            f"{enr.get('seed')}, set sizes {enr.get('min_size')}-{enr.get('max_size')}) and "
            f"over-representation of genes with padj < {enr.get('ora_alpha')}."
        )
    if cs:
        adj = "across the claim tests of each dataset" if cs.get("adjust") == "claims" else "genome-wide"
        parts.append(
            f"Published claims were counted as reproduced when the effect had the expected "
            f"direction with adjusted p < {cs.get('alpha')} (BH {adj})."
        )
    return " ".join(parts)


def build_report(layout: dict, dest, config: dict, *, top_n: int = TOP_N) -> dict:
    """Render results/report.html from the result files in ``layout``; returns a summary."""
    ds_cfg = config.get("datasets", {})
    datasets = [
        _dataset_section(name, d, ds_cfg.get(name, {}), top_n)
        for name, d in sorted(layout.get("datasets", {}).items())
    ]
    claims = None
    if layout.get("claims"):
        cl = _read(layout["claims"], "claims table", dtype={"claim": str})
        claims = _rows(cl, CLAIM_COLUMNS)
        claims["classes"] = [VERDICT_CLASS.get(v, "") for v in cl["verdict"].astype(str)]
        claims["tally"] = sorted(cl["verdict"].astype(str).value_counts().items())
    meta = None
    if layout.get("claims_meta"):
        m = _read(layout["claims_meta"], "meta-analysis table", dtype={"claim": str})
        meta = _rows(m, META_COLUMNS)
        meta["classes"] = [VERDICT_CLASS.get(v, "") for v in m["verdict"].astype(str)]
        forest = layout.get("forest") or {}
        uris = ((c, _img(forest.get(c))) for c in dict.fromkeys(m["claim"].astype(str)))
        meta["forest"] = [(c, u) for c, u in uris if u]
    versions = software_versions()
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prepost.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    html = env.get_template("report.html.j2").render(
        datasets=datasets,
        claims=claims,
        meta=meta,
        versions=versions,
        config_yaml=yaml.safe_dump(config, sort_keys=True, default_flow_style=False),
        methods=methods_text(config, datasets, versions),
    )
    files.write_text(html, dest)
    return {"datasets": len(datasets), "claims": len(claims["rows"]) if claims else 0,
            "meta": len(meta["rows"]) if meta else 0, "bytes": len(html.encode())}
