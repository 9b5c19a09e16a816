"""Parsers for the files NCBI GEO actually serves: series matrices and platform annotations
(count tables: prepost.io.counts).

GEO's formats are loose (quoted tab-separated cells, repeated metadata lines, several ways of
writing a missing value, the odd BOM or CRLF), so each parser accepts those variants but stops
with a :class:`GeoFormatError` naming the file, the line and what was expected as soon as the
content cannot be read without guessing.
"""

from __future__ import annotations

import gzip
import io
import os
import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "GeoFormatError",
    "SeriesMatrixError",
    "PlatformError",
    "CountTableError",
    "SeriesMatrix",
    "parse_series_matrix",
    "parse_family_soft",
    "combine_series_matrices",
    "parse_platform",
]

# Cells GEO (and submitters) use for "no value" in a series matrix table.
NULL_VALUES = ["null", "NULL", "Null", "NA", "na", "N/A", "NaN", "nan", ""]
# Default gene-symbol columns, in priority order: GPL .annot files, Affymetrix, Agilent, Illumina.
SYMBOL_COLUMNS = ["Gene symbol", "Gene Symbol", "GENE_SYMBOL", "Symbol", "SYMBOL", "gene_symbol"]
# How GEO writes "no symbol" in some platform tables.
MISSING_SYMBOLS = {"", "---", "--", "-", "NA", "null"}


class GeoFormatError(ValueError):
    """A GEO file does not have the expected layout; the message names file, line and expectation."""


class SeriesMatrixError(GeoFormatError):
    """Malformed ``*_series_matrix.txt(.gz)``."""


class PlatformError(GeoFormatError):
    """Malformed or unusable platform annotation (GPL .annot / family SOFT / TSV)."""


class CountTableError(GeoFormatError):
    """Malformed supplementary count table."""


@dataclass
class SeriesMatrix:
    """One parsed series matrix: series metadata, sample sheet and the (possibly empty) table."""

    accession: str
    series: dict[str, list[str]] = field(default_factory=dict)
    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    # family SOFT read for one platform: the GSMs of the series' other platforms, left out
    other_platform_samples: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# low-level helpers


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    """Text handle for a gzip or plain file; BOM dropped, undecodable bytes replaced, not fatal."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline=None)
    return open(path, "rt", encoding="utf-8-sig", errors="replace", newline=None)


def _lines(path: Path, err: type[GeoFormatError]) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline/CR); a corrupt gzip becomes ``err``."""
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, start=1):
                yield n, line.rstrip("\r\n").rstrip("\r")
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise err(f"{path}: cannot read the file ({exc}); expected a complete gzip or plain-text file") from exc


