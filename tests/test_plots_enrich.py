"""Enrichment plots: the running score is GSEA's (checked against gseapy prerank and closed
forms), the dot plot draws the right sets, set slopes show known per-patient changes, and every
render is byte-identical and immune to the caller's rc settings.
"""

import io as stdio

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prepost.enrich import gsea as egsea
from prepost.enrich import scores as escores
from prepost.plots import enrich as plots
from prepost.enrich import genesets as gs

DPI = 40  # small images keep the tests fast


def check_png(path, width, height):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with Image.open(stdio.BytesIO(data)) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size == (width, height)
    return data


def ranking(n=400, seed=3):
    """Distinct statistics (no ties, so the order is unambiguous for gseapy too)."""
    rng = np.random.default_rng(seed)
    stat = np.sort(rng.normal(0, 2, n))[::-1] + np.linspace(1e-6, 0, n)
    genes = [f"Gene{i:03d}" for i in range(n)]
    order = rng.permutation(n)  # rows shuffled: the functions must sort, not trust the order
    return pd.DataFrame({"gene": np.array(genes)[order], "stat": stat[order]}), genes


def synthetic_sets(genes, seed=4):
    rng = np.random.default_rng(seed)
    return gs.from_dict({
        "UP_SET": list(rng.choice(genes[:60], 15, replace=False)) + list(rng.choice(genes[60:], 5, replace=False)),
        "DOWN_SET": list(rng.choice(genes[-80:], 18, replace=False)),
        "RANDOM_SET": list(rng.choice(genes, 25, replace=False)),
    })


# ---------------------------------------------------------------- running enrichment score

def test_running_score_equals_gseapy_prerank_es_and_leading_edge(tmp_path):
    de, genes = ranking()
    sets = synthetic_sets(genes)
    ref = egsea.prerank(de, sets, permutations=50, min_size=5).set_index("set")
    names = ["UP_SET", "DOWN_SET", "RANDOM_SET"]
    out = plots.running_score_plot(de, sets, names, tmp_path / "r.png", "t", gsea=ref.reset_index(), dpi=DPI)
    assert out["sets"] == names and out["n_ranked"] == 400
    for s in names:
        assert out["es"][s] == pytest.approx(ref.at[s, "es"], rel=1e-12)  # measured 6.6e-15 (was abs=1e-6)
        assert set(out["leading_edge"][s]) == set(ref.at[s, "leading_edge"].split(";"))
    assert out["es"]["UP_SET"] > 0.5 and out["es"]["DOWN_SET"] < -0.5
    assert out["n_hits"] == {"UP_SET": 20, "DOWN_SET": 18, "RANDOM_SET": 25}
    # 3 panels, 2 columns: (0.2 + 4.4 * 2) x (0.5 + 3.8 * 2) in
    check_png(tmp_path / "r.png", round(9.0 * DPI), round(8.1 * DPI))


def test_running_score_closed_forms():
    n = 101
    stat = np.linspace(5, -5, n) + 0.01  # no statistic is exactly 0
    top = np.zeros(n, bool)
    top[:10] = True
    res, es, peak = plots.running_enrichment_score(stat, np.stack([top, top[::-1]]))
    assert es[0] == pytest.approx(1.0) and peak[0] == 9  # every hit before any miss
    assert es[1] == pytest.approx(-1.0) and peak[1] == n - 11  # every miss before any hit
    assert np.allclose(res[:, -1], 0.0, atol=1e-12)  # the walk always ends at 0
    # one hit at 0-based rank i: down 1/(n-1) per miss, up 1 at i, so
    # ES = 1 - i/(n-1) if i < (n-1)/2, else -i/(n-1); on the exact tie the negative wins (gseapy)
    for i, expect in [(20, 1 - 20 / 100), (70, -70 / 100), (50, -0.5)]:
        one = np.zeros(n, bool)
        one[i] = True
        _, e, _ = plots.running_enrichment_score(stat, one)
        assert e[0] == pytest.approx(expect)
    # a set whose only hit has stat 0 (weight 1), or with no hit, has no defined walk; with
    # weight 0 (unweighted KS) the same hit is a valid walk
    flat = np.linspace(5, -5, n)  # flat[50] == 0
    zero = np.zeros(n, bool)
    zero[50] = True
    _, e, _ = plots.running_enrichment_score(flat, np.stack([zero, np.zeros(n, bool)]))
    assert np.isnan(e).all()
    _, e0, _ = plots.running_enrichment_score(flat, zero, weight=0)
    assert e0[0] == pytest.approx(-0.5)



