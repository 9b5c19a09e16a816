import os
import stat

import pandas as pd
import pytest

from prepost import files


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with files.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_tsv(pd.DataFrame({"a": [1.0]}), tmp_path / "x.tsv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.tsv").stat().st_mode) == 0o644


def test_tsv_float_format_is_stable(tmp_path):
    files.write_tsv(pd.DataFrame({"g": ["A"], "v": [1 / 3], "n": [float("nan")]}), tmp_path / "x.tsv")
    assert (tmp_path / "x.tsv").read_text() == "g\tv\tn\nA\t0.333333\tNA\n"


def test_records_are_the_bytes_write_tsv_writes(tmp_path):
    """The download jobs write their one-row records without pandas: same bytes as write_tsv,
    quoting included (a tab, a quote, a newline in a value), and read back as text."""
    cols = ["file", "url", "bytes", "note"]
    rows = [{"file": "GSE1_series_matrix.txt.gz", "url": "https://x/geo?acc=GSE1&f=a b",
             "bytes": 1234567, "note": None},
            {"file": 'odd"name', "url": "tab\there", "bytes": 0, "note": "two\nlines"}]
    files.write_records(rows, cols, tmp_path / "r.tsv")
    files.write_tsv(pd.DataFrame(rows, columns=cols), tmp_path / "p.tsv")
    assert (tmp_path / "r.tsv").read_bytes() == (tmp_path / "p.tsv").read_bytes()
    back = files.read_records(tmp_path / "r.tsv")
    assert back == [{k: "NA" if v is None else str(v) for k, v in r.items()} for r in rows]
    assert files.read_tsv(tmp_path / "r.tsv", dtype=str).fillna("NA").to_dict("records") == back


def test_records_refuse_floats(tmp_path):
    with pytest.raises(TypeError, match=r"r\.tsv: column 'v' holds 0\.5"):
        files.write_records([{"v": 0.5}], ["v"], tmp_path / "r.tsv")
    assert not (tmp_path / "r.tsv").exists()