def _unquote(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        return cell[1:-1].strip()  # GEO pads some values, e.g. "GSM1 GSM2 "
    return cell


def first_duplicate(ids) -> tuple[int, int] | None:
    """(position of the first repeated id, position of its first occurrence), or None: the
    two line numbers a "duplicate id" message names."""
    ids = pd.Index(ids)
    dup = ids.duplicated()
    if not dup.any():
        return None
    j = int(dup.argmax())
    return j, int((ids == ids[j]).argmax())


def _split(line: str) -> list[str]:
    """Split a tab-separated metadata line into raw cells, dropping *unquoted* trailing empties.

    A trailing tab is an artefact; a quoted empty cell ``""`` is a real (empty) value and is kept.
    """
    cells = line.split("\t")
    while len(cells) > 1 and cells[-1].strip() == "":
        cells.pop()
    return cells


# --------------------------------------------------------------------------------------------
# series matrix


def parse_series_matrix(path: str | os.PathLike) -> SeriesMatrix:
    """Parse a GEO series matrix (gzip or plain) into series metadata, samples and the value table.

    ``samples`` has one row per GSM (index "sample") and one column per ``!Sample_*`` field
    (key without the prefix; repeated fields joined with "; "), plus one column per
    characteristics key: every ``"key: value"`` cell of every ``!Sample_characteristics_ch1``
    line goes to column ``key`` (split at the first ": ", so values may contain ": "), because
    GEO does not keep one key per line. Cells without ": " go to "characteristics_ch1".
    Channel-2 characteristics get the suffix "_ch2". A key that clashes with a plain field name
    (e.g. "title") is stored as "<key> (characteristics)". Empty cells become NaN.

    ``table`` is float64 with index ID_REF (str) and the GSM columns; "null", "NA" and empty
    cells are NaN; an RNA-seq series gives 0 rows.
    """
    path = Path(path)
    E = SeriesMatrixError
    series: dict[str, list[str]] = {}
    sample_lines: list[tuple[int, str, list[str]]] = []
    begin_line = end_line = None
    header: list[str] | None = None
    header_line = None
    rows: list[str] = []
    row_numbers: list[int] = []

    for n, line in _lines(path, E):
        if begin_line is not None and end_line is None:
            low = line.strip().lower()
            if low.startswith("!series_matrix_table_end"):
                end_line = n
            elif header is None:
                if line.strip() == "":
                    continue
                header = [_unquote(c) for c in _split(line)]
                header_line = n
            elif line.strip() != "":
                rows.append(line)
                row_numbers.append(n)
            continue
        if not line.startswith("!"):
            continue
        key_raw, _, rest = line.partition("\t")
        key_low = key_raw.strip().lower()
        if key_low.startswith("!series_matrix_table_begin"):
            if end_line is not None or begin_line is not None:
                continue  # only the first table is GEO's; ignore anything after it
            begin_line = n
        elif key_low.startswith("!series_matrix_table_end"):
            if begin_line is None:
                raise E(f"{path}, line {n}: !series_matrix_table_end without a preceding !series_matrix_table_begin")
        elif key_raw.startswith("!Series_"):
            vals = [_unquote(c) for c in _split(rest)] if rest else []
            series.setdefault(key_raw.strip()[len("!Series_"):], []).extend(v for v in vals if v != "")
        elif key_raw.startswith("!Sample_"):
            sample_lines.append((n, key_raw.strip()[len("!Sample_"):], rest.split("\t") if rest else []))

    if begin_line is None:
        raise E(
            f"{path}: no !series_matrix_table_begin / !series_matrix_table_end markers; "
            "expected a GEO series matrix (*_series_matrix.txt.gz)"
        )
    if end_line is None:
        raise E(
            f"{path}, line {begin_line}: !series_matrix_table_begin without !series_matrix_table_end "
            "(truncated file?)"
        )

    samples = _build_samples(path, sample_lines, header)
    table = _build_table(path, header, header_line, rows, row_numbers, begin_line)
    if len(samples) and header is not None and len(header) > 1:
        missing = [s for s in table.columns if s not in samples.index]
        absent = [s for s in samples.index if s not in table.columns]
        if missing or absent:
            raise E(
                f"{path}, line {header_line}: table columns and !Sample_geo_accession differ "
                f"(only in table: {missing[:5]}, only in sample lines: {absent[:5]})"
            )
    if samples.empty and header is not None:
        samples = pd.DataFrame({"geo_accession": list(table.columns)}, index=pd.Index(table.columns, name="sample"))

    accession = (series.get("geo_accession") or [""])[0]
    if not accession:
        m = re.search(r"GSE\d+", path.name)
        accession = m.group(0) if m else ""
    return SeriesMatrix(accession=accession, series=series, samples=samples, table=table)


def _build_samples(path: Path, sample_lines, header) -> pd.DataFrame:
    E = SeriesMatrixError
    acc = [(n, cells) for n, key, cells in sample_lines if key == "geo_accession"]
    if not acc:
        if sample_lines:
            raise E(f"{path}: !Sample_* lines but no !Sample_geo_accession line; expected one GSM id per column")
        return pd.DataFrame(index=pd.Index([], name="sample", dtype=str))
    acc_line, acc_cells = acc[0]
    acc_cells = _split("\t".join(acc_cells)) if acc_cells else []
    gsm = [_unquote(c) for c in acc_cells]
    nsamp = len(gsm)
    if any(g == "" for g in gsm):
        raise E(f"{path}, line {acc_line}: empty cell in !Sample_geo_accession; expected a GSM id in every column")
    dup = pd.Index(gsm)[pd.Index(gsm).duplicated()]
    if len(dup):
        raise E(f"{path}, line {acc_line}: duplicate GSM id(s) {sorted(set(dup))[:5]} in !Sample_geo_accession")

    columns: dict[str, list] = {}   # insertion order = first appearance in the file
    plain_keys: set[str] = set()

    def put(col: str, i: int, value: str) -> None:
        vals = columns.setdefault(col, [None] * nsamp)
        vals[i] = value if vals[i] is None else f"{vals[i]}; {value}"

    char_cells = []
    for n, key, cells in sample_lines:
        if len(cells) > nsamp and all(c.strip() == "" for c in cells[nsamp:]):
            cells = cells[:nsamp]  # trailing tab(s)
        if len(cells) != nsamp:
            raise E(
                f"{path}, line {n}: !Sample_{key} has {len(cells)} cells, expected {nsamp} "
                f"(one per GSM in !Sample_geo_accession, line {acc_line})"
            )
        m = re.fullmatch(r"characteristics_(ch\d+)", key)
        if m:
            columns.setdefault(f"\0char{n}", None)  # placeholder keeps the file's column order
            char_cells.append((n, m.group(1), cells))
            continue
        plain_keys.add(key)
        for i, c in enumerate(cells):
            v = _unquote(c)
            if v != "":
                put(key, i, v)
            else:
                columns.setdefault(key, [None] * nsamp)

    # characteristics: key per cell, not per line
    char_cols: dict[int, list[str]] = {}
    for n, ch, cells in char_cells:
        made = []
        for i, c in enumerate(cells):
            v = _unquote(c)
            if v == "":
                continue
            if ": " in v:
                k, val = v.split(": ", 1)
                k, val = k.strip(), val.strip()
                col = k if ch == "ch1" else f"{k}_{ch}"
                if col in plain_keys:
                    col = f"{col} (characteristics)"
            else:
                col, val = f"characteristics_{ch}", v
            if col not in columns:
                made.append(col)
            if val == "":
                columns.setdefault(col, [None] * nsamp)
            else:
                put(col, i, val)
        char_cols[n] = made

    # rebuild in order: plain columns where they were, characteristics columns where first seen
    ordered: dict[str, list] = {}
    for col, vals in columns.items():
        if col.startswith("\0char"):
            continue
        ordered[col] = vals
    order: list[str] = []
    seen = set()
    for col in columns:
        if col.startswith("\0char"):
            for c in char_cols.get(int(col[5:]), []):
                if c not in seen:
                    order.append(c)
                    seen.add(c)
        elif col not in seen:
            order.append(col)
            seen.add(col)
    df = pd.DataFrame({c: ordered[c] for c in order}, index=pd.Index(gsm, name="sample"), dtype=object)
    return df.where(df.notna(), np.nan)


def _build_table(path: Path, header, header_line, rows, row_numbers, begin_line) -> pd.DataFrame:
    E = SeriesMatrixError
    if header is None:
        return pd.DataFrame(index=pd.Index([], name="ID_REF", dtype=str), dtype="float64")
    if not header or header[0].upper() != "ID_REF":
        raise E(f'{path}, line {header_line}: table header starts with {header[0]!r}; expected "ID_REF" then GSM ids')
    cols = header[1:]
    if any(c == "" for c in cols):
        raise E(f"{path}, line {header_line}: empty column name in the table header; expected GSM ids")
    dup = pd.Index(cols)[pd.Index(cols).duplicated()]
    if len(dup):
        raise E(f"{path}, line {header_line}: duplicate GSM id(s) {sorted(set(dup))[:5]} in the table header")
    ncell = len(header)
    if not rows:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in cols}, index=pd.Index([], name="ID_REF", dtype=str)
        )
    # ragged rows: count tabs per line (cheap), tolerating extra *trailing* tabs only
    tabs = np.fromiter((r.count("\t") for r in rows), dtype=np.int64, count=len(rows))
    want = ncell - 1
    if (tabs != want).any():
        for j in np.flatnonzero(tabs != want):
            extra = tabs[j] - want
            if extra > 0 and rows[j].endswith("\t" * extra):
                rows[j] = rows[j][:-extra]
            else:
                raise E(
                    f"{path}, line {row_numbers[j]}: {tabs[j] + 1} cells, expected {ncell} "
                    f"(ID_REF + {len(cols)} samples as in the header, line {header_line})"
                )
    text = "\n".join(rows)
    opts = dict(sep="\t", header=None, na_values=NULL_VALUES, keep_default_na=False, quotechar='"', engine="c")
    try:  # fast path: every value column parses as float
        raw = pd.read_csv(io.StringIO(text), dtype={0: str, **{i: "float64" for i in range(1, ncell)}}, **opts)
        numeric = True
    except (ValueError, TypeError):
        numeric = False
    if not numeric:  # slow path, only to find and name the offending cell
        try:
            raw = pd.read_csv(io.StringIO(text), dtype=str, **opts)
        except (pd.errors.ParserError, ValueError) as exc:
            raise E(f"{path}: cannot parse the table after line {begin_line} ({exc})") from exc
    ids = raw.iloc[:, 0].fillna("").str.strip()
    if (ids == "").any():
        j = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise E(f"{path}, line {row_numbers[j]}: empty ID_REF; expected a probe id in the first column")
    dupi = ids.duplicated()
    if dupi.any():
        j = int(np.flatnonzero(dupi.to_numpy())[0])
        raise E(f"{path}, line {row_numbers[j]}: duplicate ID_REF {ids.iloc[j]!r}")
    vals = raw.iloc[:, 1:]
    vals.columns = cols
    if numeric:
        values = raw.iloc[:, 1:].to_numpy(dtype="float64")
        _reject_infinite(path, values, cols, row_numbers)
        return pd.DataFrame(values, columns=cols, index=pd.Index(ids.to_numpy(dtype=object), name="ID_REF"))
    out = {}
    for c in cols:  # per sample column, not per gene
        s = vals[c]
        num = pd.to_numeric(s.str.strip(), errors="coerce")
        bad = num.isna() & s.notna()
        if bad.any():
            j = int(np.flatnonzero(bad.to_numpy())[0])
            raise E(
                f"{path}, line {row_numbers[j]}, column {c}: value {s.iloc[j]!r} is not a number; "
                "expected numbers or null/NA/empty"
            )
        out[c] = num.to_numpy(dtype="float64", na_value=np.nan)
    _reject_infinite(path, np.column_stack(list(out.values())), cols, row_numbers)
    return pd.DataFrame(out, index=pd.Index(ids.to_numpy(dtype=object), name="ID_REF"))