def test_running_score_plot_missing_sets_and_bad_input(tmp_path):
    de, genes = ranking(n=120)
    # "LOWER": set genes in another case are not matched (like prerank: harmonise sets first)
    sets = gs.from_dict({"ONLY": genes[:8], "ABSENT": ["NOT_A_GENE"], "LOWER": [g.lower() for g in genes[:8]]})
    out = plots.running_score_plot(de, sets, ["ONLY", "ABSENT", "UNKNOWN", "LOWER"], tmp_path / "r.png",
                                   "t", dpi=DPI)
    assert out["sets"] == ["ONLY"] and out["missing"] == ["ABSENT", "UNKNOWN", "LOWER"]
    assert out["es"]["ONLY"] == pytest.approx(1.0) and out["peak_rank"]["ONLY"] == 8
    check_png(tmp_path / "r.png", round(4.6 * DPI), round(4.3 * DPI))
    with pytest.raises(ValueError, match=r"r\.png.*lacks column\(s\) wald"):
        plots.running_score_plot(de, sets, ["ONLY"], tmp_path / "r.png", "t", stat="wald", dpi=DPI)
    dup = pd.concat([de, de.head(1).assign(gene=lambda d: d["gene"].str.lower())])
    with pytest.raises(ValueError, match="duplicated gene"):
        plots.running_score_plot(dup, sets, ["ONLY"], tmp_path / "r.png", "t", dpi=DPI)


# ---------------------------------------------------------------- GSEA dot plot

def gsea_table(n=12):
    """padj = 10^-(k) for set k (k = 0..n-1 reversed), NES alternating in sign; one NaN row."""
    k = np.arange(n)
    t = pd.DataFrame({
        "collection": "h", "set": [f"HALLMARK_SET_{i:02d}" for i in k], "size": 20 + k,
        "n_found": 10 + k, "es": 0.5, "nes": np.where(k % 2, -1.0, 1.0) * (1 + k / 5),
        "pvalue": 10.0 ** -(k / 2.0), "padj": np.minimum(1, 10.0 ** -(k / 2.0) * 2),
        "leading_edge": "A;B",
    })
    t.loc[n - 1, "set"] = "HALLMARK_" + "VERY_LONG_NAME_" * 5
    nan_row = t.iloc[[0]].assign(set="HALLMARK_UNTESTABLE", nes=np.nan, padj=np.nan)
    return pd.concat([t, nan_row], ignore_index=True)


def test_gsea_dotplot_draws_top_sets_by_padj_ordered_by_nes(tmp_path):
    g = gsea_table()
    out = plots.gsea_dotplot(g, tmp_path / "d.png", "GSEA", top_n=5, alpha=0.05, dpi=DPI)
    long = "HALLMARK_" + "VERY_LONG_NAME_" * 5
    chosen = [long, "HALLMARK_SET_10", "HALLMARK_SET_09", "HALLMARK_SET_08", "HALLMARK_SET_07"]
    assert set(out["sets"]) == set(chosen)  # the 5 smallest padj
    nes = g.set_index("set")["nes"]
    assert out["sets"] == sorted(chosen, key=lambda s: -nes[s])  # read top to bottom by NES
    assert out["n_significant"] == 5 and out["n_dropped"] == 1 and out["n_tested"] == 13
    assert out["omitted_prefix"] == "HALLMARK_"
    assert out["labels"]["HALLMARK_SET_07"] == "SET 07"
    assert len(out["labels"][long]) == 40 and out["labels"][long].endswith("…")
    check_png(tmp_path / "d.png", 7 * DPI, round((1.6 + 0.3 * 5) * DPI))
    # alpha decides the ring: padj of SET_07 is 2 * 10^-3.5 ~ 6e-4
    out = plots.gsea_dotplot(g, tmp_path / "d.png", "GSEA", top_n=12, alpha=1e-3, dpi=DPI)
    assert out["n_significant"] == int((g["padj"] < 1e-3).sum()) == 5
    assert len(out["sets"]) == 12


def test_gsea_dotplot_bad_input_and_empty(tmp_path):
    with pytest.raises(ValueError, match=r"d\.png.*lacks column\(s\) nes"):
        plots.gsea_dotplot(gsea_table().drop(columns="nes"), tmp_path / "d.png", "t", dpi=DPI)
    out = plots.gsea_dotplot(gsea_table().iloc[0:0], tmp_path / "e.png", "t", dpi=DPI)
    assert out["sets"] == [] and (tmp_path / "e.png").exists()


