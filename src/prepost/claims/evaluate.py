"""Check published findings against each dataset's DE results, claim by claim.

A claim names genes, a contrast and an expected direction. For a pre-specified finding the
genome-wide FDR over ~20,000 genes is needlessly strict, so by default the claim tests of a
dataset are BH-adjusted among themselves (``adjust="claims"``); ``adjust="genome"`` uses the DE
table's own padj instead. Both adjusted values are reported.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost import files
from prepost.claims.catalogue import claim_rows, load_claims
from prepost.claims.effects import dataset_effects
from prepost.claims.published import gene_evidence_absent, read_published, read_universe, set_evidence
from prepost.claims.verdicts import verdicts
from prepost.enrich.genesets import read_gmt
from prepost.prepare.prepared import read_prepared
from prepost.stats import bh_adjust as bh, control_genes_of
from prepost.vocabulary import ALPHA, NS_UNREPORTED, PAIRED_GROUP

COLUMNS = [
    "claim", "dataset", "contrast", "kind", "feature", "statement", "citation", "doi",
    "published_p", "direction_expected", "effect", "effect_unit", "effect_se", "ci_low",
    "ci_high", "pvalue", "padj", "claim_padj", "n_pairs", "n_moved", "nes", "nes_padj",
    "direction_observed", "verdict", "reason", "smd", "smd_se",
]


def _gene_evidence(row, de: pd.DataFrame | None, absent: str = "gene not in the expression data") -> dict:
    if de is None:
        return {"reason": f"contrast {row.contrast} not run for this dataset"}
    hit = de[de["gene"] == row.feature]
    if hit.empty:
        return {"reason": absent}
    g = hit.iloc[0]
    if not np.isfinite(g["pvalue"]):
        return {"reason": "gene not tested (no p-value: all-zero or outlier counts)"}
    df = g.get("df_total", np.inf)
    q = D.t_ppf(0.975, df) if np.isfinite(df) else D.norm_ppf(0.975)
    out = {
        "effect": g["log2fc"], "effect_unit": "log2fc", "effect_se": g["lfc_se"],
        "ci_low": g["log2fc"] - q * g["lfc_se"], "ci_high": g["log2fc"] + q * g["lfc_se"],
        "pvalue": g["pvalue"], "padj": g["padj"], "reason": "",
    }
    if "n_pairs" in g:
        moved = g["n_down"] if row.direction_expected == "down" else g["n_up"]
        out.update(n_pairs=g["n_pairs"], n_moved=moved)
    return out


def _skipped_collection(row, ev: dict, coverage: pd.DataFrame | None) -> dict:
    """A set claim without evidence because its collection was skipped (a targeted panel):
    the reason names the collection, why, and the set's own coverage."""
    if not ev.get("reason") or coverage is None or "collection_status" not in coverage:
        return ev
    hit = coverage[coverage["set"] == row.feature]
    if hit.empty or str(hit.iloc[0]["collection_status"]) == "tested":
        return ev
    h = hit.iloc[0]
    return {**ev, "reason": f"gene-set collection {h['collection']} {h['collection_status']}; "
                            f"this set: {int(h['n_found'])} of {int(h['n_genes'])} genes measured"}


def _set_evidence(row, gsea: pd.DataFrame | None, set_tests: pd.DataFrame | None) -> dict:
    nes = {}
    if gsea is not None:
        hit = gsea[gsea["set"] == row.feature]
        if not hit.empty:
            nes = {"nes": hit.iloc[0]["nes"], "nes_padj": hit.iloc[0]["padj"]}
    group = PAIRED_GROUP.get(row.contrast)
    if group is not None:
        if set_tests is None:
            return {"reason": "no paired set scores for this dataset"}
        hit = set_tests[(set_tests["set"] == row.feature) & (set_tests["group"] == group)]
        if hit.empty:
            return {"reason": f"gene set not scored (absent, too few genes found, or no {group} pairs)"}
        t = hit.iloc[0]
        n = t["n_pairs"]
        se = t["sd_diff"] / np.sqrt(n)
        q = D.t_ppf(0.975, n - 1)
        moved = t["n_down"] if row.direction_expected == "down" else t["n_up"]
        return {
            "effect": t["mean_diff"], "effect_unit": "set score change (mean z), post - pre",
            "effect_se": se, "ci_low": t["mean_diff"] - q * se, "ci_high": t["mean_diff"] + q * se,
            "pvalue": t["p_ttest"], "padj": t["padj_ttest"], "n_pairs": n, "n_moved": moved,
            "reason": "", **nes,
        }
    if gsea is None:
        return {"reason": f"contrast {row.contrast} not run for this dataset"}
    if not nes:
        return {"reason": "gene set not tested (absent or too few genes found)"}
    hit = gsea[gsea["set"] == row.feature].iloc[0]
    return {"effect": hit["nes"], "effect_unit": "NES (prerank)", "pvalue": hit["pvalue"],
            "padj": hit["padj"], "reason": "", **nes}