def _reject_infinite(path: Path, values: np.ndarray, cols: list[str], row_numbers: list[int]) -> None:
    """"Inf" parses as a float but is no measurement: GEO2R's quantiles and limma's fit would
    silently propagate it, so stop at the cell instead (missing values are null/NA)."""
    inf = np.isinf(values)
    if inf.any():
        i, j = np.argwhere(inf)[0]
        raise SeriesMatrixError(
            f"{path}, line {row_numbers[i]}, column {cols[j]}: infinite value {values[i, j]!r}; "
            "expected finite numbers or null/NA/empty for missing values"
        )


# --------------------------------------------------------------------------------------------
# several series matrices (a series split per platform) and the family SOFT


def series_platforms(sm: SeriesMatrix) -> list[str]:
    """The platform(s) a parsed series matrix declares (series and sample lines), in order."""
    declared = list(dict.fromkeys(sm.series.get("platform_id", [])))
    if "platform_id" in sm.samples.columns:
        declared += [p for p in sm.samples["platform_id"].dropna().unique() if p not in declared]
    return declared


def combine_series_matrices(parts: list[tuple[str, SeriesMatrix]], *, table: bool = True) -> SeriesMatrix:
    """One SeriesMatrix from several files of one series (GEO's GSEnnn-GPLmmm_series_matrix
    files): sample sheets concatenated (a GSM in two files is an error), series fields merged
    (values of later files appended when new), tables outer-joined on ID_REF when ``table``
    (else an empty table: RNA-seq counts take the samples only). ``parts`` is [(path, sm)]."""
    if len(parts) == 1:
        return parts[0][1]
    seen: dict[str, str] = {}
    for path, sm in parts:
        for gsm in sm.samples.index:
            if gsm in seen:
                raise SeriesMatrixError(
                    f"{path}: sample {gsm} is also in {seen[gsm]}; each GSM must be in one of the "
                    "series_matrix_file files only (list each platform's file once)"
                )
            seen[gsm] = path
    accs = {sm.accession for _, sm in parts if sm.accession}
    if len(accs) > 1:
        raise SeriesMatrixError(
            f"{[p for p, _ in parts]}: the files are from different series {sorted(accs)}; "
            "series_matrix_file lists the files of one series (configure one dataset per series)"
        )
    series: dict[str, list[str]] = {}
    for _, sm in parts:
        for k, vals in sm.series.items():
            have = series.setdefault(k, [])
            have.extend(v for v in vals if v not in have)
    samples = pd.concat([sm.samples for _, sm in parts], axis=0, sort=False)
    samples.index.name = "sample"
    if table:
        tab = pd.concat([sm.table for _, sm in parts], axis=1, join="outer", sort=False)
        tab.index.name = "ID_REF"
    else:
        tab = pd.DataFrame({g: pd.Series(dtype="float64") for g in samples.index},
                           index=pd.Index([], name="ID_REF", dtype=str))
    return SeriesMatrix(accession=next(iter(accs), ""), series=series, samples=samples, table=tab)


