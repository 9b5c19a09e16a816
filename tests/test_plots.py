"""Plots: valid images of the documented size, byte-identical reruns, and the right data drawn.

Expected counts and changes come from how the inputs are built (known truth), not from the
plotting code.
"""

import io as stdio

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prepost.plots import de as plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 50  # small images keep the tests fast


def de_table(n=300, n_up=7, n_down=5, seed=0):
    """Genes 0..n_up-1 significant up, next n_down significant down, the rest not (padj 0.5);
    p values increase with the gene's position, so the top-k by p are the first k genes."""
    rng = np.random.default_rng(seed)
    k = n_up + n_down
    lfc = np.concatenate([rng.uniform(1, 3, n_up), -rng.uniform(1, 3, n_down), rng.normal(0, 0.3, n - k)])
    p = np.concatenate([np.geomspace(1e-12, 1e-4, k), np.linspace(0.01, 1, n - k)])
    padj = np.where(np.arange(n) < k, 0.001, 0.5)
    genes = [f"G{i:04d}" for i in range(n)]
    return pd.DataFrame({"gene": genes, "mean_expr": rng.uniform(1, 5000, n), "log2fc": lfc,
                         "lfc_se": 0.2, "stat": lfc / 0.2, "pvalue": p, "padj": padj})


def check_png(path, width, height):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    with Image.open(stdio.BytesIO(data)) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (width, height)
    return data


def test_volcano_png_counts_labels_and_missing(tmp_path):
    de = de_table()
    dest = tmp_path / "v.png"
    out = plots.volcano(de, dest, "post vs pre", alpha=0.05, label_genes=["G0100", "NOTAGENE"],
                        top_n=3, dpi=DPI)
    check_png(dest, 6 * DPI, 5 * DPI)
    assert (out["n_up"], out["n_down"], out["n_ns"]) == (7, 5, 288)
    assert sorted(out["labelled"]) == ["G0000", "G0001", "G0002", "G0100"]
    assert out["missing_label_genes"] == ["NOTAGENE"]
    assert [p.name for p in tmp_path.iterdir()] == ["v.png"]  # no temp file left behind


def test_volcano_handles_nan_and_zero_p(tmp_path):
    de = de_table()
    de.loc[10, ["log2fc", "pvalue", "padj"]] = np.nan  # e.g. an all-zero gene in pydeseq2
    de.loc[0, "pvalue"] = 0.0
    de.loc[20, "padj"] = np.nan  # independent filtering: drawn, not significant
    out = plots.volcano(de, tmp_path / "v.png", "t", dpi=DPI)
    assert out["n_dropped"] == 1 and out["n_p_zero"] == 1
    assert out["n_up"] + out["n_down"] + out["n_ns"] == len(de) - 1


def test_renders_are_byte_identical(tmp_path):
    de = de_table()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    plots.volcano(de, a, "same", label_genes=["G0050"], dpi=DPI)
    plots.volcano(de, b, "same", label_genes=["G0050"], dpi=DPI)
    assert a.read_bytes() == b.read_bytes()
    sa, sb = tmp_path / "a.svg", tmp_path / "b.svg"
    plots.ma_plot(de, sa, "same", log_x=True, dpi=DPI)
    plots.ma_plot(de, sb, "same", log_x=True, dpi=DPI)
    text = sa.read_text()
    assert sa.read_bytes() == sb.read_bytes() and text.startswith("<?xml")
    assert "<dc:date>" not in text and "Matplotlib v" not in text


def test_ma_plot_png_and_log_x_check(tmp_path):
    de = de_table()
    out = plots.ma_plot(de, tmp_path / "ma.png", "MA", alpha=0.05, log_x=True, dpi=DPI)
    check_png(tmp_path / "ma.png", 6 * DPI, 5 * DPI)
    assert (out["n_up"], out["n_down"]) == (7, 5)
    de.loc[3, "mean_expr"] = -1.0
    with pytest.raises(ValueError, match="log_x=True needs mean_expr >= 0"):
        plots.ma_plot(de, tmp_path / "bad.png", "MA", log_x=True, dpi=DPI)


def test_bad_inputs_are_named(tmp_path):
    de = de_table().drop(columns="padj")
    with pytest.raises(ValueError, match=r"v\.png.*lacks column\(s\) padj"):
        plots.volcano(de, tmp_path / "v.png", "t", dpi=DPI)
    with pytest.raises(ValueError, match=r"suffix '\.jpg'"):
        plots.volcano(de_table(), tmp_path / "v.jpg", "t", dpi=DPI)


