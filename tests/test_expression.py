"""GEO2R's log2 rule and transform, and the probe -> gene collapse, checked by hand and against R."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prepost.prepare.dataset import expression as ex
from prepost.io import geo

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo" / "geo"


def _frame(values, ncol=1):
    return pd.DataFrame(np.asarray(values, dtype=float).reshape(-1, ncol))


# Quantiles below are R type 7 worked by hand: position h = (n - 1) p, linear between neighbours.
def test_needs_log2_small_range_is_log():
    # [1..5]: q25 = 2, q99 = 4 + .96 * 1 = 4.96, range 4 -> neither clause
    assert ex.needs_log2(_frame([1, 2, 3, 4, 5])) is False


def test_needs_log2_q99_clause():
    # [10, 20, 30, 40, 1000]: q99 = 40 + .96 * 960 = 961.6 > 100
    assert ex.needs_log2(_frame([10, 20, 30, 40, 1000])) is True


def test_needs_log2_range_clause_needs_positive_q25():
    # [1, 2, 3, 4, 80]: q99 = 4 + .96 * 76 = 76.96 <= 100, range 79 > 50, q25 = 2 > 0 -> log
    assert ex.needs_log2(_frame([1, 2, 3, 4, 80])) is True
    # [-60, 0, 1, 2, 3]: range 63 > 50 but q25 = 0 (not > 0), q99 = 2.96 -> already log
    assert ex.needs_log2(_frame([-60, 0, 1, 2, 3])) is False


def test_needs_log2_strict_threshold_and_nan_ignored():
    # constant 100: q99 = 100 is not > 100, range 0 -> no; 100.5 -> yes
    assert ex.needs_log2(_frame([100.0] * 8, 2)) is False
    assert ex.needs_log2(_frame([100.5] * 8, 2)) is True
    # NaN cells are ignored: [1, 2, 3, 4, 80] spread over a frame with NaNs is still "log"
    assert ex.needs_log2(_frame([1, np.nan, 2, 3, np.nan, 4, 80, np.nan], 2)) is True
    with pytest.raises(ex.ExpressionError):
        ex.needs_log2(_frame([np.nan, np.nan]))


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R not installed")
def test_needs_log2_matches_geo2r_in_r(tmp_path):
    rng = np.random.default_rng(7)
    cases = {
        "raw_mas5": rng.lognormal(6, 1.5, (200, 4)),
        "log2": rng.normal(7, 2, (200, 4)),
        "log2_with_negatives": rng.normal(1, 20, (200, 4)),
        "small_raw": rng.uniform(0.5, 90, (200, 4)),
        "near_threshold": rng.uniform(60, 101, (200, 4)),
    }
    cases["log2"][3, 1] = np.nan
    rows = []
    for name, m in cases.items():
        p = tmp_path / f"{name}.csv"
        pd.DataFrame(m).to_csv(p, index=False, na_rep="NA", float_format="%.17g")
        rows.append(name)
    script = tmp_path / "geo2r.R"
    script.write_text(
        "args <- commandArgs(TRUE)\n"
        "for (f in args) {\n"
        "  ex <- as.matrix(read.csv(f))\n"
        "  qx <- as.numeric(quantile(ex, c(0., 0.25, 0.5, 0.75, 0.99, 1.0), na.rm=T))\n"
        "  LogC <- (qx[5] > 100) || (qx[6]-qx[1] > 50 && qx[2] > 0)\n"
        "  cat(basename(f), LogC, '\\n')\n"
        "}\n"
    )
    out = subprocess.run(
        ["Rscript", str(script)] + [str(tmp_path / f"{n}.csv") for n in rows],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")
    r = {line.split()[0][:-4]: line.split()[1] == "TRUE" for line in out if line.strip()}
    py = {n: ex.needs_log2(pd.DataFrame(m)) for n, m in cases.items()}
    assert py == r
    assert set(r.values()) == {True, False}  # the cases exercise both answers


def test_log2_transform_nonpositive_to_nan():
    df = pd.DataFrame({"a": [4.0, -1.0, np.nan], "b": [0.0, 0.5, 1024.0]}, index=["p1", "p2", "p3"])
    out = ex.log2_transform(df)
    expected = pd.DataFrame({"a": [2.0, np.nan, np.nan], "b": [np.nan, -1.0, 10.0]}, index=["p1", "p2", "p3"])
    pd.testing.assert_frame_equal(out, expected)
    assert df.loc["p2", "a"] == -1.0  # input untouched


def test_log2_transform_int_input():
    out = ex.log2_transform(pd.DataFrame({"x": [1, 8]}))
    assert out["x"].tolist() == [0.0, 3.0] and out["x"].dtype == "float64"


# --- collapse ------------------------------------------------------------------------------

TABLE = pd.DataFrame(
    {
        "S1": [5.0, 7.0, 9.0, 8.0, 8.0, np.nan, 3.0, 6.0, 6.0, 1.0],
        "S2": [5.0, 7.0, 9.0, 8.0, 8.0, np.nan, np.nan, 4.0, 4.0, 2.0],
    },
    index=pd.Index(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "b_at", "a_at", "p10"], name="ID_REF"),
)
PLATFORM = pd.DataFrame(
    {
        "ID": ["p1", "p2", "p3", "p4", "p6", "p7", "b_at", "a_at", "p10", "unused"],
        "symbol": ["GENEA", "GENEA", "GENEB /// GENEC", "", "GENEB", "GENEB", "GENEC", "GENEC", " GENE0 ", "X"],
    }
)


def test_collapse_probes_documented_rule():
    out, counts = ex.collapse_probes(TABLE, PLATFORM)
    # by hand: GENEA -> p2 (mean 7 > 5); GENEB -> p7 (p6 has no value; p7's mean over its one
    # value is 3); GENEC -> a_at (b_at ties at mean 5, a_at first in sorted order);
    # p3 multi-gene, p4 no symbol, p5 not in the platform; " GENE0 " stripped
    expected = pd.DataFrame(
        {"S1": [1.0, 7.0, 3.0, 6.0], "S2": [2.0, 7.0, np.nan, 4.0]},
        index=pd.Index(["GENE0", "GENEA", "GENEB", "GENEC"], name="gene"),
    )
    pd.testing.assert_frame_equal(out, expected)
    assert counts == {
        "probes": 10, "not_in_platform": 1, "no_symbol": 1, "multi_symbol": 1, "no_values": 1,
        "not_highest_mean": 2, "genes": 4,
    }
    assert all(isinstance(v, int) for v in counts.values())


def test_collapse_tie_uses_sorted_probe_id_not_table_order():
    t = TABLE.loc[["a_at", "b_at"]].copy()
    t.loc["b_at", "S1"] = 6.0
    t.loc["b_at", "S2"] = 4.0 + 1e-9  # b_at now strictly higher
    out, _ = ex.collapse_probes(t, PLATFORM)
    assert out.loc["GENEC", "S2"] == 4.0 + 1e-9
    out2, _ = ex.collapse_probes(TABLE.loc[["b_at", "a_at"]], PLATFORM)  # tie: a_at wins
    assert out2.loc["GENEC"].tolist() == [6.0, 4.0]


def test_collapse_needs_half_the_probes_annotated():
    t = pd.DataFrame({"S1": [1.0, 2.0, 3.0, 4.0]}, index=["p1", "p2", "zz1", "zz2"])
    out, counts = ex.collapse_probes(t, PLATFORM)  # exactly 2 of 4: accepted
    assert counts["not_in_platform"] == 2 and out.index.tolist() == ["GENEA"]
    t2 = pd.DataFrame({"S1": [1.0, 2.0, 3.0, 4.0]}, index=["p1", "zz0", "zz1", "zz2"])
    with pytest.raises(ex.ExpressionError, match=r"only 1 of the 4 probe IDs .* platform annotation \(10 IDs"):
        ex.collapse_probes(t2, PLATFORM)
    with pytest.raises(ex.ExpressionError, match="no probes"):
        ex.collapse_probes(t.iloc[:0], PLATFORM)


# --- the embedded demo: secondary probes are dimmer, the multi-gene "trap" must be dropped -------


@pytest.mark.skipif(not (DEMO / "series").exists(), reason="demo not generated")
def test_demo_collapse_keeps_main_probes():
    sm = geo.parse_series_matrix(DEMO / "series/GSE990nnn/GSE990001/matrix/GSE990001_series_matrix.txt.gz")
    ann_path = DEMO / "platforms/GPL990nnn/GPL990001/annot/GPL990001.annot.gz"
    ann = geo.parse_platform(ann_path, "Gene symbol")
    assert ex.needs_log2(sm.table)  # MAS5-like, not log
    logged = ex.log2_transform(sm.table)
    out, counts = ex.collapse_probes(logged, ann)

    # independent reading of the annot file: symbol column by position, no pandas
    lines = gzip.open(ann_path, "rt").read().split("\n")
    body = lines[lines.index("!platform_table_begin") + 1 : lines.index("!platform_table_end")]
    col = body[0].split("\t").index("Gene symbol")
    sym = {r.split("\t")[0]: r.split("\t")[col] for r in body[1:]}
    single = {p: s for p, s in sym.items() if s and "///" not in s}
    assert counts["multi_symbol"] == sum("///" in s for s in sym.values())
    assert counts["no_symbol"] == sum(s == "" for s in sym.values())
    assert sorted(out.index) == sorted(set(single.values())) == out.index.tolist()

    # the demo design: each gene's "_at" probe is the bright one, "_a_at" probes are dimmer copies
    main = {s: p for p, s in single.items() if p.endswith("_at") and not p.endswith("_a_at")}
    assert set(main) == set(out.index)
    np.testing.assert_array_equal(out.to_numpy(), logged.loc[[main[g] for g in out.index]].to_numpy())