def parse_family_soft(path: str | os.PathLike, platform: str | None = None) -> SeriesMatrix:
    """A GSE family SOFT (``GSEnnn_family.soft.gz``) as the SeriesMatrix parse_series_matrix gives.

    ``^SERIES``: ``!Series_key = value`` lines -> ``series``. ``^SAMPLE``: ``!Sample_key = value``
    lines -> one sample-sheet row with the series matrix's columns (title, geo_accession, ...,
    one column per characteristics key), and the table between ``!sample_table_begin`` and
    ``!sample_table_end`` -> that sample's column of ``table`` (its VALUE column by ID_REF;
    the samples' IDs outer-joined, in the first sample's order, new IDs after). ``^PLATFORM``
    sections are skipped here (parse_platform reads them). With ``platform`` only the samples
    whose !Sample_platform_id is that platform are kept; the others are listed in
    ``other_platform_samples``. A sample without a table has an all-NaN column.
    """
    path = Path(path)
    E = SeriesMatrixError
    series: dict[str, list[str]] = {}
    samples: list[dict] = []  # {"acc", "line", "fields": [(n, key, value)], "table": (...)}
    section = kind = None
    cur = None
    in_table = None  # (line of the begin marker, kind of table)
    tab_lines: list[str] = []
    tab_n: list[int] = []
    seen_series = False

    def close_table(n_end: int) -> None:
        cur["table"] = (in_table[0], list(tab_lines), list(tab_n))

    for n, line in _lines(path, E):
        if in_table is not None:
            low = line.strip().lower()
            if low.startswith("!sample_table_end") or low.startswith("!platform_table_end"):
                if in_table[1] == "sample":
                    close_table(n)
                in_table = None
                tab_lines.clear()
                tab_n.clear()
                continue
            if line.startswith("^"):
                raise E(
                    f"{path}, line {in_table[0]}: !{in_table[1]}_table_begin without "
                    f"!{in_table[1]}_table_end before the next section (line {n})"
                )
            if in_table[1] == "sample" and line.strip() != "":
                tab_lines.append(line)
                tab_n.append(n)
            continue
        if line.startswith("^"):
            key, _, val = line[1:].partition("=")
            kind, section = key.strip().upper(), val.strip()
            if kind == "SAMPLE":
                cur = {"acc": section, "line": n, "fields": [], "table": None}
                samples.append(cur)
            else:
                cur = None
                seen_series |= kind == "SERIES"
            continue
        low = line.strip().lower()
        if low.startswith("!sample_table_begin") or low.startswith("!platform_table_begin"):
            what = "sample" if low.startswith("!sample") else "platform"
            if what == "sample" and cur is None:
                raise E(f"{path}, line {n}: !sample_table_begin outside a ^SAMPLE section")
            in_table = (n, what)
            continue
        if not line.startswith("!"):
            continue
        key, sep, val = line[1:].partition("=")
        key, val = key.strip(), val.strip()
        if not sep:
            continue
        if kind == "SERIES" and key.startswith("Series_"):
            if val != "":
                series.setdefault(key[len("Series_"):], []).append(val)
        elif kind == "SAMPLE" and key.startswith("Sample_"):
            cur["fields"].append((n, key[len("Sample_"):], val))
    if in_table is not None:
        raise E(
            f"{path}, line {in_table[0]}: !{in_table[1]}_table_begin without "
            f"!{in_table[1]}_table_end (truncated file?)"
        )
    if not seen_series and not samples:
        raise E(f"{path}: no ^SERIES or ^SAMPLE section; expected a GEO family SOFT (GSEnnn_family.soft.gz)")
    if not samples:
        raise E(f"{path}: no ^SAMPLE sections; expected one per GSM of the series")

    other: list[str] = []
    if platform is not None:
        keep = []
        for smp in samples:
            plats = [v for _, k, v in smp["fields"] if k == "platform_id"]
            (keep if platform in plats else other).append(smp)
        if not keep:
            found = sorted({v for smp in samples for _, k, v in smp["fields"] if k == "platform_id"})
            raise E(
                f"{path}: no sample on platform {platform} (the samples' !Sample_platform_id: "
                f"{found}); set platform.accession to the series' platform"
            )
        other = [smp["acc"] for smp in other]
        if other:
            log.info("%s: %d sample(s) of other platforms left out: %s", path, len(other), other[:10])
        samples = keep

    for smp in samples:
        accs = [v for _, k, v in smp["fields"] if k == "geo_accession"]
        if not accs:
            smp["fields"].insert(0, (smp["line"], "geo_accession", smp["acc"]))
        elif accs[0] != smp["acc"]:
            raise E(
                f"{path}, line {smp['line']}: ^SAMPLE = {smp['acc']} but its !Sample_geo_accession "
                f"is {accs[0]}; expected the same GSM id"
            )
    # the series matrix layout: the j-th occurrence of a key is one line with a cell per sample
    slots: dict[tuple[str, int], list[str]] = {}
    first_line: dict[tuple[str, int], int] = {}
    nsamp = len(samples)
    for i, smp in enumerate(samples):
        count: dict[str, int] = {}
        for n, key, val in smp["fields"]:
            j = count.get(key, 0)
            count[key] = j + 1
            slot = slots.setdefault((key, j), [""] * nsamp)
            slot[i] = val
            first_line[(key, j)] = min(first_line.get((key, j), n), n)
    # each (key, j) slot starts on a distinct file line, which orders the columns as in the file
    order = sorted(slots, key=lambda kj: first_line[kj])
    lines_for = [(first_line[kj], kj[0], slots[kj]) for kj in order]
    sheet = _build_samples(path, lines_for, None)

    cols: dict[str, pd.Series] = {}
    for smp in samples:
        cols[smp["acc"]] = _sample_values(path, smp)
    ids: list[str] = []
    seen_ids: set[str] = set()
    for series_ in cols.values():
        for x in series_.index:
            if x not in seen_ids:
                seen_ids.add(x)
                ids.append(x)
    index = pd.Index(ids, name="ID_REF", dtype=object)
    table = pd.DataFrame({g: v.reindex(index).to_numpy(dtype="float64") for g, v in cols.items()}, index=index)
    accession = (series.get("geo_accession") or [""])[0]
    if not accession:
        m = re.search(r"GSE\d+", path.name)
        accession = m.group(0) if m else ""
    return SeriesMatrix(accession=accession, series=series, samples=sheet, table=table,
                        other_platform_samples=other)


