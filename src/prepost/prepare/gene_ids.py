"""Gene identifiers to symbols: detect the id type, map through a gene map, keep a ledger.

Gene sets and claims name genes by symbol; GEO count tables are keyed by Entrez ids (NCBI's
generated counts, GSE91061's supplement), Ensembl ids (GENCODE pipelines) or symbols. A table
whose ids are not symbols would run through DE and then match no gene set, so the id type is
decided at prepare time and a table that cannot be mapped stops there with the fix.

Rule: an id with exactly one symbol in the map is renamed to it; an id with none (unmapped) or
several (ambiguous) keeps its own id, so no gene leaves the analysis. Ids that end up with the
same symbol are merged: counts summed (reads of one gene counted under two ids, e.g. an
Ensembl PAR_Y copy), log2 values by the id with the highest mean (the probe rule of arrays),
or an error; every merge is in the ledger.
"""

from __future__ import annotations

import pandas as pd

from prepost.io.counts import collapse_labels

__all__ = ["GeneIdError", "ID_TYPES", "MERGE", "detect_id_type", "needs_map_message", "map_to_symbols"]

ID_TYPES = ("symbol", "entrez", "ensembl")
MERGE = ("sum", "max_mean", "error")
ENSEMBL = r"ENS[A-Z]*G\d{6,}(?:\.\d+)?(?:_PAR_Y)?"
ENTREZ = r"\d+"
MAJORITY = 0.5
NCBI_GENE_INFO = "https://ftp.ncbi.nlm.nih.gov/gene/DATA/GENE_INFO/Mammalia/Homo_sapiens.gene_info.gz"


class GeneIdError(ValueError):
    """Gene ids that cannot be mapped to symbols as configured."""


def detect_id_type(ids: pd.Index) -> tuple[str, dict]:
    """'ensembl' or 'entrez' when most ids (>= 50 %) look like one, else 'symbol'; with the
    evidence (fractions and examples) for the ledger and messages."""
    s = pd.Series(ids.astype(str)).str.strip()
    n = max(len(s), 1)
    frac = {
        "ensembl": float(s.str.fullmatch(ENSEMBL).sum() / n),
        "entrez": float(s.str.fullmatch(ENTREZ).sum() / n),
    }
    kind = max(frac, key=frac.get)
    if frac[kind] < MAJORITY:
        kind = "symbol"
    evidence = {"fraction_ensembl_like": round(frac["ensembl"], 4),
                "fraction_entrez_like": round(frac["entrez"], 4), "examples": s.head(5).tolist()}
    return kind, evidence


def needs_map_message(kind: str, evidence: dict, n: int, where: str) -> str:
    what = {"entrez": "Entrez Gene ids (whole numbers)", "ensembl": "Ensembl gene ids"}[kind]
    frac = evidence[f"fraction_{kind}_like"]
    return (
        f"{where}: the gene ids look like {what}: {frac:.0%} of {n}, e.g. {evidence['examples']}; "
        "gene sets and claims use gene symbols. Set gene_map to a table that maps them (a path, "
        f"or a url with sha256): NCBI's Homo_sapiens.gene_info.gz ({NCBI_GENE_INFO}), GEO's "
        "Human.GRCh38.p13.annot.tsv.gz, or a two-column id<TAB>symbol file; or counts.symbol_column "
        "when the table has its own symbol column; or gene_ids: symbol if they are symbols"
    )


def _key(ids: pd.Series, kind: str) -> pd.Series:
    s = ids.astype(str).str.strip()
    if kind == "ensembl":  # versions and GENCODE's PAR_Y suffix are not part of the gene id
        return s.str.replace(r"(?:\.\d+)?(?:_PAR_Y)?$", "", regex=True)
    return s


def map_to_symbols(
    data: pd.DataFrame,
    kind: str,
    values: str,
    *,
    relation: pd.DataFrame | None = None,
    symbols: pd.Series | None = None,
    merge: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """(genes x samples with symbols as index, ledger dict).

    ``relation`` is a gene map (prepost.io.gene_maps: columns among entrez, ensembl, symbol,
    or id, symbol); ``symbols`` instead gives each row's symbol directly (the table's own
    symbol column). ``merge``: sum | max_mean | error (default sum for counts, max_mean else).
    """
    merge = merge or ("sum" if values == "counts" else "max_mean")
    if merge not in MERGE:
        raise GeneIdError(f"gene_merge must be one of {MERGE}, not {merge!r}")
    ids = pd.Series(data.index.astype(str), index=range(len(data)))
    if symbols is not None:
        sym = pd.Series(symbols.astype(str).str.strip().to_numpy(), index=ids.index)
        n_sym = (sym != "").astype(int)
        source = "table column"
    else:
        col = kind if kind in relation.columns else "id"
        if col not in relation.columns:
            raise GeneIdError(f"the gene map has no {kind} column (columns {list(relation.columns)})")
        rel = relation.loc[(relation[col] != "") & (relation["symbol"] != ""), [col, "symbol"]]
        rel = rel.assign(key=_key(rel[col], kind)).drop_duplicates(["key", "symbol"])
        per = rel.groupby("key")["symbol"]
        n_per, first = per.size(), per.first()
        keys = _key(ids, kind)
        n_sym = keys.map(n_per).fillna(0).astype(int)
        sym = keys.map(first).fillna("")
        source = "gene map"
    mapped = n_sym == 1
    new = ids.where(~mapped, sym)
    ledger: dict = {
        "id_type": kind,
        "source": source,
        "ids": int(len(ids)),
        "mapped": int(mapped.sum()),
        "unmapped": int((n_sym == 0).sum()),
        "unmapped_examples": ids[n_sym == 0].head(10).tolist(),
        "ambiguous": int((n_sym > 1).sum()),
        "ambiguous_examples": ids[n_sym > 1].head(10).tolist(),
        "kept_own_id": "unmapped and ambiguous ids keep their own id (they stay in the analysis)",
    }
    out = data.copy()
    out.index = pd.Index(new.to_numpy(dtype=object), name="gene")
    dup = out.index.duplicated(keep=False)
    groups = pd.Series(ids[dup].to_numpy(), index=out.index[dup]).groupby(level=0).agg(list)
    ledger["merged"] = {"policy": merge, "symbols": int(len(groups)), "ids": int(dup.sum()),
                        "examples": {k: v for k, v in groups.head(10).items()}}
    if len(groups):
        if merge == "error":
            k = groups.index[0]
            raise GeneIdError(
                f"{len(groups)} symbol(s) are reached from several ids, e.g. {k!r} from {groups.iloc[0]}; "
                "set gene_merge: sum (counts) or max_mean to merge them"
            )
        if merge == "sum":
            out = collapse_labels(out, "sum")
        else:
            mean = out.mean(axis=1, skipna=True).to_numpy()
            order = pd.DataFrame({"g": out.index, "m": -mean, "i": ids.to_numpy()})
            order = order.sort_values(["g", "m", "i"], kind="mergesort", na_position="last")
            keep = order.drop_duplicates("g").index.to_numpy()
            out = out.iloc[sorted(keep)]
    if values == "counts":
        out = out.astype("int64")
    ledger["genes"] = int(len(out))
    return out.sort_index(), ledger