def paired_cohort():
    """Patients P1..P5 complete; P6 pre only; P7 complete but flagged in_pair False (as read from
    a TSV, a string); P8's post sample is absent from the matrix. Gene A: post = pre + d_p with
    d = -1, -2, -3, -4, -5 for P1..P5 (mean -3); gene B: NaN for P2's post."""
    rows, values = [], {}
    d = {f"P{i}": -float(i) for i in range(1, 6)}
    for i in range(1, 9):
        p = f"P{i}"
        resp = ["responder", "non_responder", pd.NA][i % 3]
        in_pair = "True" if i <= 5 else "False"
        rows.append((f"S{i}a", p, "pre", resp, in_pair))
        values[f"S{i}a"] = {"A": 10.0 + i, "B": 5.0}
        if i != 6:
            rows.append((f"S{i}b", p, "post", resp, in_pair))
            if i != 8:
                values[f"S{i}b"] = {"A": 10.0 + i + d.get(p, 0.0), "B": np.nan if i == 2 else 6.0}
    sheet = pd.DataFrame(rows, columns=["sample", "patient", "timepoint", "response", "in_pair"])
    expr = pd.DataFrame(values)
    return expr, sheet


def test_slope_plot_only_complete_pairs(tmp_path):
    expr, sheet = paired_cohort()
    dest = tmp_path / "slope.png"
    out = plots.slope_plot(expr, sheet, ["A", "B", "MISSING"], dest, "genes of interest", dpi=DPI)
    # 2 panels in one row: (0.4 + 2.4 * 2) x (1.0 + 2.6) inches
    check_png(dest, round(5.2 * DPI), round(3.6 * DPI))
    assert out["patients"] == ["P1", "P2", "P3", "P4", "P5"] and out["n_pairs"] == 5
    assert out["lines"] == {"A": 5, "B": 4}
    assert out["mean_change"]["A"] == pytest.approx(-3.0)
    assert out["mean_change"]["B"] == pytest.approx(1.0)
    assert out["missing"] == ["MISSING"] and out["genes"] == ["A", "B"]


def test_slope_plot_counts_normalisation(tmp_path):
    """Counts proportional to library size: after median-of-ratios normalisation (the default,
    prepost.stats) every patient's change is 0; with explicit size factors the change is log2
    of the known ratio."""
    genes = ["g1", "g2", "g3"]
    base = np.array([100.0, 400.0, 1600.0])
    lib = {"a1": 1.0, "b1": 3.0, "a2": 2.0, "b2": 0.5, "a3": 1.5, "b3": 4.0}
    counts = pd.DataFrame({s: (base * f).round() for s, f in lib.items()}, index=genes).astype(int)
    sheet = pd.DataFrame({"sample": list(lib), "patient": ["p1", "p1", "p2", "p2", "p3", "p3"],
                          "timepoint": ["pre", "post"] * 3, "in_pair": True})
    out = plots.slope_plot(counts, sheet, ["g2"], tmp_path / "c.png", "counts", values="counts", dpi=DPI)
    assert out["mean_change"]["g2"] == pytest.approx(0.0, abs=1e-12)
    sf = pd.Series(1.0, index=list(lib))  # no normalisation: change is log2 of (400 f_b + 1)/(400 f_a + 1)
    out = plots.slope_plot(counts, sheet, ["g2"], tmp_path / "c.svg", "counts", values="counts",
                           size_factors=sf, dpi=DPI)
    expect = np.mean([np.log2((400 * lib[f"b{i}"] + 1) / (400 * lib[f"a{i}"] + 1)) for i in (1, 2, 3)])
    assert out["mean_change"]["g2"] == pytest.approx(expect)
    with pytest.raises(ValueError, match="size factors lack sample"):
        plots.slope_plot(counts, sheet, ["g2"], tmp_path / "c.png", "t", values="counts",
                         size_factors=sf.drop("b3"), dpi=DPI)