def _sample_values(path: Path, smp: dict) -> pd.Series:
    """One ^SAMPLE's VALUE column by ID_REF (float64; null/NA/empty are NaN)."""
    E = SeriesMatrixError
    gsm = smp["acc"]
    if smp["table"] is None:
        return pd.Series(dtype="float64", index=pd.Index([], dtype=object))
    begin, lines, numbers = smp["table"]
    if not lines:
        return pd.Series(dtype="float64", index=pd.Index([], dtype=object))
    header = [_unquote(c) for c in lines[0].split("\t")]
    if "ID_REF" not in header or "VALUE" not in header:
        raise E(
            f"{path}, line {numbers[0]}: sample {gsm}'s table header is {header[:8]}; expected "
            "columns ID_REF and VALUE"
        )
    iid, ival = header.index("ID_REF"), header.index("VALUE")
    ids, vals = [], []
    for line, n in zip(lines[1:], numbers[1:]):
        cells = line.split("\t")
        if len(cells) <= max(iid, ival):
            raise E(
                f"{path}, line {n}: sample {gsm}'s table row has {len(cells)} cells, expected "
                f"{len(header)} as in its header (line {numbers[0]})"
            )
        ids.append(_unquote(cells[iid]))
        vals.append(_unquote(cells[ival]))
    ids_s = pd.Series(ids, dtype=object)
    if (ids_s == "").any():
        j = int(np.flatnonzero((ids_s == "").to_numpy())[0])
        raise E(f"{path}, line {numbers[1 + j]}: sample {gsm}: empty ID_REF; expected a probe id")
    dup = ids_s.duplicated()
    if dup.any():
        j = int(np.flatnonzero(dup.to_numpy())[0])
        raise E(f"{path}, line {numbers[1 + j]}: sample {gsm}: duplicate ID_REF {ids[j]!r}")
    raw = pd.Series(vals, dtype=object)
    null = raw.isin(NULL_VALUES)
    num = pd.to_numeric(raw.where(~null, None), errors="coerce")
    bad = num.isna() & ~null
    if bad.any():
        j = int(np.flatnonzero(bad.to_numpy())[0])
        raise E(
            f"{path}, line {numbers[1 + j]}: sample {gsm}: VALUE {vals[j]!r} is not a number; "
            "expected numbers or null/NA/empty"
        )
    arr = num.to_numpy(dtype="float64", na_value=np.nan)
    inf = np.isinf(arr)
    if inf.any():
        j = int(np.flatnonzero(inf)[0])
        raise E(
            f"{path}, line {numbers[1 + j]}: sample {gsm}: infinite VALUE {vals[j]!r}; expected "
            "finite numbers or null/NA/empty for missing values"
        )
    return pd.Series(arr, index=pd.Index(ids, dtype=object))


