"""Atomic file output: a reader never sees a half-written table.

Every writer goes to a temporary name in the destination folder and renames, so a killed job
leaves either the old file or nothing, and Snakemake's rerun-incomplete starts clean.
"""

from __future__ import annotations

import csv
import errno
import glob
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:  # pandas is imported where a frame is read: a job that writes one record
    import pandas as pd  # (the download jobs) should not pay its 0.4 s import

FLOAT_FORMAT = "%.6g"


def _default_mode() -> int:
    """The mode an ordinary open() would give (mkstemp's 0600 would hide results from others)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only on success."""
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A job killed by SIGKILL never reaches the cleanup below; Snakemake gives an output one
        # writer at a time, so its leftovers can go when the rerun writes it again.
        for stale in dest.parent.glob(f".{glob.escape(dest.name)}.{'?' * 8}.tmp"):  # mkstemp's 8
            stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as err:
        raise _unwritable(dest, err) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT) or str(err.filename) == str(tmp_path):
                raise _unwritable(dest, err) from err
            raise
        try:
            os.chmod(tmp_path, _default_mode())
            os.replace(tmp_path, dest)
        except OSError as err:
            raise _unwritable(dest, err) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def _unwritable(dest: Path, err: OSError) -> OSError:
    """The same OSError subclass, with a message that names the output and the folder to fix
    (the raw error names only a hidden temporary file)."""
    return type(err)(
        err.errno,
        f"cannot write {dest}: {err.strerror or err}; the folder {dest.parent} must be writable "
        "(read-only file system, permissions or a full disk?)",
    )


def write_tsv(df: pd.DataFrame, dest: str | os.PathLike, *, index: bool = False) -> None:
    """Tab-separated, 6 significant digits, so two runs give byte-identical tables. The
    frame's ``attrs`` are set aside while writing: pandas deep-copies them into every column
    and chunk to_csv takes, and a DE table's attrs hold per-gene diagnostics (1.4 s of a
    200-sample DE job went to those copies, issue 19)."""
    attrs, df.attrs = df.attrs, {}
    try:
        with atomic_path(dest) as tmp:
            df.to_csv(tmp, sep="\t", index=index, float_format=FLOAT_FORMAT, na_rep="NA")
    finally:
        df.attrs = attrs


def read_tsv(path: str | os.PathLike, **kw) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False, **kw)


def write_records(rows: Iterable[dict], columns: list[str], dest: str | os.PathLike) -> None:
    """A few rows of text and integers (None as NA) in the bytes write_tsv gives the same
    rows, without pandas: csv's minimal quoting is the one pandas' to_csv uses. Floats are
    refused (write_tsv's 6-digit format is pandas' to apply)."""
    cells = []
    for row in rows:
        line = []
        for c in columns:
            v = row.get(c)
            if isinstance(v, float) or not (v is None or isinstance(v, (str, int))):
                raise TypeError(f"{dest}: column {c!r} holds {v!r}; write_records takes text, "
                                "integers and None (use write_tsv for other values)")
            line.append("NA" if v is None else str(v))
        cells.append(line)
    with atomic_path(dest) as tmp:
        with open(tmp, "w", newline="") as fh:
            out = csv.writer(fh, delimiter="\t", lineterminator="\n")
            out.writerow(columns)
            out.writerows(cells)


def read_records(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a small TSV as text (header keys; NA stays the text "NA"), without pandas."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def write_parquet(df: pd.DataFrame, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=True)


def write_text(text: str, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def _json_safe(obj):
    """JSON's own values only, reproducible: floats to FLOAT_FORMAT's 6 significant digits (as
    the TSVs), NaN to null, infinities to the strings "Inf" / "-Inf" (as R prints them), numpy
    scalars to Python, tuples to lists."""
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "Inf" if obj > 0 else "-Inf"
        return float(FLOAT_FORMAT % obj)
    return obj


def write_json(obj, dest: str | os.PathLike) -> None:
    """Indented, keys sorted, floats as in write_tsv (see _json_safe): byte-identical reruns."""
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    write_text(text + "\n", dest)
