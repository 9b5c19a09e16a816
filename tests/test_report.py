"""prepost.report: one self-contained, escaped, deterministic HTML file; rendered in headless
Chromium when it is installed."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from prepost.report import build as report
from prepost.plots.common import new_figure as _new_figure, save as _save

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
VERDICTS = ["reproduced", "contradicted", "same direction, not significant", "not testable"]


def _png(path, colour):
    fig = _new_figure(3, 2, 80)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0], color=colour)
    ax.set_title(path.stem)
    _save(fig, path, 80)
    return str(path)


def _tsv(df, path):
    df.to_csv(path, sep="\t", index=False)
    return str(path)


@pytest.fixture
def results(tmp_path):
    """A small set of synthetic result files in the workflow's layout."""
    d = tmp_path / "res"
    (d / "qc").mkdir(parents=True)
    rows = []
    for p in range(1, 4):
        for tp in ("pre", "post"):
            rows.append({"sample": f"GSM{p}{tp}", "title": f"P{p}_{tp}", "patient": f"P{p}", "timepoint": tp,
                         "response": "responder" if p < 3 else "non_responder", "in_pair": True, "usable": True})
    sheet = pd.DataFrame(rows)
    ledger = sheet.assign(status="kept", reason="complete pair")[["sample", "title", "patient", "timepoint",
                                                                   "response", "status", "reason"]]
    # step records as other conda environments wrote them: versions unlike the test's own
    (d / "fit.json").write_text(json.dumps({"engine": "pydeseq2", "version": "0.5.4", "design": "~ patient + timepoint",
                                            "dispersion_trend": "parametric",
                                            "software": {"python": "3.12.1", "pandas": "2.2.0", "pydeseq2": "0.5.4"}}))
    (d / "run.json").write_text(json.dumps({"method": "multilevel", "permutations": 1000, "seed": 7, "min_size": 5,
                                            "max_size": 500, "ora_alpha": 0.05,
                                            "software": {"python": "3.12.1", "gseapy": "9.9.9"}}))
    (d / "prepare.json").write_text(json.dumps({"dataset": "dsA", "values": "counts", "genes": 50,
                                                "software": {"python": "3.12.1", "pandas": "2.2.0"},
                                                "samples": 6, "pairs": 3, "dropped": {}}))
    ident = pd.DataFrame({"post_sample": ["GSM1post", "GSM2post", "GSM3post"], "patient": ["P1", "P2", "P3"],
                          "best_pre_sample": ["GSM1pre", "GSM3pre", "GSM2pre"],
                          "best_pre_patient": ["P1", "P3", "P2"],
                          "own_pre_sample": ["GSM1pre", "GSM2pre", "GSM3pre"],
                          "corr_own_pre": [0.5, 0.1, 0.2], "corr_best": [0.5, 0.3, 0.4],
                          "own_pre_rank": [1, 2, 2], "n_pre": 3, "flag": [False, True, True]})
    sq = pd.DataFrame({"sample": sheet["sample"], "patient": sheet["patient"], "timepoint": sheet["timepoint"],
                       "response": sheet["response"], "library_size": 1e6, "median_correlation": 0.9,
                       "outlier_threshold": 0.8, "outlier": [False] * 5 + [True], "pair_identity": "",
                       "PC1": 0.0, "PC2": 0.0, "rule": "median correlation < Q1 - 3 IQR"})
    de = pd.DataFrame({"gene": [f"DEG{i}" for i in range(30)], "mean_expr": 10.0, "log2fc": np.linspace(-2, 2, 30),
                       "lfc_se": 0.3, "stat": np.linspace(-6, 6, 30), "pvalue": np.linspace(1e-6, 0.9, 30),
                       "padj": np.linspace(1e-4, 0.99, 30)})
    gsea = pd.DataFrame({"collection": "c", "set": ["SET_A", "SET_B"], "size": [10, 12], "nes": [2.1, -1.5],
                         "pvalue": [1e-4, 0.01], "padj": [1e-3, 0.02], "leading_edge": ["G1;G2", "G3"]})
    claims = pd.DataFrame({
        "claim": [f"claim{i}" for i in range(4)], "dataset": "dsA", "contrast": "post_vs_pre",
        "feature": ["BRCA2", "ATM", "MKI67", "XYZ"],
        "statement": ["<b>BRCA2</b> falls & stays down", "ATM", "MKI67", "XYZ"],
        "direction_expected": "down", "effect": [-1.0, 0.5, -0.1, np.nan], "ci_low": -1.2, "ci_high": -0.8,
        "pvalue": [1e-5, 1e-3, 0.4, np.nan], "claim_padj": [1e-4, 1e-3, 0.4, np.nan], "n_pairs": 3,
        "verdict": VERDICTS, "reason": ["", "", "", "gene not measured"],
    })
    meta = pd.DataFrame({
        "claim": ["claim0"], "statement": ["BRCA2 falls"], "citation": ["X 2020"], "contrast": ["post_vs_pre"],
        "kind": ["gene_change"], "feature": ["BRCA2"], "direction_expected": ["down"], "k": [2],
        "datasets": ["dsA;dsB"], "effect": [-0.9], "se": [0.2], "ci_low": [-1.3], "ci_high": [-0.5],
        "pvalue": [1e-5], "tau2": [0.0], "i2": [0.0], "q": [0.3], "q_pvalue": [0.6],
        "verdict": ["reproduced"], "reason": [""],
    })
    manifest = pd.DataFrame({"file": ["GSE1_series_matrix.txt.gz"], "url": ["https://example.org/GSE1?a=1&b=2"],
                             "bytes": [123], "sha256": ["ab" * 32], "date": ["2026-01-01T00:00:00Z"],
                             "status": ["downloaded"]})
    layout = {
        "datasets": {"dsA": {
            "samples": _tsv(sheet, d / "samples.tsv"), "pairs": _tsv(ledger, d / "pairs.tsv"),
            "summary": str(d / "prepare.json"), "manifest": _tsv(manifest, d / "manifest.tsv"),
            "qc": {"samples_qc": _tsv(sq, d / "qc/samples_qc.tsv"),
                   "pair_identity": _tsv(ident, d / "qc/pair_identity.tsv"),
                   "exclusions": _tsv(pd.DataFrame({
                       "sample": ["GSM3post"], "patient": ["P3"], "timepoint": ["post"],
                       "qc_flags": ["outlier: far from the other samples"], "would_exclude": [True],
                       "excluded": [False], "partner_excluded": [False], "reason": [""]}),
                       d / "qc/exclusions.tsv"),
                   "impact": _tsv(pd.DataFrame({
                       "analysis": ["as run (qc.exclude: none)", "QC-flagged samples excluded"],
                       "excluded_samples": ["", "GSM3post"], "pairs": [3, 2], "genes_tested": [30, 30],
                       "genes_padj_below_0.05": [7, 5], "genes_padj_below_0.1": [9, 6], "note": ["", ""]}),
                       d / "qc/impact.tsv"),
                   "plots": {"PCA": _png(d / "qc/pca.png", "red"), "Missing": str(d / "qc/none.png")}},
            "contrasts": {"post_vs_pre": {
                "table": _tsv(de, d / "de.tsv"), "fit": str(d / "fit.json"), "enrich_record": str(d / "run.json"),
                "volcano": _png(d / "volcano.png", "blue"),
                "ma": _png(d / "ma.png", "green"), "slopes": _png(d / "slopes.png", "black"),
                "gsea": _tsv(gsea, d / "gsea.tsv"), "dotplot": _png(d / "dot.png", "orange")}},
            "set_slopes": None,
        }},
        "claims": _tsv(claims, d / "claims.tsv"),
    }
    config = {"claims_settings": {"alpha": 0.05, "adjust": "claims"},
              "enrichment": {"method": "multilevel", "permutations": 1000, "seed": 7, "min_size": 5,
                             "max_size": 500, "ora_alpha": 0.05},
              "datasets": {"dsA": {"kind": "geo_counts", "accession": "GSE1", "description": "demo <i>A</i>"}}}
    return {"layout": layout, "config": config, "dir": d, "meta": _tsv(meta, d / "claims_meta.tsv"),
            "forest": _png(d / "forest_claim0.png", "purple")}


