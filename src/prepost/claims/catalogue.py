"""The claims catalogue (config/claims.yaml): read, validated against its schema, one row per
claim x feature."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import yaml

from prepost.io.yamlio import ConfigError, load_strict

if TYPE_CHECKING:  # pandas is imported where used: the Snakefile reads this module at parse time
    import pandas as pd


class ClaimsError(ValueError):
    """A claims catalogue that does not follow the schema."""


def genes_of_interest(dataset: dict, claims) -> list[str]:
    """The dataset's configured genes of interest, else every gene named in the claims
    (``claims``: the catalogue's path, or its claims as load_claims returns them)."""
    if dataset.get("genes_of_interest"):
        return list(dataset["genes_of_interest"])
    if isinstance(claims, (str, Path)):
        claims = load_claims(claims)
    seen: dict[str, None] = {}
    for claim in claims:
        for gene in claim.get("genes", []):
            seen.setdefault(gene, None)
    return list(seen)


def load_claims(path: str | Path, schema: str | Path | None = None) -> list[dict]:
    """Read and, when a schema path is given, validate the claims catalogue."""
    path = Path(path)
    try:
        doc = load_strict(path)  # duplicate keys are an error naming both lines
    except ConfigError as err:
        raise ClaimsError(str(err)) from None
    if schema is not None:
        validator = jsonschema.Draft202012Validator(yaml.safe_load(Path(schema).read_text()))
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.path) or "(top level)"
            parts = list(err.path)
            claim = ""
            if len(parts) > 1 and parts[0] == "claims" and isinstance(doc["claims"][parts[1]], dict):
                claim = f" (claim {doc['claims'][parts[1]].get('id', parts[1])!r})"
            raise ClaimsError(f"{path}: key {where}{claim}: {err.message}")
    ids = [c["id"] for c in doc["claims"]]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise ClaimsError(f"{path}: duplicated claim id(s) {dups}")
    return doc["claims"]


def short_citation(cit: dict) -> str:
    if not cit.get("authors"):
        return cit.get("note") or cit.get("url", "")
    first = cit["authors"].split(",")[0].strip()
    return f"{first} et al. {cit['year']}, {cit['journal']}"


def claim_rows(claims: list[dict]) -> pd.DataFrame:
    """One row per claim x feature (each gene of a gene claim; the set of a set claim)."""
    import pandas as pd

    rows = [
        {
            "claim": c["id"],
            "contrast": c["contrast"],
            "kind": c["kind"],
            "feature": f,
            "statement": c["statement"],
            "citation": short_citation(c["citation"]),
            "doi": c["citation"].get("doi") or c["citation"].get("url", ""),
            "published_p": c.get("published_p", float("nan")),
            "direction_expected": c["direction"],
            "treatment": tuple(c.get("treatment", ())),
        }
        for c in claims
        for f in (c["genes"] if c["kind"] == "gene_change" else [c["gene_set"]])
    ]
    return pd.DataFrame(rows)
