"""Gene-set collections: read/write GMT and match their identifiers to the expression data.

A collection is a long DataFrame with columns ``set``, ``description``, ``gene`` (one row per
set x gene, set order as in the file). The commonest silent failure of GSEA tools is a
collection whose identifiers do not match the data (Ensembl ids vs symbols, mouse vs human,
outdated symbols): every set then looks "not enriched". ``harmonise`` reports per set how many
genes were found, warns about poorly covered sets and raises when the collection as a whole
barely overlaps the data.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from prepost import files

COLUMNS = ["set", "description", "gene"]


class GeneSetError(ValueError):
    """A GMT file or an alias table that cannot be read as documented."""


class OverlapError(GeneSetError):
    """A collection whose identifiers barely match the expression data."""


class LowOverlapWarning(UserWarning):
    """Some sets of a collection have few of their genes in the data."""


def read_gmt(path: str | os.PathLike) -> pd.DataFrame:
    """Parse a GMT file (name TAB description TAB gene TAB gene ...) into a long table.

    Blank lines are skipped; gene ids are stripped of whitespace and de-duplicated within a
    set (first occurrence kept). Errors name the file and the line.
    """
    path = Path(path)
    if not path.exists():
        raise GeneSetError(f"{path}: gene-set file not found")
    text = path.read_text(encoding="utf-8-sig")
    names: dict[str, int] = {}
    rows: list[tuple[str, str, list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 2:
            raise GeneSetError(
                f"{path}, line {lineno}: expected 'name<TAB>description<TAB>genes...', "
                f"found {len(fields)} tab-separated field(s): {line[:80]!r}"
            )
        name = fields[0].strip()
        if not name:
            raise GeneSetError(f"{path}, line {lineno}: empty gene-set name")
        if name in names:
            raise GeneSetError(
                f"{path}, line {lineno}: gene set {name!r} already defined on line {names[name]}"
            )
        names[name] = lineno
        genes = [g.strip() for g in fields[2:] if g.strip()]
        if not genes:
            raise GeneSetError(f"{path}, line {lineno}: gene set {name!r} has no genes")
        rows.append((name, fields[1].strip(), genes))
    if not rows:
        raise GeneSetError(f"{path}: no gene sets (empty GMT file)")
    df = pd.DataFrame(rows, columns=COLUMNS).explode("gene", ignore_index=True)
    return df.drop_duplicates(["set", "gene"], ignore_index=True)


def write_gmt(sets: pd.DataFrame, dest: str | os.PathLike) -> None:
    """Write a long set table as GMT (set order and gene order kept), atomically."""
    _check_table(sets)
    bad = sets[["set", "description", "gene"]].astype(str).apply(lambda c: c.str.contains("[\t\n\r]"))
    if bad.any().any():
        raise GeneSetError(f"{dest}: set names, descriptions and genes may not contain tabs or newlines")
    order = pd.unique(sets["set"])
    grouped = sets.groupby("set", sort=False)
    lines = [
        "\t".join([name, str(g["description"].iloc[0]), *g["gene"].astype(str)])
        for name, g in ((n, grouped.get_group(n)) for n in order)
    ]
    with files.atomic_path(dest) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def from_dict(sets: dict[str, Iterable[str]], description: str = "") -> pd.DataFrame:
    """Long table from {set: genes}, e.g. for ad-hoc sets in tests or claims."""
    rows = [(k, description, list(v)) for k, v in sets.items()]
    return pd.DataFrame(rows, columns=COLUMNS).explode("gene", ignore_index=True).dropna(subset=["gene"])


def to_dict(sets: pd.DataFrame) -> dict[str, list[str]]:
    """{set: [genes]} in set order, as gseapy takes it."""
    _check_table(sets)
    return {k: list(v) for k, v in sets.groupby("set", sort=False)["gene"]}


def _check_table(sets: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in sets.columns]
    if missing:
        raise GeneSetError(f"gene-set table lacks column(s) {missing} (expected {COLUMNS})")


def read_alias_table(path: str | os.PathLike) -> pd.DataFrame:
    """Alias -> current symbol table from a TSV.

    Accepts either two columns ``alias`` and ``symbol`` (one pair a line), or HGNC's custom
    download with ``Approved symbol`` plus ``Previous symbols`` and/or ``Alias symbols``
    (comma-separated lists).
    """
    df = files.read_tsv(path, dtype=str).fillna("")
    if {"alias", "symbol"} <= set(df.columns):
        return alias_pairs(df[["alias", "symbol"]])
    if "Approved symbol" in df.columns:
        cols = [c for c in ("Previous symbols", "Alias symbols") if c in df.columns]
        if not cols:
            raise GeneSetError(f"{path}: HGNC table without 'Previous symbols' or 'Alias symbols' columns")
        long = pd.concat(
            [df[["Approved symbol", c]].set_axis(["symbol", "alias"], axis=1) for c in cols],
            ignore_index=True,
        )
        long["alias"] = long["alias"].str.split(",")
        return alias_pairs(long.explode("alias")[["alias", "symbol"]])
    raise GeneSetError(
        f"{path}: alias table needs columns 'alias' and 'symbol', or HGNC's 'Approved symbol' with "
        f"'Previous symbols'/'Alias symbols' (found {list(df.columns)})"
    )


def alias_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Normalise alias pairs: uppercase, drop blanks, self-maps and ambiguous aliases.

    An alias that points to several current symbols (HGNC has many) cannot be resolved and is
    dropped rather than guessed.
    """
    df = df.astype(str).apply(lambda c: c.str.strip().str.upper())
    df = df[(df["alias"] != "") & (df["symbol"] != "") & (df["alias"] != df["symbol"])]
    df = df.drop_duplicates()
    ambiguous = df["alias"].duplicated(keep=False)
    return df[~ambiguous].reset_index(drop=True)


