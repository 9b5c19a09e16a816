"""Count tables in the layouts GEO supplements use, read without ever shifting a column.

GEO supplementary count tables come from R's ``write.table`` / ``write.csv``, featureCounts,
HTSeq, RSEM or a spreadsheet: tab, comma or space separated, gzip or not, a header that is one
field short (R's default: no cell above the row names) or has an empty first cell, annotation
columns beside the samples (``gene_name``, featureCounts' Chr/Start/End/Strand/Length), expected
counts with decimals. The header and the first data row are compared before anything is read,
so a short header is recognised instead of moving every sample onto its neighbour's counts.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from prepost.io.geo import CountTableError, _is_gzip, _lines, _unquote, first_duplicate

__all__ = ["CountTable", "read_counts", "read_count_table", "collapse_labels", "ANNOTATION_COLUMNS", "DUPLICATES"]

log = logging.getLogger(__name__)

# Column names (case-insensitive) that hold gene annotation, never a sample: featureCounts'
# per-gene columns, GENCODE/Ensembl attribute names, NCBI's annotation columns.
ANNOTATION_COLUMNS = {
    "chr", "start", "end", "strand", "length", "gene_name", "gene_symbol", "symbol",
    "gene_type", "gene_biotype", "biotype", "description", "genetype", "gene_length",
    "effective_length", "transcript_id(s)", "transcript_ids", "entrez", "entrezid", "entrez_id",
    "ensembl", "ensembl_gene_id", "hgnc_symbol", "gene_description", "chromosome", "locus",
}
# What to do with a gene id that appears on several rows.
DUPLICATES = ("error", "sum", "first")
NULL_CELLS = {"NA", "NaN", "nan", "null", "NULL", ""}


@dataclass
class CountTable:
    """Genes x samples int64 counts, the annotation columns beside them, and how it was read."""

    counts: pd.DataFrame
    annotation: pd.DataFrame
    layout: dict = field(default_factory=dict)


def _cells(line: str, sep: str | None) -> list[str]:
    """One line split as the table reader will split it (quotes respected)."""
    if sep is None:
        try:
            return shlex.split(line, posix=True)
        except ValueError:
            return line.split()
    return next(csv.reader([line], delimiter=sep, quotechar='"'))


def _strip_trailing(cells: list[str]) -> list[str]:
    cells = list(cells)
    while len(cells) > 1 and cells[-1].strip() == "":
        cells.pop()
    return cells


def _head(path: Path) -> tuple[int, str | None, int | None, str | None]:
    """(number of leading '#' comment lines, header line, its line number, first data line)."""
    n_comment, header, header_no = 0, None, None
    for n, line in _lines(path, CountTableError):
        if header is None:
            if line.startswith("#"):
                n_comment += 1
                continue
            header, header_no = line, n
            continue
        if line.strip() != "":
            return n_comment, header, header_no, line
    return n_comment, header, header_no, None


def _separator(header: str, first: str | None) -> tuple[str | None, str]:
    """Tab, comma or whitespace, from the header and the first row; the name for the layout."""
    both = header + "\n" + (first or "")
    if "\t" in both:
        return "\t", "tab"
    if "," in header or (first is not None and "," in first):
        return ",", "comma"
    if len(header.split()) > 1 or (first is not None and len(first.split()) > 1):
        return None, "whitespace"
    return "\t", "tab"


def _read_frame(path: Path, sep: str | None, skip: int, ncol: int, dtype) -> pd.DataFrame:
    """Every data row with one spare column, so a row longer than the header is seen, not cut."""
    opts = dict(
        header=None,
        skiprows=skip,
        names=list(range(ncol + 1)),
        index_col=False,
        dtype=dtype,
        keep_default_na=False,
        na_values=[],
        compression="gzip" if _is_gzip(path) else None,
        encoding="utf-8-sig",
        skip_blank_lines=True,
        quotechar='"',
    )
    if sep is None:
        opts["sep"] = r"\s+"
    else:
        opts["sep"] = sep
    try:
        return pd.read_csv(path, engine="c", **opts)
    except (pd.errors.ParserError, ValueError, EOFError, OSError) as exc:
        if isinstance(exc, ValueError) and dtype is not str and not isinstance(exc, pd.errors.ParserError):
            raise  # a non-numeric cell on the fast path: the caller re-reads as text
        raise CountTableError(f"{path}: cannot parse the count table ({exc})") from exc


def _data_line_numbers(path: Path, skip: int) -> np.ndarray:
    """File line number of each data row (blank lines skipped, as the reader skips them)."""
    return np.fromiter(
        (n for n, line in _lines(path, CountTableError) if n > skip and line.strip() != ""),
        dtype=np.int64,
    )


def read_counts(
    path: str | os.PathLike,
    gene_column: str | None = None,
    *,
    annotation_columns: list[str] | None = None,
    round_values: bool = False,
    duplicates: str = "error",
) -> CountTable:
    """Genes x samples int64 counts from a count table as GEO supplements write them.

    - Separator: tab, else comma, else runs of whitespace (R's ``write.table``), gzip or plain;
      leading '#' comment lines (featureCounts) skipped.
    - Header one field short (R's row names without a header cell): recognised by comparing
      the header's width with the first data row's, and the first column read as the gene ids.
      Any other width mismatch is an error; a row longer than the header is an error.
    - Gene ids: the first column, or ``gene_column`` by name.
    - Annotation columns: ``annotation_columns`` when given (all must exist), else detected: a
      known annotation name (ANNOTATION_COLUMNS, e.g. featureCounts' Chr..Length, gene_name) or
      a column in which no cell is a number. They are returned beside the counts, never read as
      samples. A sample column with some text cells is an error naming the cell.
    - Non-whole values (RSEM/salmon expected counts) are an error unless ``round_values`` (then
      rounded half to even, R's ``round``; the number of cells changed is in the layout).
    - A gene id on several rows: ``duplicates`` = "error" (default: a repeat is either two loci
      sharing a name or a broken export such as spreadsheet date conversion, and only the user
      knows which), "sum" or "first" (kept), with the ids listed in the layout.
    - HTSeq's summary rows (``__no_feature``...) are counters, not genes: dropped and listed.
    """
    path = Path(path)
    E = CountTableError
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, not {duplicates!r}")
    if path.is_file() and tarfile.is_tarfile(path):
        raise E(
            f"{path} is a tar archive (e.g. GEO's GSExxx_RAW.tar of per-sample files); prepost "
            "does not extract archives. Give counts.file a single count table (genes x samples), "
            "or merge the per-sample files into one and use dataset kind 'local'"
        )
    n_comment, header, header_no, first = _head(path)
    if header is None:
        raise E(f"{path}: empty file; expected a header line then one row per gene")
    if first is None:
        raise E(f"{path}, line {header_no}: a header but no data rows; expected one row per gene")
    sep, sep_name = _separator(header, first)
    names = [_unquote(c) for c in _strip_trailing(_cells(header, sep))]
    row = _strip_trailing(_cells(first, sep))
    layout: dict = {"separator": sep_name, "comment_lines": n_comment, "header_one_short": False}
    if len(row) == len(names) + 1:
        # R's write.table default: the row names have no header cell. Every name belongs one
        # column to the right of where a naive reader puts it.
        names = [""] + names
        layout["header_one_short"] = True
        log.info("%s: header has one field fewer than the rows: first column read as gene ids", path)
    elif len(row) != len(names):
        raise E(
            f"{path}: the header (line {header_no}) has {len(names)} fields but the first data row "
            f"has {len(row)}; expected the same number, or one more in the rows when the first "
            "column holds the gene ids without a header cell"
        )
    if len(names) < 2:
        raise E(f"{path}, line {header_no}: a single column; expected gene ids then one column per sample")
    gcol = 0
    if gene_column is not None:
        if gene_column not in names:
            raise E(f"{path}: gene column {gene_column!r} not found; columns are {names}")
        gcol = names.index(gene_column)
    dupn = pd.Index(names)[pd.Index(names).duplicated()]
    if len(dupn):
        raise E(f"{path}, line {header_no}: duplicate column name(s) {sorted(set(dupn))[:5]}")

    declared = annotation_columns is not None
    if declared:
        missing = [c for c in annotation_columns if c not in names]
        if missing:
            raise E(f"{path}: counts.annotation_columns {missing} not in the header; columns are {names}")
        ann_idx = [names.index(c) for c in annotation_columns if names.index(c) != gcol]
    else:
        ann_idx = [i for i, c in enumerate(names) if i != gcol and c.strip().lower() in ANNOTATION_COLUMNS]
    ncol = len(names)
    skip = n_comment + 1
    text_cols = {gcol, *ann_idx}
    try:  # fast path: every other column parses as a number
        raw = _read_frame(path, sep, skip, ncol, {i: (str if i in text_cols or i == ncol else "float64")
                                                    for i in range(ncol + 1)})
        numeric = True
    except ValueError:
        raw = _read_frame(path, sep, skip, ncol, str)
        numeric = False
    lines = None

    def line_of(j: int) -> int:
        nonlocal lines
        if lines is None:
            lines = _data_line_numbers(path, header_no)
        return int(lines[j]) if j < len(lines) else header_no + 1 + j

    extra = raw[ncol].fillna("").astype(str).str.strip() != ""
    if extra.any():
        j = int(np.flatnonzero(extra.to_numpy())[0])
        raise E(
            f"{path}, line {line_of(j)}: more fields than the {ncol} columns of the header "
            f"(line {header_no}); expected gene id + one value per column"
        )
    raw = raw.drop(columns=ncol)
    genes = raw[gcol].fillna("").astype(str).map(_unquote).str.strip()
    if (genes == "").any():
        j = int(np.flatnonzero((genes == "").to_numpy())[0])
        raise E(f"{path}, line {line_of(j)}: empty gene id in column {names[gcol] or 1!r}")

    sample_idx = [i for i in range(ncol) if i not in text_cols]
    values: dict[int, np.ndarray] = {}
    for i in sample_idx:  # per sample column (a few hundred), vectorised over genes
        s = raw[i]
        if numeric and pd.api.types.is_float_dtype(s):
            values[i] = s.to_numpy(dtype=float)
            continue
        txt = s.fillna("").astype(str).map(_unquote).str.strip()
        num = pd.to_numeric(txt.where(~txt.isin(NULL_CELLS), None), errors="coerce")
        if not declared and num.isna().all() and not txt.isin(NULL_CELLS).all():
            ann_idx.append(i)  # no cell is a number: annotation (e.g. gene names), not a sample
            continue
        values[i] = num.to_numpy(dtype=float, na_value=np.nan)
    ann_idx = sorted(ann_idx)
    sample_idx = [i for i in sample_idx if i in values]
    if not sample_idx:
        raise E(f"{path}: no sample columns besides the gene id and annotation columns {[names[i] for i in ann_idx]}")
    block = np.column_stack([values[i] for i in sample_idx])
    _check_counts(path, block, [names[i] for i in sample_idx], sample_idx, line_of, round_values,
                  lambda: raw if not numeric else _read_frame(path, sep, skip, ncol, str))
    if round_values:
        rounded = np.round(block)
        layout["rounded_cells"] = int((rounded != block).sum())
        block = rounded
    counts = pd.DataFrame(block.astype(np.int64), columns=[names[i] for i in sample_idx],
                          index=pd.Index(genes.to_numpy(dtype=object), name="gene"))
    annotation = raw[ann_idx].copy()
    annotation.columns = [names[i] for i in ann_idx]
    annotation = annotation.fillna("").astype(str).apply(lambda c: c.map(_unquote))
    annotation.index = counts.index
    layout["gene_column"] = names[gcol] or "(no header cell)"
    layout["annotation_columns"] = [names[i] for i in ann_idx]
    layout["annotation_columns_from"] = "config" if declared else "detected"
    layout["samples"] = len(sample_idx)

    summary_rows = counts.index.str.startswith("__")
    if summary_rows.any():  # HTSeq-count appends __no_feature, __ambiguous, ...
        layout["summary_rows_dropped"] = list(counts.index[summary_rows])
        log.info("%s: dropped HTSeq summary row(s) %s", path, layout["summary_rows_dropped"])
        counts, annotation = counts[~summary_rows], annotation[~summary_rows]
    counts, annotation = _duplicates(path, counts, annotation, duplicates, layout, line_of)
    layout["genes"] = int(len(counts))
    return CountTable(counts=counts, annotation=annotation, layout=layout)


def _check_counts(path, block, cols, idx, line_of, round_values, text) -> None:
    """Stop at the first cell that is not a count, naming line, column and the cell as written
    (``text()`` gives the table as text, read again only when there is something to report)."""
    E = CountTableError

    def cell(j, k):
        return _unquote(str(text().iloc[j, idx[k]]))

    bad = ~np.isfinite(block)
    if bad.any():
        j, k = np.argwhere(bad)[0]
        v = cell(j, k)
        hint = ""
        if re.search(r"[A-Za-z]", v) and v.strip("+-").lower() not in {"inf", "infinity", "nan", "na", "null"}:
            hint = (f"; if column {cols[k]!r} is gene annotation, not a sample, list it in "
                    "counts.annotation_columns")
        raise E(
            f"{path}, line {line_of(j)}, column {cols[k]}: value {v!r} is not a count; "
            f"expected a non-negative integer in every cell (no NA){hint}"
        )
    neg = block < 0
    if neg.any():
        j, k = np.argwhere(neg)[0]
        raise E(f"{path}, line {line_of(j)}, column {cols[k]}: negative count {cell(j, k)!r}; expected non-negative integers")
    frac = block != np.round(block)
    if frac.any() and not round_values:
        j, k = np.argwhere(frac)[0]
        raise E(
            f"{path}, line {line_of(j)}, column {cols[k]}: value {cell(j, k)!r} is not a whole number; "
            "counts must be integers. For expected counts (RSEM, salmon, kallisto) set "
            "counts.round: true to round them, as DESeq2's users do; for normalised values "
            "(TPM/FPKM/CPM/log2) use dataset kind 'local' with values: log2 or intensity"
        )


def collapse_labels(df: pd.DataFrame, how: str) -> pd.DataFrame:
    """Rows sharing an index label made one, in order of first appearance: "sum" adds them (NaN
    only where every row is NaN), "first" keeps the first. The one rule for repeated gene ids,
    ids mapped to one symbol, and technical replicates (columns: pass ``df.T``)."""
    if how == "sum":
        return df.groupby(level=0, sort=False).sum(min_count=1)
    if how == "first":
        return df[~df.index.duplicated(keep="first")]
    raise ValueError(f"collapse_labels: how must be 'sum' or 'first', not {how!r}")


def _duplicates(path, counts, annotation, how, layout, line_of):
    hit = first_duplicate(counts.index)
    if hit is None:
        return counts, annotation
    dup = counts.index.duplicated(keep=False)
    ids = counts.index[dup]
    n_ids = int(pd.Index(ids).nunique())
    if how == "error":
        j, first = hit
        raise CountTableError(
            f"{path}, line {line_of(j)}: duplicate gene id {counts.index[j]!r} (first on line "
            f"{line_of(first)}); {n_ids} id(s) appear on several rows. Set counts.duplicates: sum "
            "(two loci sharing a name) or first (keep the first row), or fix the file"
        )
    layout["duplicate_ids"] = {"policy": how, "ids": n_ids, "rows": int(dup.sum()),
                               "examples": sorted(pd.Index(ids).unique())[:10]}
    merged = collapse_labels(counts, how)
    return merged, collapse_labels(annotation, "first").reindex(merged.index)


def read_count_table(path: str | os.PathLike, gene_column: str | None = None, **kw) -> pd.DataFrame:
    """The counts alone (see read_counts)."""
    return read_counts(path, gene_column, **kw).counts
