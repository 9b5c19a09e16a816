"""Atomic file output: a reader never sees a half-written table.

Every writer goes to a temporary name in the destination folder and renames, so a killed job
leaves either the old file or nothing, and Snakemake's rerun-incomplete starts clean.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

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
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_tsv(df: pd.DataFrame, dest: str | os.PathLike, *, index: bool = False) -> None:
    """Tab-separated, 6 significant digits, so two runs give byte-identical tables."""
    with atomic_path(dest) as tmp:
        df.to_csv(tmp, sep="\t", index=index, float_format=FLOAT_FORMAT, na_rep="NA")


def read_tsv(path: str | os.PathLike, **kw) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False, **kw)


def write_parquet(df: pd.DataFrame, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=True)


def write_text(text: str, dest: str | os.PathLike) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
