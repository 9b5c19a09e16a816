"""Check published findings against each dataset's DE results, claim by claim.

A claim names genes, a contrast and an expected direction. For a pre-specified finding the
genome-wide FDR over ~20,000 genes is needlessly strict, so by default the claim tests of a
dataset are BH-adjusted among themselves (``adjust="claims"``); ``adjust="genome"`` uses the DE
table's own padj instead. Both adjusted values are reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

REPRODUCED = "reproduced"
SAME_NS = "same direction, not significant"
CONTRADICTED = "contradicted"
OPPOSITE_NS = "opposite direction, not significant"
NOT_TESTABLE = "not testable"

COLUMNS = [
    "claim", "dataset", "contrast", "gene", "statement", "citation", "doi", "published_p",
    "direction_expected", "log2fc", "lfc_se", "ci_low", "ci_high", "pvalue", "padj",
    "claim_padj", "direction_observed", "verdict", "reason",
]


class ClaimsError(ValueError):
    """A claims catalogue that does not follow the schema."""


def load_claims(path: str | Path, schema: str | Path | None = None) -> list[dict]:
    """Read and, when a schema path is given, validate the claims catalogue."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ClaimsError(f"{path}: not valid YAML ({err})") from None
    if schema is not None:
        import jsonschema

        validator = jsonschema.Draft202012Validator(yaml.safe_load(Path(schema).read_text()))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.path) or "(top level)"
            raise ClaimsError(f"{path}: key {where}: {err.message}")
    ids = [c["id"] for c in doc["claims"]]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise ClaimsError(f"{path}: duplicated claim id(s) {dups}")
    return doc["claims"]


def short_citation(cit: dict) -> str:
    first = cit["authors"].split(",")[0].strip()
    return f"{first} et al. {cit['year']}, {cit['journal']}"


def claim_rows(claims: list[dict]) -> pd.DataFrame:
    """One row per claim x gene."""
    rows = [
        {
            "claim": c["id"],
            "contrast": c["contrast"],
            "gene": g,
            "statement": c["statement"],
            "citation": short_citation(c["citation"]),
            "doi": c["citation"]["doi"],
            "published_p": c.get("published_p", np.nan),
            "direction_expected": c["direction"],
        }
        for c in claims
        for g in c["genes"]
    ]
    return pd.DataFrame(rows)


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and does not count as a test."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = ok.sum()
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def evaluate_dataset(
    rows: pd.DataFrame,
    dataset: str,
    de: dict[str, pd.DataFrame],
    *,
    alpha: float = 0.05,
    adjust: str = "claims",
) -> pd.DataFrame:
    """Verdicts of every claim row in one dataset; ``de`` maps contrast -> DE table."""
    out = rows.copy()
    out.insert(1, "dataset", dataset)
    for col in ["log2fc", "lfc_se", "pvalue", "padj"]:
        out[col] = np.nan
    out["reason"] = ""
    for contrast, table in de.items():
        idx = table.drop_duplicates("gene").set_index("gene")
        sel = out["contrast"] == contrast
        genes = out.loc[sel, "gene"]
        for col in ["log2fc", "lfc_se", "pvalue", "padj"]:
            out.loc[sel, col] = genes.map(idx[col]).to_numpy(dtype=float)
        absent = sel & ~out["gene"].isin(idx.index)
        out.loc[absent, "reason"] = "gene not in the expression data"
        untested = sel & out["gene"].isin(idx.index) & out["pvalue"].isna()
        out.loc[untested, "reason"] = "gene not tested (no p-value: all-zero or outlier counts)"
    missing = ~out["contrast"].isin(list(de))
    out.loc[missing, "reason"] = "contrast " + out.loc[missing, "contrast"] + " not run for this dataset"

    z = stats.norm.ppf(0.975)
    out["ci_low"] = out["log2fc"] - z * out["lfc_se"]
    out["ci_high"] = out["log2fc"] + z * out["lfc_se"]
    out["claim_padj"] = bh(out["pvalue"].to_numpy())
    q = out["claim_padj"] if adjust == "claims" else out["padj"]
    significant = (q < alpha).to_numpy()
    testable = (out["reason"] == "").to_numpy()
    observed = np.sign(out["log2fc"].to_numpy(dtype=float))
    out["direction_observed"] = np.select([observed > 0, observed < 0], ["up", "down"], "none")
    out.loc[~testable, "direction_observed"] = ""
    same = (out["direction_observed"] == out["direction_expected"]).to_numpy()
    out["verdict"] = np.select(
        [~testable, same & significant, same, significant],
        [NOT_TESTABLE, REPRODUCED, SAME_NS, CONTRADICTED],
        OPPOSITE_NS,
    )
    if adjust == "genome":
        filtered = testable & out["padj"].isna().to_numpy()
        out.loc[filtered, "reason"] = "padj not computed (independent filtering)"
    return out[COLUMNS]


def evaluate(
    claims: list[dict],
    de_tables: dict[str, dict[str, pd.DataFrame]],
    *,
    alpha: float = 0.05,
    adjust: str = "claims",
) -> pd.DataFrame:
    """The claims table across datasets; ``de_tables`` maps dataset -> contrast -> DE table."""
    rows = claim_rows(claims)
    parts = [
        evaluate_dataset(rows, ds, de_tables[ds], alpha=alpha, adjust=adjust)
        for ds in sorted(de_tables)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def run_claims(
    claims_path, schema_path, tables: dict[str, dict[str, str]], dest, *, alpha=0.05, adjust="claims"
) -> pd.DataFrame:
    """Read the catalogue and the DE tables, write the claims table."""
    from prepost import io

    claims = load_claims(claims_path, schema_path)
    de = {ds: {c: io.read_tsv(p) for c, p in cs.items()} for ds, cs in tables.items()}
    table = evaluate(claims, de, alpha=alpha, adjust=adjust)
    io.write_tsv(table, dest)
    return table
