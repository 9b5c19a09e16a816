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