def test_report_is_self_contained_escaped_and_deterministic(results, tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    summary = report.build_report(results["layout"], a, results["config"])
    report.build_report(results["layout"], b, results["config"])
    assert a.read_bytes() == b.read_bytes()
    html = a.read_text()
    assert summary["claims"] == 4 and summary["meta"] == 0
    # no external resource of any kind
    assert "<link" not in html and "@import" not in html
    # one small inline script (sort, filter, open a claim), loading nothing
    scripts = html.split("<script")[1:]
    assert len(scripts) == 1 and scripts[0].startswith(">")
    code = scripts[0].split("</script>")[0]
    assert len(code) < 4000 and not any(w in code for w in ("fetch(", "XMLHttpRequest", "http", "import("))
    srcs = [s.split('"', 1)[0] for s in html.split('src="')[1:]]
    assert len(srcs) == 5 and all(s.startswith("data:image/webp;base64,") for s in srcs)  # each plot once
    # escaping of every user-supplied string
    assert "&lt;b&gt;BRCA2&lt;/b&gt; falls &amp; stays down" in html
    assert "demo &lt;i&gt;A&lt;/i&gt;" in html and "<i>A</i>" not in html
    assert "https://example.org/GSE1?a=1&amp;b=2" in html and "ab" * 32 in html
    assert "2026-01-01" not in html  # download dates (timestamps) stay in the manifest
    # content: top-20 DE table, flags, verdict classes, methods, versions, config
    assert html.count("<td>DEG") == 20 and "<td>DEG0</td>" in html and "<td>DEG29</td>" not in html
    assert "Pair identity doubted for 2 pair(s)" in html and "Outliers: GSM3post" in html
    assert "QC would exclude GSM3post (qc.exclude: outliers); they are kept" in html
    assert "What exclusion changes (post_vs_pre)" in html and "<td>QC-flagged samples excluded</td>" in html
    for cls in ("v-rep", "v-contra", "v-same", "v-nt"):
        assert f'<tr class="{cls}">' in html
    assert "3 patients with both a pre- and a post-treatment sample" in html
    assert "adjusted p &lt; 0.05" in html
    # versions from each step's own record, not from this interpreter
    assert "<tr><td>pydeseq2</td><td>0.5.4</td><td>de</td></tr>" in html
    assert "<tr><td>gseapy</td><td>9.9.9</td><td>enrich</td></tr>" in html
    assert "<tr><td>pandas</td><td>2.2.0</td><td>prepare, de</td></tr>" in html
    assert "<tr><td>python</td><td>3.12.1</td><td>prepare, de, enrich</td></tr>" in html
    methods = html.split('id="methods-text">', 1)[1].split("</p>", 1)[0]
    assert "gseapy 9.9.9 prerank" in methods and "as run by pydeseq2 0.5.4" in methods
    import platform

    assert f"Python {platform.python_version()} / 3.12.1)" in methods  # the report's own beside the steps'

    assert "permutations: 1000" in html
    assert 'id="meta"' not in html


def test_meta_analysis_section_when_given(results, tmp_path):
    layout = dict(results["layout"], claims_meta=results["meta"], forest={"claim0": results["forest"]})
    out = tmp_path / "m.html"
    summary = report.build_report(layout, out, results["config"])
    html = out.read_text()
    assert summary["meta"] == 1
    assert 'id="meta"' in html and 'id="meta-table"' in html
    assert 'alt="Forest plot: claim0"' in html and "dsA;dsB" in html


def test_unreadable_input_is_named(results, tmp_path):
    layout = dict(results["layout"], claims=str(tmp_path / "nope.tsv"))
    with pytest.raises(report.ReportError, match="claims table.*nope.tsv"):
        report.build_report(layout, tmp_path / "x.html", results["config"])
    assert not (tmp_path / "x.html").exists()


def test_template_ships_with_the_package():
    from importlib import resources

    assert resources.files("prepost.report").joinpath("templates/report.html.j2").is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(results, tmp_path):
    from PIL import Image

    html = tmp_path / "r.html"
    layout = dict(results["layout"], claims_meta=results["meta"], forest={"claim0": results["forest"]})
    report.build_report(layout, html, results["config"])
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dom.stdout
    start = body.index('id="claims-table"')
    table = body[start: body.index("</table>", start)]
    assert table.count("<tr") == 1 + 4  # header + the four claims
    for claim in ("claim0", "claim1", "claim2", "claim3"):
        assert f"<td>{claim}</td>" in table
    png = tmp_path / "shot.png"
    shot = subprocess.run([CHROMIUM, *flags, "--enable-logging=stderr", "--v=0", f"--screenshot={png}",
                           "--window-size=1400,4000", html.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists()
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape == (4000, 1400)
    assert pixels.std() > 10  # not a blank page
    for bad in ("Uncaught", "Failed to load", "ERR_FILE_NOT_FOUND", "Not allowed to load local resource"):
        assert bad not in shot.stderr


def test_nanostring_sections(results, tmp_path):
    """A NanoString dataset: the lane QC table with flagged lanes first and highlighted, the
    housekeeping size factors with the screened-out genes, and a skipped gene-set collection
    with its reason (DE section, enrichment section and methods)."""
    d = results["dir"]
    lanes = pd.DataFrame({
        "sample": ["L1", "L2", "L3"], "fov_ratio": [0.99, 0.70, 0.98], "binding_density": [0.9, 1.0, 2.4],
        "pos_linearity_r2": 0.99, "neg_mean_2sd": 20.0, "pos_e_count": 100.0,
        "flag": [False, True, True], "reason": ["", "FOV counted/count < 0.75", "binding density outside 0.1-2.25"],
    })
    summary = json.loads((d / "prepare.json").read_text())
    summary.update(size_factors={"method": "housekeeping", "control_genes": ["HK1", "HK2"],
                                 "housekeeping_screened_out": {"HK3": "low: at or below the lane's limit of detection in 80% of samples"}},
                   not_tested=["HK1", "HK2", "HK3"])
    (d / "prepare.json").write_text(json.dumps(summary))
    found = pd.DataFrame({"collection": "c", "set": ["SET_A"], "n_genes": 50, "n_found": 5, "fraction": 0.1,
                          "missing": "", "collection_status": "skipped: only 10.0% of a typical set's genes are among the 30 measured genes"})
    layout = results["layout"]
    layout["datasets"]["dsA"]["lanes"] = _tsv(lanes, d / "qc/lanes.tsv")
    layout["datasets"]["dsA"]["contrasts"]["post_vs_pre"]["genesets_found"] = _tsv(found, d / "found.tsv")
    out = tmp_path / "n.html"
    report.build_report(layout, out, results["config"])
    html = out.read_text()
    assert "Flagged lanes (2): L2, L3" in html
    rows = html.split("Lane QC (3 lanes, flagged first)")[1].split("</table>")[0]
    assert rows.index("<td>L2</td>") < rows.index("<td>L1</td>") and rows.count('class="flag-row"') == 2
    assert "controlGenes: 2 housekeeping genes: HK1, HK2" in html and "HK3 (low: at or below" in html
    assert "Collection skipped: c: skipped: only 10.0%" in html
    assert "flagged 2 of 3 lanes" in html and "Gene-set collection c covered too little" in html


def test_claim_slopes_use_the_normalised_paired_values(tmp_path):
    """paired_values: log2(count / size factor + 1), DESeq2's median-of-ratios size factors
    computed here by hand, for the patients with both samples only; the SVG counts the
    patients that moved in the claimed direction."""
    from prepost.report.slopes import paired_values, slope_svg

    rng = np.random.default_rng(1)
    counts = pd.DataFrame(rng.poisson(200, size=(40, 6)) + 1, index=[f"G{i}" for i in range(40)],
                          columns=["A_pre", "A_post", "B_pre", "B_post", "C_pre", "D_post"])
    counts.loc["G0", ["A_post", "B_post"]] = [10, 900]  # A goes down, B up
    counts.to_parquet(tmp_path / "e.parquet")
    sheet = pd.DataFrame({"sample": counts.columns, "patient": ["A", "A", "B", "B", "C", "D"],
                          "timepoint": ["pre", "post"] * 2 + ["pre", "post"], "response": "responder",
                          "usable": True})
    sheet.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    out = paired_values(tmp_path / "e.parquet", tmp_path / "s.tsv", {"values": "counts"}, None, ["G0", "G5"])
    used = counts[["A_pre", "A_post", "B_pre", "B_post"]]
    logs = np.log(used.to_numpy(float))
    sf = np.exp(np.median(logs - logs.mean(axis=1, keepdims=True), axis=0))
    expect = np.log2(used / sf + 1)
    g0 = out[out.feature == "G0"].set_index("patient")
    assert sorted(out["patient"].unique()) == ["A", "B"]  # C and D have one sample each
    assert g0.loc["A", "pre"] == pytest.approx(expect.loc["G0", "A_pre"], rel=1e-10)
    assert g0.loc["B", "post"] == pytest.approx(expect.loc["G0", "B_post"], rel=1e-10)
    svg = slope_svg(out, "G0", "down", "log2 normalised count")
    assert svg.startswith("<svg") and "G0: 1/2 down" in svg and svg.count("M") >= 3


def test_plots_past_the_size_budget_are_linked_not_inlined(results, tmp_path):
    """report.max_mb: the least important plots are linked to their files (relative to the
    page) and the page says how many; the claims' forest plots stay inlined."""
    layout = dict(results["layout"], claims_meta=results["meta"], forest={"claim0": results["forest"]})
    full = tmp_path / "full.html"
    report.build_report(layout, full, results["config"])
    bare = len(full.read_text().encode()) - sum(
        len(s.split('"', 1)[0]) for s in full.read_text().split('src="')[1:])
    small = tmp_path / "small.html"
    cfg = dict(results["config"], report={"max_mb": (bare + 25_000) / 1e6})
    summary = report.build_report(layout, small, cfg)
    html = small.read_text()
    assert 0 < summary["linked"] < summary["images"]
    assert len(html.encode()) <= cfg["report"]["max_mb"] * 1e6
    assert f"{summary['linked']} of {summary['images']} plots are linked" in html
    assert 'alt="Forest plot: claim0" loading="lazy"' in html  # priority 1: always inlined
    assert 'href="res/' in html  # a linked plot points at its file beside the report


def test_tables_download_as_embedded_tsv(results, tmp_path):
    """Every table the page shows comes with its TSV inside the page (no network); the claims
    download is the claims file itself, row for row."""
    import base64
    import io
    import re

    layout = dict(results["layout"], claims_meta=results["meta"], forest={"claim0": results["forest"]})
    out = tmp_path / "d.html"
    report.build_report(layout, out, results["config"])
    html = out.read_text()
    links = dict(re.findall(r'download="([^"]+)" href="data:text/tab-separated-values;charset=utf-8;base64,([^"]+)"',
                            html))
    for name in ("claims.tsv", "claims_meta.tsv", "scoreboard.tsv", "dsA_sample_ledger.tsv",
                 "dsA_samples_qc.tsv", "dsA_pair_identity.tsv", "dsA_post_vs_pre_top20.tsv",
                 "dsA_manifest.tsv", "dsA_qc_impact.tsv", "dsA_qc_exclusions.tsv"):
        assert name in links, name
    got = pd.read_csv(io.StringIO(base64.b64decode(links["claims.tsv"]).decode()), sep="\t")
    want = pd.read_csv(results["dir"] / "claims.tsv", sep="\t")
    assert list(got["claim"]) == list(want["claim"]) and list(got["verdict"]) == list(want["verdict"])
    board = pd.read_csv(io.StringIO(base64.b64decode(links["scoreboard.tsv"]).decode()), sep="\t")
    assert list(board.columns[:5]) == ["claim", "statement", "citation", "contrast", "direction_expected"]
    assert list(board["dsA"]) == list(want["verdict"])  # one feature per claim: the row's verdict
    assert 'href="res/de.tsv"' in html  # the whole DE table, relative to the report


def test_plots_encoded_side_by_side_give_the_same_page(tmp_path):
    """Images.resolve with 3 worker threads inlines and links exactly the plots one worker does
    (acceptance in priority order, stopping at the first plot over the budget), priority 1
    always inlined."""
    colours = ["red", "blue", "green", "black", "orange", "purple", "grey"]
    paths = [_png(tmp_path / f"p{i}.png", c) for i, c in enumerate(colours)]
    one_size = len(report._encode_png(paths[1]))
    runs = []
    for workers in (1, 3):
        images = report.Images(base=tmp_path, workers=workers)
        for i, p in enumerate(paths):
            images.add(p, 1 if i == 6 else 2 + i % 3)
        summary = images.resolve(int(2.5 * one_size))
        runs.append((summary, {k: images(k) for k in paths}))
    assert runs[0] == runs[1]
    summary, uris = runs[0]
    inlined = [k for k, u in uris.items() if u.startswith("data:image/webp")]
    assert paths[6] in inlined and 2 <= len(inlined) < len(paths)
    assert summary["linked"] == len(paths) - len(inlined)
    assert all(uris[k] == f"p{paths.index(k)}.png" for k in paths if k not in inlined)