# --------------------------------------------------------------------------------------------
# platform annotation


def parse_platform(
    path: str | os.PathLike, symbol_column: str | None = None, accession: str | None = None
) -> pd.DataFrame:
    """Probe -> gene symbol table from a GPL .annot(.gz), a platform or family SOFT(.gz) or a TSV.

    The table is the block between ``!platform_table_begin`` and ``!platform_table_end`` when
    present (reading stops there, so a family SOFT's sample sections are never read); otherwise
    every line not starting with '#', '!' or '^'. In a file with several ``^PLATFORM = GPLn``
    sections (a GSE family SOFT of a series on two platforms) ``accession`` picks the section;
    without it the first table is read. The probe column is "ID" (else the first column).

    The symbol column is ``symbol_column``, else the first of SYMBOL_COLUMNS present, else an
    Affymetrix Gene/Exon ST ``gene_assignment`` column (``NM_1 // SYM // title // 1p36 // 100 ///
    NR_2 // SYM2 // ...``: the symbol is the second " // " field of each " /// " part; one
    distinct symbol gives that symbol, several give "A /// B", i.e. multi-gene as in .annot
    files). Returns columns ["ID", "symbol"], both str, symbol "" when missing ("---" too);
    multi-gene cells such as "A /// B" are kept for collapse_probes to judge.
    """
    path = Path(path)
    E = PlatformError
    plain: list[str] = []
    plain_n: list[int] = []
    table: list[str] = []
    table_n: list[int] = []
    begin = end = None
    section = None  # the ^PLATFORM accession we are in (None outside one / not a SOFT)
    sections: list[str] = []
    skipping = None  # line of the !platform_table_begin being skipped
    for n, line in _lines(path, E):
        if skipping is not None:
            if line.strip().lower().startswith("!platform_table_end"):
                skipping = None
            continue
        if begin is not None:
            if line.strip().lower().startswith("!platform_table_end"):
                end = n
                break
            if line.strip() != "":
                table.append(line)
                table_n.append(n)
            continue
        s = line.strip()
        if s.startswith("^"):
            key, _, val = s[1:].partition("=")
            section = val.strip() if key.strip().upper() == "PLATFORM" else None
            if section:
                sections.append(section)
            continue
        if s.lower().startswith("!platform_table_begin"):
            if accession is not None and section is not None and section != accession:
                skipping = n  # another platform's table in a family SOFT
                continue
            begin = n
            continue
        if s == "" or s[0] in "#!":
            continue
        if sections:  # a SOFT file: data lines outside a platform table are not the platform
            continue
        plain.append(line)
        plain_n.append(n)
    if skipping is not None:
        raise E(f"{path}, line {skipping}: !platform_table_begin without !platform_table_end (truncated file?)")
    if accession is not None and sections and accession not in sections:
        raise E(
            f"{path}: no ^PLATFORM = {accession} section (the file has {sections}); expected the "
            "series' platform, set platform.accession to one of them"
        )
    if begin is not None:
        if end is None:
            raise E(f"{path}, line {begin}: !platform_table_begin without !platform_table_end (truncated file?)")
        lines, numbers = table, table_n
    else:
        lines, numbers = plain, plain_n
    if not lines:
        raise E(f"{path}: no platform table found; expected a header line with ID and a gene symbol column")
    try:
        raw = pd.read_csv(
            io.StringIO("\n".join(lines)),
            sep="\t",
            dtype=str,
            keep_default_na=False,
            quoting=3,  # csv.QUOTE_NONE: descriptions contain stray quotes
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise E(f"{path}: cannot parse the platform table starting at line {numbers[0]} ({exc})") from exc
    raw.columns = [_unquote(str(c)) for c in raw.columns]
    found = list(raw.columns)
    id_col = "ID" if "ID" in found else found[0]
    if symbol_column is not None:
        if symbol_column not in found:
            raise E(f"{path}: symbol column {symbol_column!r} not found; columns are {found}")
        sym_col = symbol_column
    else:
        sym_col = next((c for c in SYMBOL_COLUMNS if c in found), None)
        if sym_col is None:
            lower = {c.lower(): c for c in found}
            sym_col = next((lower[c.lower()] for c in SYMBOL_COLUMNS if c.lower() in lower), None)
            if sym_col is None and GENE_ASSIGNMENT in lower:
                sym_col = lower[GENE_ASSIGNMENT]
        if sym_col is None:
            raise E(
                f"{path}: no gene symbol column (looked for {SYMBOL_COLUMNS} and {GENE_ASSIGNMENT!r}); "
                f"columns are {found}; set platform.symbol_column"
            )
    ids = raw[id_col].map(_unquote)
    sym = raw[sym_col].map(_unquote)
    if sym_col.lower() == GENE_ASSIGNMENT:
        data_lines = numbers[1:]  # numbers[0] is the header
        sym = pd.Series(
            [_gene_assignment_symbol(v, path, data_lines[i], sym_col) for i, v in enumerate(sym)],
            index=sym.index, dtype=object,
        )
    sym = sym.where(~sym.isin(MISSING_SYMBOLS), "")
    keep = ids != ""
    out = pd.DataFrame({"ID": ids[keep].astype(str), "symbol": sym[keep].astype(str)}).reset_index(drop=True)
    dup = out["ID"].duplicated()
    if dup.any():
        raise E(f"{path}: duplicate probe ID(s) {sorted(set(out.loc[dup, 'ID']))[:5]} in column {id_col!r}")
    return out


# Affymetrix Gene/Exon ST platforms' composite annotation column (GPL6244, GPL17586, ...).
GENE_ASSIGNMENT = "gene_assignment"


def _gene_assignment_symbol(cell: str, path: Path, line: int, column: str) -> str:
    """``acc // SYMBOL // title // cytoband // entrez /// acc2 // SYMBOL2 // ...`` -> the
    distinct symbols in order, joined with " /// " (one symbol: that symbol; none: "")."""
    cell = cell.strip()
    if cell in MISSING_SYMBOLS:
        return ""
    symbols: list[str] = []
    for part in cell.split("///"):
        part = part.strip()
        if part in MISSING_SYMBOLS:
            continue
        fields = [f.strip() for f in part.split("//")]
        if len(fields) < 2:
            raise PlatformError(
                f"{path}, line {line}, column {column}: {part[:60]!r} is not a gene assignment; "
                "expected 'accession // symbol // description // ...' parts separated by ' /// ' "
                "(or set platform.symbol_column to a plain symbol column)"
            )
        sym = fields[1]
        if sym not in MISSING_SYMBOLS and sym not in symbols:
            symbols.append(sym)
    return " /// ".join(symbols)