def harmonise(
    sets: pd.DataFrame,
    genes: Iterable[str],
    *,
    collection: str = "gene sets",
    aliases: pd.DataFrame | None = None,
    warn_fraction: float = 0.5,
    min_median_fraction: float = 0.2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map each set's genes onto the data's identifiers; return (mapped sets, per-set report).

    Matching is case-insensitive on symbols. With an alias table (see ``read_alias_table``) a
    set gene and a data gene also match when both resolve to the same current symbol, so an
    outdated symbol on either side is found. Mapped sets carry the data's own spelling in
    ``gene`` (and the GMT's in ``gene_set_id``), keep only found genes, and no duplicates.

    Report columns: collection, set, n_genes (unique ids in the set), n_found, fraction, missing (first 5 unmatched ids).
    Warns (LowOverlapWarning) when sets have fraction < ``warn_fraction``; raises OverlapError
    when the median fraction over sets is < ``min_median_fraction``.
    """
    _check_table(sets)
    data = pd.Series(list(genes), dtype=str)
    if data.empty:
        raise OverlapError(f"{collection}: the expression data has no genes to match")
    data_upper = data.str.strip().str.upper()
    amap = None if aliases is None else alias_pairs(aliases).set_index("alias")["symbol"]

    def canonical(x: pd.Series) -> pd.Series:
        return x if amap is None else x.map(amap).fillna(x)

    # Exact (case-insensitive) matches win; canonical-symbol matches fill the rest. Data ids
    # that collide after canonicalisation are left out of the canonical lookup (ambiguous).
    exact = pd.Series(data.values, index=data_upper.values)
    exact = exact[~exact.index.duplicated(keep="first")]
    canon_keys = canonical(data_upper)
    by_canon = pd.Series(data.values, index=canon_keys.values)
    by_canon = by_canon[~by_canon.index.duplicated(keep=False)]

    out = sets.drop_duplicates(["set", "gene"]).copy()
    out["gene_set_id"] = out["gene"].astype(str)
    up = out["gene_set_id"].str.strip().str.upper()
    hit = up.map(exact).combine_first(canonical(up).map(by_canon))
    out["gene"] = hit

    found = out["gene"].notna()
    grp = out.assign(found=found).groupby("set", sort=False)
    report = pd.DataFrame(
        {
            "n_genes": grp.size(),
            "n_found": grp["found"].sum().astype(int),
        }
    )
    report["fraction"] = report["n_found"] / report["n_genes"]
    miss = out.loc[~found].groupby("set", sort=False)["gene_set_id"].agg(lambda s: ",".join(s.head(5)))
    report["missing"] = miss.reindex(report.index).fillna("")
    report = report.reset_index().rename(columns={"index": "set"})
    report.insert(0, "collection", collection)

    median = float(report["fraction"].median())
    if median < min_median_fraction:
        unmatched = out.loc[~found, "gene_set_id"].drop_duplicates().head(8).tolist()
        raise OverlapError(
            f"{collection}: only {median:.1%} of a typical set's genes are in the data "
            f"(median over {len(report)} sets; required >= {min_median_fraction:.0%}). "
            f"Unmatched ids e.g. {unmatched}; data ids e.g. {data.head(5).tolist()}. "
            "Are the identifiers of the same type (symbols vs Ensembl/Entrez, species)?"
        )
    low = report[report["fraction"] < warn_fraction]
    if len(low):
        examples = ", ".join(f"{s} ({f:.0%})" for s, f in zip(low["set"].head(5), low["fraction"].head(5)))
        warnings.warn(
            f"{collection}: {len(low)} of {len(report)} sets have < {warn_fraction:.0%} of their genes "
            f"in the data: {examples}",
            LowOverlapWarning,
            stacklevel=2,
        )
    mapped = out.loc[found].drop_duplicates(["set", "gene"]).reset_index(drop=True)
    return mapped[["set", "description", "gene", "gene_set_id"]], report


def membership(sets: pd.DataFrame, genes: pd.Index) -> tuple[pd.Index, np.ndarray]:
    """Boolean sets x genes matrix over ``genes`` (the vectorised form every method uses)."""
    _check_table(sets)
    set_names = pd.Index(pd.unique(sets["set"]), name="set")
    col = genes.get_indexer(sets["gene"])
    row = set_names.get_indexer(sets["set"])
    ok = col >= 0
    mat = np.zeros((len(set_names), len(genes)), dtype=bool)
    mat[row[ok], col[ok]] = True
    return set_names, mat
