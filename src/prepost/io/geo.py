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
# platform annotation


def parse_platform(path: str | os.PathLike, symbol_column: str | None = None) -> pd.DataFrame:
    """Probe -> gene symbol table from a GPL .annot(.gz), a family SOFT(.gz) or a plain TSV.

    The table is the block between ``!platform_table_begin`` and ``!platform_table_end`` when
    present (reading stops there, so a family SOFT's sample sections are never read); otherwise
    every line not starting with '#', '!' or '^'. The probe column is "ID" (else the first
    column). Returns columns ["ID", "symbol"], both str, symbol "" when missing ("---" too);
    multi-gene cells such as "A /// B" are kept as written for collapse_probes to judge.
    """
    path = Path(path)
    E = PlatformError
    plain: list[str] = []
    table: list[str] = []
    first_data_line = None
    begin = end = None
    for n, line in _lines(path, E):
        if begin is not None:
            if line.strip().lower().startswith("!platform_table_end"):
                end = n
                break
            if line.strip() != "":
                if first_data_line is None:
                    first_data_line = n
                table.append(line)
            continue
        s = line.strip()
        if s.lower().startswith("!platform_table_begin"):
            begin = n
            continue
        if s == "" or s[0] in "#!^":
            continue
        if first_data_line is None:
            first_data_line = n
        plain.append(line)
    if begin is not None:
        if end is None:
            raise E(f"{path}, line {begin}: !platform_table_begin without !platform_table_end (truncated file?)")
        lines = table
    else:
        lines = plain
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
        raise E(f"{path}: cannot parse the platform table starting at line {first_data_line} ({exc})") from exc
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
        if sym_col is None:
            raise E(
                f"{path}: no gene symbol column (looked for {SYMBOL_COLUMNS}); columns are {found}; "
                "set platform.symbol_column"
            )
    ids = raw[id_col].map(_unquote)
    sym = raw[sym_col].map(_unquote)
    sym = sym.where(~sym.isin(MISSING_SYMBOLS), "")
    keep = ids != ""
    out = pd.DataFrame({"ID": ids[keep].astype(str), "symbol": sym[keep].astype(str)}).reset_index(drop=True)
    dup = out["ID"].duplicated()
    if dup.any():
        raise E(f"{path}: duplicate probe ID(s) {sorted(set(out.loc[dup, 'ID']))[:5]} in column {id_col!r}")
    return out