def test_slope_plot_drawn_again_with_another_title_is_byte_identical(tmp_path, monkeypatch):
    """A slope grid this process drew before is reused with the new title drawn on the kept
    canvas: every PNG equals a full draw and save (the plain path) byte for byte, a repeat
    reuses the grid, and different values or a different response draw a new one."""
    from prepost.plots import common

    expr, sheet = paired_cohort()
    genes = ["A", "B", "MISSING"]
    other = sheet.copy()
    other.loc[other["patient"] == "P1", "response"] = "responder"  # non_responder in sheet
    calls = [("one.png", expr, sheet, "post_vs_pre"), ("two.png", expr, sheet, "interaction: a longer title"),
             ("three.png", expr + 1.0, sheet, "post_vs_pre"), ("four.png", expr, other, "post_vs_pre"),
             ("five.png", expr, sheet, "x")]
    common._SLOPE_DRAWN.clear()
    drawn = []
    real_panels = common.slope_panels
    monkeypatch.setattr(common, "slope_panels", lambda *a, **k: drawn.append(1) or real_panels(*a, **k))
    outs = {name: plots.slope_plot(e, sh, genes, tmp_path / name, title, dpi=DPI) for name, e, sh, title in calls}
    assert len(drawn) == 3  # one, three, four; two and five reuse one's grid
    monkeypatch.setattr(common, "_slope_key", lambda *a, **k: None)  # the plain draw-and-save path
    for name, e, sh, title in calls:
        ref = plots.slope_plot(e, sh, genes, tmp_path / f"ref-{name}", title, dpi=DPI)
        assert (tmp_path / name).read_bytes() == (tmp_path / f"ref-{name}").read_bytes(), name
        assert outs[name] == ref
    assert len({(tmp_path / n).read_bytes() for n, *_ in calls}) == 5
    common._SLOPE_DRAWN.clear()


def test_slope_plot_no_gene_present_still_writes(tmp_path):
    expr, sheet = paired_cohort()
    out = plots.slope_plot(expr, sheet, ["X", "Y"], tmp_path / "s.png", "t", dpi=DPI)
    assert out["genes"] == [] and out["missing"] == ["X", "Y"]
    check_png(tmp_path / "s.png", round(2.8 * DPI), round(3.6 * DPI))


def test_leaves_pyplot_state_alone(tmp_path):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    plots.volcano(de_table(), tmp_path / "v.png", "t", dpi=DPI)
    expr, sheet = paired_cohort()
    plots.slope_plot(expr, sheet, ["A"], tmp_path / "s.png", "t", dpi=DPI)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == before


def test_decade_labels_are_plain_text():
    """The dispersion plot's log axes label decades as text ("10⁻³"), not mathtext."""
    from prepost.plots.model import decade_label

    assert [decade_label(v) for v in (1e-3, 1.0, 10.0, 1e5)] == ["10⁻³", "10⁰", "10¹", "10⁵"]
    assert decade_label(3.0) == "3" and decade_label(0.0) == "" and decade_label(float("nan")) == ""


def test_dispersion_plot_writes_and_counts(tmp_path):
    from prepost.plots.model import dispersion_plot

    rng = np.random.default_rng(1)
    n = 200
    mean = np.geomspace(1, 1e4, n)
    trend = 0.05 + 1 / mean
    model = pd.DataFrame({"gene": [f"g{i}" for i in range(n)], "mean_expr": mean,
                          "disp_gene": trend * rng.lognormal(0, 0.5, n), "disp_trend": trend,
                          "dispersion": trend, "disp_outlier": np.arange(n) < 3})
    out = dispersion_plot(model, tmp_path / "d.png", "t", dpi=DPI)
    check_png(tmp_path / "d.png", 6 * DPI, 5 * DPI)
    assert out["genes"] == n and out["outliers"] == 3


def test_png_has_the_pixels_matplotlib_savefig_writes(tmp_path):
    """save() draws on the canvas and writes the PNG itself (RGB when opaque): the pixels of
    matplotlib's own savefig, decoded and compared; a figure with transparency keeps its alpha."""
    from prepost.plots import common

    for alpha in (1.0, 0.0):
        fig, ax = common.single_axes(4, 3, DPI)
        fig.patch.set_alpha(alpha)
        ax.plot([0, 1, 2], [1, 3, 2], lw=2)
        ax.set_title("pixels", y=common.TITLE_Y)
        common.save(fig, tmp_path / "ours.png", DPI)
        fig.savefig(tmp_path / "theirs.png", format="png", dpi=DPI, metadata={"Software": None})
        with Image.open(tmp_path / "ours.png") as a, Image.open(tmp_path / "theirs.png") as b:
            assert a.mode == ("RGB" if alpha == 1.0 else "RGBA") and b.mode == "RGBA"
            assert a.info == b.info  # the dpi (pHYs), and no text chunk in either
            assert np.array_equal(np.asarray(a.convert("RGBA")), np.asarray(b))
