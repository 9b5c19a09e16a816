"""A published DE table as a dataset (``kind: published_de``): no expression matrix, gene rows only.

Why: many cohorts are available only as a supplementary table of a paper (gene, log fold change,
SE or CI or t, p, adjusted p). Such a table can still test gene claims and join the
meta-analysis, provided its sample size is known. The config maps the table's column names to
ours (``columns``), gives the contrast it reports, ``n_pairs`` (paired contrasts) or
``n_groups`` (responder / non_responder sizes of an unpaired contrast), and says whether the
table lists only significant genes (then a missing gene means "not significant there", not "not
measured").

The standard error of log2fc is taken from, in order: the ``se`` column; the CI, se = (high -
low) / (2 q) with q the normal quantile of ``ci_level`` (or the t quantile on ``ci_df``
degrees of freedom when the CI is t-based, as limma's topTable(confint=TRUE)); the ``stat``
column, se = log2fc / t; the p-value, |t| = qt(1 - p/2, df) with df = n - 1 (paired) or
n1 + n2 - 2, and the sign of log2fc. The t statistic for the standardised effect
(prepost.claims.effects.effect_from_t) comes from ``stat`` when mapped, else log2fc / se.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from prepost import distributions as D
from prepost.claims.effects import effect_from_t
from prepost.io import download
from prepost.vocabulary import NS_UNREPORTED, PAIRED_GROUP

COLUMN_KEYS = ("gene", "log2fc", "se", "ci_low", "ci_high", "stat", "pvalue", "padj")


class PublishedTableError(ValueError):
    """A published table that does not match its configuration."""


def is_published(ds: dict) -> bool:
    return ds.get("kind") == "published_de"


def source(ds: dict) -> str:
    """Where the table comes from: a local path or a URL."""
    t = ds["table"]
    return t.get("url") or t["path"]


def local_name(ds: dict) -> str:
    """File name of the fetched copy (the source's own name, so its suffix is kept)."""
    return source(ds).rstrip("/").rsplit("/", 1)[-1]


def _read_raw(path: Path, sep: str | None, name_hint: str) -> pd.DataFrame:
    """Text or gzip (by magic bytes); separator as configured, else by the source's suffix."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    if sep is None:
        sep = "," if name_hint.lower().removesuffix(".gz").endswith(".csv") else "\t"
    from io import StringIO

    return pd.read_csv(StringIO(text), sep=sep, dtype=str, keep_default_na=False, comment=None)


def _numeric(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    vals = pd.to_numeric(df[col].str.strip().replace({"": np.nan, "NA": np.nan, "NaN": np.nan}),
                         errors="coerce")
    bad = vals.isna() & ~df[col].str.strip().isin(["", "NA", "NaN"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PublishedTableError(
            f"{path}: line {i + 2}, column {col!r}: {df[col].iloc[i]!r} is not a number"
        )
    return vals


def sample_sizes(ds: dict, name: str) -> dict:
    """{'n': pairs} for a paired contrast, {'n1', 'n2'} (responders, non-responders) otherwise."""
    contrast = ds["contrast"]
    if contrast in PAIRED_GROUP:
        if "n_pairs" not in ds:
            raise PublishedTableError(f"dataset {name!r}: contrast {contrast} needs n_pairs")
        return {"n": int(ds["n_pairs"])}
    groups = ds.get("n_groups") or {}
    if not {"responder", "non_responder"} <= set(groups):
        raise PublishedTableError(
            f"dataset {name!r}: contrast {contrast} needs n_groups: {{responder: n1, non_responder: n2}}"
        )
    return {"n1": int(groups["responder"]), "n2": int(groups["non_responder"])}


def read_published(path: str | Path, ds: dict, name: str) -> pd.DataFrame:
    """The table in the claims engine's DE layout: gene, log2fc, lfc_se, stat, pvalue, padj,
    df_total (the CI's df, so the claims CI is the published one), smd, smd_se, smd_n."""
    path = Path(path)
    cols = ds["columns"]
    df = _read_raw(path, ds.get("sep"), local_name(ds) if "table" in ds else path.name)
    missing = [f"{k}: {v!r}" for k, v in cols.items() if k in COLUMN_KEYS and v not in df.columns]
    if missing:
        raise PublishedTableError(
            f"{path}: column(s) {', '.join(missing)} of datasets.{name}.columns not in the table "
            f"header {list(df.columns)}"
        )
    if not ({"se", "stat", "pvalue"} & set(cols) or {"ci_low", "ci_high"} <= set(cols)):
        raise PublishedTableError(
            f"datasets.{name}.columns: need one of se, ci_low + ci_high, stat or pvalue to derive "
            "the standard error"
        )
    sizes = sample_sizes(ds, name)
    df_t = sizes["n"] - 1 if "n" in sizes else sizes["n1"] + sizes["n2"] - 2
    genes = df[cols["gene"]].str.strip()
    if genes.eq("").any():
        raise PublishedTableError(f"{path}: line {int(np.flatnonzero(genes.eq(''))[0]) + 2}: empty gene")
    out = pd.DataFrame({"gene": genes})
    out["log2fc"] = _numeric(df, cols["log2fc"], path).to_numpy()
    for key in ("se", "ci_low", "ci_high", "stat", "pvalue", "padj"):
        out[key] = _numeric(df, cols[key], path).to_numpy() if key in cols else np.nan
    level = float(ds.get("ci_level", 0.95))
    ci_df = ds.get("ci_df")
    q = D.t_ppf(0.5 + level / 2, ci_df) if ci_df else D.norm_ppf(0.5 + level / 2)
    se = out["se"].copy()
    se = se.fillna((out["ci_high"] - out["ci_low"]) / (2 * q))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = se.fillna(out["log2fc"] / out["stat"])
        t_from_p = np.sign(out["log2fc"]) * D.t_isf(out["pvalue"] / 2, df_t)
        se = se.fillna(out["log2fc"] / t_from_p)
        t = out["stat"].fillna(out["log2fc"] / se)
    out["lfc_se"] = se.abs().where(se.abs() > 0)
    out["stat"] = t
    if out["pvalue"].isna().all():  # no p column: the Wald/t p from the derived t
        out["pvalue"] = 2 * D.t_sf(np.abs(t), df_t)
    out["df_total"] = float(ci_df) if ci_df else np.inf
    eff = effect_from_t(t.to_numpy(), **sizes)
    out[["smd", "smd_se", "smd_n"]] = eff.to_numpy()
    out = out.drop_duplicates("gene", keep="first")  # first row of a repeated symbol, as ranked
    return out[["gene", "log2fc", "lfc_se", "stat", "pvalue", "padj", "df_total", "smd", "smd_se",
                "smd_n", "ci_low", "ci_high"]]


def absent_reason(ds: dict) -> str:
    """Why a claim gene is missing from the table (no universe to tell measured from not)."""
    if ds.get("significant_only"):
        return "gene not in the published table (it lists only significant genes; give universe: to tell measured from not measured)"
    return "gene not in the published table"


def read_universe(path) -> set[str]:
    """The assay's gene list: one symbol a line (blank lines and '#' comments skipped). A line
    holding more than one field is an error naming the line: a table given by mistake."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    genes = set()
    for i, line in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text.split()) > 1:
            raise PublishedTableError(
                f"{path}: line {i}: {text[:60]!r} is not one gene symbol (universe: one symbol a line)"
            )
        genes.add(text)
    if not genes:
        raise PublishedTableError(f"{path}: the universe lists no gene")
    return genes


def fetch_universe(ds: dict, name: str, dest, **fetch_kw) -> dict:
    """Copy or download the universe (``universe:``) and parse it once, naming a wrong file."""
    row = _fetch_checked(ds, "universe", "universe", name, dest, **fetch_kw)
    row["genes"] = len(read_universe(dest))
    return row


def gene_evidence_absent(gene: str, ds: dict, universe: set[str] | None) -> dict:
    """A claim gene the table does not list: with a universe and a significant-only table it was
    measured and not significant (NS_UNREPORTED) or not measured at all."""
    if universe is None:
        return {"reason": absent_reason(ds)}
    if gene not in universe:
        return {"reason": "not measured (not in the assay's gene list, universe)"}
    if ds.get("significant_only"):
        return {"reason": "", "verdict": NS_UNREPORTED,
                "note": "measured, not significant in the source (its table lists significant genes only)"}
    return {"reason": "measured (in the universe) but missing from a complete table"}


def set_evidence(members: list[str], table: pd.DataFrame, ds: dict, universe: set[str] | None,
                 direction: str) -> dict:
    """A gene-set claim on a published table.

    Complete table: a competitive test (Wilcoxon rank-sum, as limma's wilcoxGST) of the
    members' t against every other gene's; the effect is the difference of mean t (members -
    others). Significant-only table with a universe: descriptive only, the listed members'
    directions against the number of members measured (no test: the table was cut on p).
    """
    members = list(dict.fromkeys(members))
    listed = table[table["gene"].isin(members)]
    if not ds.get("significant_only"):
        t = table["stat"].astype(float)
        inset = table["gene"].isin(members).to_numpy() & np.isfinite(t.to_numpy())
        rest = ~table["gene"].isin(members).to_numpy() & np.isfinite(t.to_numpy())
        if inset.sum() < 3:
            return {"reason": f"only {int(inset.sum())} of the set's {len(members)} genes in the table (need 3)"}
        from scipy import stats  # here, not at the top: scipy.stats costs 0.6 s of every job

        test = stats.mannwhitneyu(t[inset], t[rest], alternative="two-sided")
        return {"effect": float(t[inset].mean() - t[rest].mean()),
                "effect_unit": "mean t, members - other genes (competitive rank-sum)",
                "pvalue": float(test.pvalue), "reason": "", "n_pairs": int(inset.sum())}
    if universe is None:
        return {"reason": "significant-only published table without universe: a set cannot be judged"}
    measured = [g for g in members if g in universe]
    up = int((listed["log2fc"] > 0).sum())
    down = int((listed["log2fc"] < 0).sum())
    return {"reason": (f"descriptive only (significant-only table): of {len(members)} set genes, "
                       f"{len(measured)} measured; {up} listed as significantly up, {down} down, "
                       f"{len(measured) - up - down} not significant (expected {direction})")}


def _fetch_checked(ds: dict, key: str, what: str, name: str, dest, **fetch_kw) -> dict:
    """``ds[key]`` ({path} or {url}, optional sha256) to ``dest`` through prepost.io.download;
    a configured sha256 that does not match removes the copy and names the key."""
    src = ds[key].get("url") or ds[key]["path"]
    want = ds[key].get("sha256")
    expect = "gzip" if src.lower().endswith(".gz") else "text"
    row = download.fetch(src, dest, expect=expect, known_sha256=want, **fetch_kw)
    if want and row["sha256"] != want:
        Path(dest).unlink(missing_ok=True)
        raise download.DownloadError(
            f"{what} of dataset {name!r} from {src}: sha256 {row['sha256']} does not match the "
            f"configured {want} (datasets.{name}.{key}.sha256)"
        )
    return row


def fetch_published(ds: dict, name: str, dest, **fetch_kw) -> dict:
    """Copy or download the table to ``dest`` (sha256 checked when configured), then parse it
    once so a mis-mapped table fails here, naming the file."""
    row = _fetch_checked(ds, "table", "published table", name, dest, **fetch_kw)
    row["genes"] = int(len(read_published(dest, ds, name)))
    return row
