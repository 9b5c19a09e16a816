"""Sample sheets and the matching of expression columns to samples.

Real inputs name samples differently in each file: GEO's count tables use titles, accessions or
library ids (``Pt1_Pre_AD101148-6``), an author's table uses its own ids (``Pt1_Pre``) and
carries what GEO lacks (response). Columns are matched to samples by a sample field, a regex or
an explicit map; technical replicates (several libraries of one sample) are summed or one kept
as configured; every decision is in the ledger, nothing is dropped or merged silently.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from prepost.io.counts import collapse_labels
from prepost.io.geo import _lines, first_duplicate

__all__ = ["SampleSheetError", "read_sample_sheet", "join_sample_sheet", "match_columns", "REPLICATES"]

REPLICATES = ("error", "sum", "first")


class SampleSheetError(ValueError):
    """A sample sheet or a column-to-sample match that cannot be used as configured."""


def read_sample_sheet(path: str | Path, id_column: str = "sample") -> pd.DataFrame:
    """A TSV or CSV sample sheet (gzip or not; CR, LF or CRLF line ends) indexed by ``id_column``.

    Every cell is a string (NaN when empty). A header cell left empty (R's row names) is named
    "(row names)"; a repeated column name gets " (2)", " (3)"... (both are kept and logged in
    the sheet's attrs, never one silently replacing the other). Ids must be unique.
    """
    path = Path(path)
    rows = [line for _, line in _lines(path, SampleSheetError)]  # universal newlines
    rows = [r for r in rows if r.strip() != ""]
    if not rows:
        raise SampleSheetError(f"{path}: empty sample sheet; expected a header line with {id_column!r}")
    sep = "\t" if "\t" in rows[0] else ","
    table = list(csv.reader(rows, delimiter=sep, quotechar='"'))
    header = [c.strip() for c in table[0]]
    renamed = {}
    seen: dict[str, int] = {}
    names = []
    for i, c in enumerate(header):
        c = c or "(row names)"
        seen[c] = seen.get(c, 0) + 1
        if seen[c] > 1:
            renamed[f"column {i + 1}"] = f"{c} ({seen[c]})"
            c = f"{c} ({seen[c]})"
        names.append(c)
    for n, r in enumerate(table[1:], start=2):
        if len(r) != len(names):
            raise SampleSheetError(f"{path}, line {n}: {len(r)} fields, expected {len(names)} as in the header")
    df = pd.DataFrame(table[1:], columns=names, dtype=object).apply(lambda c: c.str.strip())
    df = df.where(df != "", np.nan)
    if id_column not in df.columns:
        raise SampleSheetError(
            f"{path}: no column {id_column!r} for the sample ids (columns {names}); set sample_column"
        )
    ids = df[id_column]
    if ids.isna().any():
        raise SampleSheetError(f"{path}, line {int(np.flatnonzero(ids.isna())[0]) + 2}: empty sample id in column {id_column!r}")
    hit = first_duplicate(ids)
    if hit is not None:
        j, first = hit
        raise SampleSheetError(
            f"{path}, line {j + 2}: duplicate sample id {ids.iloc[j]!r} (first on line {first + 2}); "
            "each sample must appear once"
        )
    out = df.set_index(id_column, drop=id_column == "sample")  # keep e.g. "Sample" as a field
    out.index.name = "sample"
    out.attrs["renamed_columns"] = renamed
    return out


def join_sample_sheet(samples: pd.DataFrame, sheet: pd.DataFrame, on: str, path: str,
                      regex: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Add the sheet's columns to the samples, matching the sheet id to the sample field ``on``
    (or to the part of it that ``regex`` captures). A column already present keeps the GEO
    value and the sheet's is added as "<name> (sample sheet)"."""
    key = _field(samples, on, path, "sample_sheet.join")
    if regex:
        key = key.map(lambda v: _capture(regex, v))
    hit = key.map(lambda v: v in sheet.index if isinstance(v, str) else False)
    add = sheet.rename(columns={c: f"{c} (sample sheet)" for c in sheet.columns if c in samples.columns})
    joined = samples.join(add.reindex(key.where(hit).to_numpy()).set_axis(samples.index))
    used = set(key[hit])
    ledger = {
        "path": str(path), "join": on, "regex": regex,
        "matched_samples": int(hit.sum()),
        "samples_without_sheet_row": samples.index[~hit].tolist(),
        "sheet_rows_not_used": [i for i in sheet.index if i not in used],
        "columns_added": list(add.columns),
        "renamed_columns": sheet.attrs.get("renamed_columns", {}),
    }
    return joined, ledger


def _field(samples: pd.DataFrame, key: str, path: str, what: str) -> pd.Series:
    if key in ("geo_accession", "sample") and key not in samples.columns:
        return pd.Series(samples.index, index=samples.index)
    if key not in samples.columns:
        raise SampleSheetError(f"{path}: {what} {key!r} is not a sample field (fields: {list(samples.columns)[:20]})")
    return samples[key].astype("string").str.strip().astype(object)


def _capture(regex: str, value: str):
    m = re.search(regex, value)
    if m is None:
        return None
    if "key" in m.groupdict():
        return m.group("key")
    return m.group(1) if m.groups() else m.group(0)


def match_columns(data: pd.DataFrame, samples: pd.DataFrame, opts: dict, path: str,
                  default_key: str) -> tuple[pd.DataFrame, dict]:
    """Rename expression columns to sample ids.

    opts (the dataset's ``counts`` block): ``sample_key`` (the sample field the column names
    hold; default ``default_key``), ``sample_regex`` (applied to each column name; the group
    named ``key``, else group 1, else the whole match is compared with the field),
    ``sample_map`` (column -> field value, for the columns it lists), ``replicates``
    (error | sum | first: several columns of one sample), ``unmatched_columns`` (error | drop).
    """
    key = opts.get("sample_key", default_key)
    field = _field(samples, key, path, "counts.sample_key")
    if field.isna().any() and key not in ("geo_accession", "sample"):
        field = field.fillna("\0no value")
    lookup = pd.Series(samples.index, index=field.to_numpy())
    if lookup.index.has_duplicates:
        dups = sorted(set(lookup.index[lookup.index.duplicated()]))
        raise SampleSheetError(f"{path}: sample {key} values are not unique ({dups[:5]}); use another counts.sample_key")
    regex, smap = opts.get("sample_regex"), opts.get("sample_map") or {}
    cols = pd.Series(data.columns.astype(str), index=data.columns)
    values = cols.map(lambda c: smap[c] if c in smap else (_capture(regex, c) if regex else c))
    target = values.map(lambda v: lookup.get(v) if isinstance(v, str) else None)
    unmatched = target.isna()
    ledger: dict = {"sample_key": key, "sample_regex": regex, "sample_map": len(smap),
                    "columns": int(len(cols)), "unmatched_columns": cols[unmatched].tolist()}
    if unmatched.any():
        if opts.get("unmatched_columns", "error") != "drop":
            bad = cols[unmatched].tolist()
            raise SampleSheetError(
                f"{path}: count table column(s) {bad[:5]} ({len(bad)} in all) match no sample {key}"
                f"{' through sample_regex ' + repr(regex) if regex else ''} (sample {key} e.g. "
                f"{list(lookup.index[:3])}); set counts.sample_key / sample_regex / sample_map, or "
                "counts.unmatched_columns: drop to leave them out (listed in prepare.json)"
            )
        data = data.loc[:, ~unmatched.to_numpy()]
        target = target[~unmatched]
    groups = pd.Series(target.index, index=target.to_numpy()).groupby(level=0, sort=False).agg(list)
    reps = groups[groups.map(len) > 1]
    policy = opts.get("replicates", "error")
    ledger["replicates"] = {"policy": policy, "samples": {k: list(map(str, v)) for k, v in reps.items()}}
    if len(reps) and policy == "error":
        raise SampleSheetError(
            f"{path}: columns {list(map(str, reps.iloc[0]))} all match sample {reps.index[0]!r} "
            f"({len(reps)} sample(s) with several columns): technical replicates? Set "
            "counts.replicates: sum (DESeq2's collapseReplicates) or first, or tell them apart "
            "with sample_regex / sample_map"
        )
    data = data.copy()
    data.columns = target.to_numpy()
    if len(reps):
        data = collapse_labels(data.T, policy).T
    return data, ledger