def test_short_set_names():
    labels, prefix = plots._short_set_names(["GOBP_A_B", "GOBP_C"])
    assert (labels, prefix) == (["A B", "C"], "GOBP_")
    assert plots._short_set_names(["HALLMARK_X"]) == (["HALLMARK X"], "")  # one name: kept whole
    assert plots._short_set_names(["A_X", "B_X"])[1] == ""  # no shared prefix
    cut = "P_" + "x" * 50 + "1"
    labels, _ = plots._short_set_names([cut, "P_" + "x" * 50 + "2"])
    assert labels == [cut, "P_" + "x" * 50 + "2"]  # truncation would make them ambiguous


# ---------------------------------------------------------------- set-score slopes

def set_cohort():
    """P1..P5 complete pairs; set S1 changes by -p (p = 1..5, mean -3), S2 by +0.5 except a NaN
    for P2's post; P6 has no post sample; P7 is flagged in_pair False."""
    rows, scores = [], []
    for i in range(1, 8):
        resp = "responder" if i % 2 else "non_responder"
        rows += [(f"S{i}a", f"P{i}", "pre", resp, "True" if i != 7 else "False"),
                 (f"S{i}b", f"P{i}", "post", resp, "True" if i != 7 else "False")]
        scores += [(f"S{i}a", "PREPOST_S1", 0.1 * i), (f"S{i}a", "PREPOST_S2", 0.0)]
        if i != 6:
            scores += [(f"S{i}b", "PREPOST_S1", 0.1 * i - i), (f"S{i}b", "PREPOST_S2", np.nan if i == 2 else 0.5)]
    sheet = pd.DataFrame(rows, columns=["sample", "patient", "timepoint", "response", "in_pair"])
    return pd.DataFrame(scores, columns=["sample", "set", "score"]), sheet


def test_set_slope_plot_known_changes(tmp_path):
    scores, sheet = set_cohort()
    out = plots.set_slope_plot(scores, sheet, ["PREPOST_S1", "PREPOST_S2", "PREPOST_NONE"],
                               tmp_path / "s.png", "sets", dpi=DPI)
    assert out["patients"] == ["P1", "P2", "P3", "P4", "P5"] and out["n_pairs"] == 5
    assert out["lines"] == {"PREPOST_S1": 5, "PREPOST_S2": 4}
    assert out["mean_change"]["PREPOST_S1"] == pytest.approx(-3.0)
    assert out["mean_change"]["PREPOST_S2"] == pytest.approx(0.5)
    assert out["missing"] == ["PREPOST_NONE"]
    check_png(tmp_path / "s.png", round(5.2 * DPI), round(3.6 * DPI))  # as slope_plot, 2 panels
    # same pairs and change as the paired test that writes set_tests.tsv
    paired = sheet[sheet["in_pair"] == "True"]
    t = escores.paired_set_test(scores.dropna(), paired).set_index("set")
    assert t.at["PREPOST_S1", "mean_diff"] == pytest.approx(out["mean_change"]["PREPOST_S1"])


def test_set_slope_plot_rejects_duplicate_scores(tmp_path):
    scores, sheet = set_cohort()
    with pytest.raises(ValueError, match=r"more than one score for sample 'S1a', set 'PREPOST_S1'"):
        plots.set_slope_plot(pd.concat([scores, scores.head(1)]), sheet, ["PREPOST_S1"],
                             tmp_path / "s.png", "t", dpi=DPI)


# ---------------------------------------------------------------- determinism

def test_enrich_plots_byte_identical_and_ignore_rc(tmp_path):
    import matplotlib.pyplot as plt

    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    de, genes = ranking(n=150)
    sets = synthetic_sets(genes)
    scores, sheet = set_cohort()
    renders = {
        "dot": lambda p: plots.gsea_dotplot(gsea_table(), p, "t", top_n=6, dpi=DPI),
        "run": lambda p: plots.running_score_plot(de, sets, ["UP_SET"], p, "t", dpi=DPI),
        "slope": lambda p: plots.set_slope_plot(scores, sheet, ["PREPOST_S1"], p, "t", dpi=DPI),
    }
    for name, render in renders.items():
        a, b, c = (tmp_path / f"{name}{k}.png" for k in "abc")
        render(a)
        render(b)
        with matplotlib.rc_context({"lines.linewidth": 4.0, "font.size": 17, "axes.facecolor": "red"}):
            render(c)
        assert a.read_bytes() == b.read_bytes() == c.read_bytes(), name
    sa, sb = tmp_path / "a.svg", tmp_path / "b.svg"
    renders["run"](sa)
    renders["run"](sb)
    assert sa.read_bytes() == sb.read_bytes() and "<dc:date>" not in sa.read_text()
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name or p.name.startswith(".")) == []