def evaluate_dataset(
    rows: pd.DataFrame,
    dataset: str,
    de: dict[str, pd.DataFrame],
    *,
    gsea: dict[str, pd.DataFrame] | None = None,
    set_tests: pd.DataFrame | None = None,
    treatment: list[str] | None = None,
    alpha: float = ALPHA,
    adjust: str = "claims",
    effects: pd.DataFrame | None = None,
    published: dict | None = None,
    coverage: pd.DataFrame | None = None,
    universe: set[str] | None = None,
    gene_sets: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Verdicts of every claim row in one dataset.

    ``de`` and ``gsea`` map contrast -> table; ``set_tests`` is the dataset's paired set-score
    table; ``treatment`` the dataset's treatments (a claim about another treatment is not
    testable there). ``effects`` (contrast, feature, smd, smd_se) gives the standardised
    effect of prepost.claims.effects for testable rows. ``published``: the dataset's config when it is a
    published DE table (``de`` then holds its one contrast).
    Claim rows are few, so they are looked up one by one. ``coverage``: the dataset's
    genesets_found table (set, n_found, n_genes, collection, collection_status); a set claim
    whose collection was skipped for low coverage says so. ``universe`` (a published table's
    assay gene list) and ``gene_sets`` (set -> members) let a published table judge omitted
    genes and gene-set claims (prepost.claims.published.set_evidence).
    """
    gsea = gsea or {}
    records = []
    for row in rows.itertuples(index=False):
        wanted = set(row.treatment)
        if wanted and treatment and not wanted & set(treatment):
            ev = {"reason": f"wrong treatment: the finding is about {', '.join(sorted(wanted))}; "
                            f"this dataset is {', '.join(treatment)}"}
        elif published is not None and row.contrast not in de:
            ev = {"reason": f"contrast {row.contrast} not in the published table (it reports "
                            f"{published['contrast']})"}
        elif published is not None and row.kind != "gene_change":
            if gene_sets is None or row.feature not in gene_sets:
                ev = {"reason": "gene set not in the configured collections"}
            else:
                ev = set_evidence(gene_sets[row.feature], de[row.contrast], published, universe,
                                  row.direction_expected)
        elif published is not None:
            table = de[row.contrast]
            if (table["gene"] == row.feature).any():
                ev = _gene_evidence(row, table)
            else:
                ev = gene_evidence_absent(row.feature, published, universe)
        elif row.kind == "gene_change":
            ev = _gene_evidence(row, de.get(row.contrast))
        else:
            ev = _set_evidence(row, gsea.get(row.contrast), set_tests)
            ev = _skipped_collection(row, ev, coverage)
        records.append(ev)
    ev = pd.DataFrame(records, index=rows.index)
    out = rows.drop(columns="treatment").copy()
    out.insert(1, "dataset", dataset)
    for col in COLUMNS:
        if col not in out.columns:
            out[col] = ev[col] if col in ev.columns else np.nan
    out["effect_unit"] = out["effect_unit"].fillna("")
    out["claim_padj"] = bh(out["pvalue"].to_numpy(dtype=float))
    q = out["claim_padj"] if adjust == "claims" else out["padj"]
    significant = (q.astype(float) < alpha).to_numpy()
    unreported = (ev["verdict"] == NS_UNREPORTED).to_numpy() if "verdict" in ev else np.zeros(len(out), bool)
    testable = (out["reason"] == "").to_numpy() & ~unreported
    out["direction_observed"], out["verdict"] = verdicts(
        out["effect"], out["direction_expected"], significant, testable
    )
    out.loc[unreported, "verdict"] = NS_UNREPORTED
    out.loc[unreported, "reason"] = ev.loc[unreported, "note"] if "note" in ev else ""
    out.loc[~testable, "direction_observed"] = ""
    if adjust == "genome":
        filtered = testable & out["padj"].isna().to_numpy()
        out.loc[filtered, "reason"] = "padj not computed (independent filtering)"
    if effects is not None and len(effects):
        eff = effects.drop_duplicates(["contrast", "feature"]).set_index(["contrast", "feature"])
        key = pd.MultiIndex.from_arrays([out["contrast"], out["feature"]])
        for col in ("smd", "smd_se"):
            out[col] = np.where(testable, eff[col].reindex(key).to_numpy(dtype=float), np.nan)
    return out[COLUMNS]


def evaluate(
    claims: list[dict],
    de_tables: dict[str, dict[str, pd.DataFrame]],
    *,
    gsea_tables: dict[str, dict[str, pd.DataFrame]] | None = None,
    set_tests: dict[str, pd.DataFrame] | None = None,
    treatments: dict[str, list[str]] | None = None,
    alpha: float = ALPHA,
    adjust: str = "claims",
    effects: dict[str, pd.DataFrame] | None = None,
    published: dict[str, dict] | None = None,
    coverage: dict[str, pd.DataFrame] | None = None,
    universes: dict[str, set[str]] | None = None,
    gene_sets: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The claims table across datasets; the table arguments map dataset -> (contrast ->) table;
    ``effects`` and ``published`` map dataset -> as in :func:`evaluate_dataset`."""
    rows = claim_rows(claims)
    gsea_tables, set_tests, treatments = gsea_tables or {}, set_tests or {}, treatments or {}
    effects, published = effects or {}, published or {}
    parts = [
        evaluate_dataset(
            rows, ds, de_tables[ds], gsea=gsea_tables.get(ds), set_tests=set_tests.get(ds),
            treatment=treatments.get(ds), alpha=alpha, adjust=adjust, effects=effects.get(ds),
            published=published.get(ds), coverage=(coverage or {}).get(ds),
            universe=(universes or {}).get(ds), gene_sets=gene_sets,
        )
        for ds in sorted(de_tables)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def run_claims(
    claims_path, schema_path, tables: dict[str, dict], dest, *, treatments=None, alpha=ALPHA,
    adjust="claims", gmts=(),
) -> pd.DataFrame:
    """Read the catalogue and each dataset's tables, write the claims table.

    ``tables``: dataset -> {"de": {contrast: path}, "gsea": {contrast: path}, "set_tests": path,
    "coverage": path (genesets_found.tsv, optional), and for the standardised effects
    "expression", "samples", "summary", "set_scores": path};
    a published DE table: dataset -> {"published": path, "config": the dataset's config,
    "universe": path (optional)}. ``gmts``: the GMT files whose sets a published table's
    gene-set claims are judged on.
    """
    claims = load_claims(claims_path, schema_path)
    rows = claim_rows(claims)
    de, effects, published, universes = {}, {}, {}, {}
    gene_sets = None
    if gmts:
        long = pd.concat([read_gmt(g) for g in gmts], ignore_index=True)
        gene_sets = long.groupby("set", sort=False)["gene"].apply(list).to_dict()
    for ds, t in tables.items():
        if t.get("universe"):
            universes[ds] = read_universe(t["universe"])
        if "published" in t:
            table = read_published(t["published"], t["config"], ds)
            de[ds] = {t["config"]["contrast"]: table}
            effects[ds] = table.assign(contrast=t["config"]["contrast"]).rename(columns={"gene": "feature"})
            published[ds] = t["config"]
            continue
        de[ds] = {c: files.read_tsv(p) for c, p in t["de"].items()}
        if t.get("expression"):
            data, sheet, summary = read_prepared(t["expression"], t["samples"], t["summary"])
            scores = files.read_tsv(t["set_scores"], dtype={"sample": str}) if t.get("set_scores") else None
            effects[ds] = dataset_effects(
                rows[rows["contrast"].isin(list(t["de"]))], data, summary["values"], sheet, ds, scores,
                control_genes=control_genes_of(summary),
            )
    gsea = {ds: {c: files.read_tsv(p) for c, p in t.get("gsea", {}).items()} for ds, t in tables.items()}
    sets = {ds: files.read_tsv(t["set_tests"]) for ds, t in tables.items() if t.get("set_tests")}
    coverage = {ds: files.read_tsv(t["coverage"]) for ds, t in tables.items() if t.get("coverage")}
    table = evaluate(claims, de, gsea_tables=gsea, set_tests=sets, treatments=treatments,
                     alpha=alpha, adjust=adjust, effects=effects, published=published,
                     coverage=coverage, universes=universes, gene_sets=gene_sets)
    files.write_tsv(table, dest)
    return table
