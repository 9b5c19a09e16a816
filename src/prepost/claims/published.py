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
from scipy import stats

from prepost.claims.effects import effect_from_t
from prepost.io import download
from prepost.vocabulary import PAIRED_GROUP

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
    q = stats.t.ppf(0.5 + level / 2, ci_df) if ci_df else stats.norm.ppf(0.5 + level / 2)
    se = out["se"].copy()
    se = se.fillna((out["ci_high"] - out["ci_low"]) / (2 * q))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = se.fillna(out["log2fc"] / out["stat"])
        t_from_p = np.sign(out["log2fc"]) * stats.t.isf(out["pvalue"] / 2, df_t)
        se = se.fillna(out["log2fc"] / t_from_p)
        t = out["stat"].fillna(out["log2fc"] / se)
    out["lfc_se"] = se.abs().where(se.abs() > 0)
    out["stat"] = t
    if out["pvalue"].isna().all():  # no p column: the Wald/t p from the derived t
        out["pvalue"] = 2 * stats.t.sf(np.abs(t), df_t)
    out["df_total"] = float(ci_df) if ci_df else np.inf
    eff = effect_from_t(t.to_numpy(), **sizes)
    out[["smd", "smd_se", "smd_n"]] = eff.to_numpy()
    out = out.drop_duplicates("gene", keep="first")  # first row of a repeated symbol, as ranked
    return out[["gene", "log2fc", "lfc_se", "stat", "pvalue", "padj", "df_total", "smd", "smd_se",
                "smd_n", "ci_low", "ci_high"]]


def absent_reason(ds: dict) -> str:
    """Why a claim gene is missing from the table."""
    if ds.get("significant_only"):
        return "gene not in the published table (it lists only significant genes)"
    return "gene not in the published table"


def fetch_published(ds: dict, name: str, dest, **fetch_kw) -> dict:
    """Copy or download the table to ``dest`` through prepost.io.download (sha256 checked when
    configured), then parse it once so a mis-mapped table fails here, naming the file."""
    src = source(ds)
    want = ds["table"].get("sha256")
    expect = "gzip" if src.lower().endswith(".gz") else "text"
    row = download.fetch(src, dest, expect=expect, known_sha256=want, **fetch_kw)
    if want and row["sha256"] != want:
        Path(dest).unlink(missing_ok=True)
        raise download.DownloadError(
            f"published table of dataset {name!r} from {src}: sha256 {row['sha256']} does not "
            f"match the configured {want} (datasets.{name}.table.sha256)"
        )
    table = read_published(dest, ds, name)
    row["genes"] = int(len(table))
    return row
