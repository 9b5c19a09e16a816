"""The embedded demo: committed files are exactly what tools/prepost_demo.py writes, in GEO's formats,
and the planted truth is what a naive, independent analysis of those files recovers."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import prepost_demo as demo

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "resources" / "demo"


@pytest.fixture(scope="module")
def regen(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert demo.main([str(out)]) == 0
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read_matrix(path: Path) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """Minimal independent series-matrix reader (not prepost.geo): header lines, samples, table."""
    lines = gzip.decompress(path.read_bytes()).decode().split("\n")
    begin, end = lines.index("!series_matrix_table_begin"), lines.index("!series_matrix_table_end")
    header = lines[:begin]
    cells = {}
    samples = {}
    for line in header:
        if line.startswith("!Sample_"):
            key, *vals = line.split("\t")
            assert all(v.startswith('"') and v.endswith('"') for v in vals), line[:80]
            vals = [v[1:-1] for v in vals]
            if key == "!Sample_characteristics_ch1":
                k = vals[0].split(": ", 1)[0]
                assert all(v.startswith(f"{k}: ") for v in vals), line[:80]
                samples[k] = [v.split(": ", 1)[1] for v in vals]
            else:
                cells.setdefault(key, vals)
    smp = pd.DataFrame(
        {"title": cells["!Sample_title"], **samples}, index=cells["!Sample_geo_accession"]
    )
    table = pd.read_csv(
        io.StringIO("\n".join(lines[begin + 1 : end])),
        sep="\t",
        index_col=0,
        na_values=["null"],
        keep_default_na=False,
        quotechar='"',
    )
    return header, smp, table


def _read_annot(path: Path) -> pd.DataFrame:
    text = gzip.decompress(path.read_bytes()).decode()
    body = text.split("!platform_table_begin\n", 1)[1].split("!platform_table_end\n", 1)[0]
    return pd.read_csv(io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)


def _paired_diffs(expr: pd.DataFrame, smp: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """post - pre per patient (complete pairs only), columns = patient; and each patient's response."""
    pre = smp[smp["timepoint"] == "pre-treatment"].reset_index().set_index("patient id")
    post = smp[smp["timepoint"] == "post-treatment"].reset_index().set_index("patient id")
    pts = pre.index.intersection(post.index)
    d = pd.DataFrame(
        expr[post.loc[pts, "index"]].to_numpy() - expr[pre.loc[pts, "index"]].to_numpy(),
        index=expr.index,
        columns=pts,
    )
    return d, pre.loc[pts, "response"]


# --------------------------------------------------------------------------- byte identity


def test_committed_demo_is_what_the_generator_writes(regen):
    committed, fresh = _files(COMMITTED), _files(regen)
    assert sorted(committed) == sorted(fresh), "files differ: rerun `make demo-data`"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert not changed, f"regenerated files differ from resources/demo: {changed}"
    assert sum(map(len, committed.values())) < 3 * 2**20


def test_layout_is_geos_ftp_layout(regen):
    from prepost.io import download
    p = demo.demo_paths(regen)
    geo = regen / "geo"
    assert p["array_matrix"] == geo / download.series_matrix_relpath("GSE990001")
    assert p["rnaseq_matrix"] == geo / download.series_matrix_relpath("GSE990002")
    assert p["rnaseq_counts"] == geo / download.suppl_relpath(
        "GSE990002", "GSE990002_raw_counts.tsv.gz"
    )
    assert p["platform_annot"] == geo / download.platform_relpath("GPL990001", "annot")


def test_gzip_members_are_reproducible(regen):
    gz = sorted(regen.rglob("*.gz"))
    assert len(gz) == 6  # 3 series matrices, the platform annot, 2 count tables
    for path in gz:
        raw = path.read_bytes()
        assert raw[:3] == b"\x1f\x8b\x08", path
        assert raw[3] & 0x08 == 0, f"{path}: gzip header stores a file name"
        assert raw[4:8] == b"\0\0\0\0", f"{path}: gzip mtime is not 0"
        assert len(gzip.decompress(raw)) > 0


# --------------------------------------------------------------------------- formats


def test_array_series_matrix_is_geo_shaped(regen):
    p = demo.demo_paths(regen)
    header, smp, table = _read_matrix(p["array_matrix"])
    first = [line.split("\t")[0] for line in header]
    for key in [
        "!Series_title",
        "!Series_geo_accession",
        "!Series_summary",
        "!Series_overall_design",
        "!Series_platform_id",
        "!Sample_title",
        "!Sample_status",
        "!Sample_source_name_ch1",
        "!Sample_organism_ch1",
        "!Sample_platform_id",
        "!Sample_data_processing",
    ]:
        assert key in first, key
    assert "" in header and first.index("") < first.index(
        "!Sample_title"
    )  # blank line between blocks
    assert header[first.index("!Series_geo_accession")] == '!Series_geo_accession\t"GSE990001"'
    assert first.count("!Sample_characteristics_ch1") == 5
    assert list(table.columns) == list(smp.index)
    assert len(smp) == 25 and smp.index[0] == "GSM9900001" and smp.index[-1] == "GSM9900025"
    text = gzip.decompress(p["array_matrix"].read_bytes()).decode()
    assert '\n"ID_REF"\t"GSM9900001"\t' in text and text.endswith("!series_matrix_table_end\n")
    assert text.count("\tnull") == int(table.isna().sum().sum()) == demo.N_NULL
    annot = _read_annot(p["platform_annot"])
    assert list(table.index) == list(annot["ID"])
    row_count = header[first.index("!Sample_data_row_count")].split("\t")[1]
    assert row_count == f'"{len(table)}"'
    # GEO2R's rule (quantiles 0, .25, .5, .75, .99, 1) must call for log2.
    q = np.nanquantile(table.to_numpy(), [0, 0.25, 0.5, 0.75, 0.99, 1.0])
    assert q[4] > 100 or (q[5] - q[0] > 50 and q[1] > 0)
    assert q[0] > 0


def test_platform_annot_is_geo_shaped(regen):
    path = demo.demo_paths(regen)["platform_annot"]
    text = gzip.decompress(path.read_bytes()).decode()
    lines = text.split("\n")
    assert lines[0] == "^Annotation"
    assert "!Annotation_platform = GPL990001" in lines
    assert any(line.startswith("!Annotation_platform_title = ") for line in lines)
    assert "#Gene symbol = Entrez Gene symbol" in lines
    annot = _read_annot(path)
    assert list(annot.columns[:4]) == ["ID", "Gene title", "Gene symbol", "Gene ID"]
    sym = annot["Gene symbol"]
    assert 2200 <= len(annot) <= 2400 and annot["ID"].is_unique
    assert sym.str.contains(" /// ").sum() == 30
    assert (sym == "").sum() == 30 and annot["ID"][sym == ""].str.startswith("AFFX-").sum() == 24
    single = sym[(sym != "") & ~sym.str.contains("///")]
    assert single.nunique() == 2000
    per_gene = single.value_counts()
    assert set(per_gene.unique()) == {1, 2, 3}
    assert per_gene[["BRCA2", "ATM", "PALB2"]].ge(2).all()


def test_rnaseq_matrix_has_empty_table_and_counts_by_title(regen):
    p = demo.demo_paths(regen)
    header, smp, table = _read_matrix(p["rnaseq_matrix"])
    assert table.shape == (0, 21) and list(table.columns) == list(smp.index)
    assert any(
        line.startswith('!Series_supplementary_file\t"ftp://')
        and "GSE990002_raw_counts.tsv.gz" in line
        for line in header
    )
    counts = pd.read_csv(p["rnaseq_counts"], sep="\t", index_col=0)
    assert counts.index.name == "gene" and counts.index.is_unique
    assert sorted(counts.columns) == sorted(smp["title"]) and list(counts.columns) != list(
        smp["title"]
    )
    assert all(dt.kind == "i" for dt in counts.dtypes) and (counts.to_numpy() >= 0).all()
    lib = counts.sum()
    assert lib.between(4.5e6, 11e6).all()
    annot = _read_annot(demo.demo_paths(regen)["platform_annot"])
    array_genes = set(
        annot["Gene symbol"][(annot["Gene symbol"] != "") & ~annot["Gene symbol"].str.contains("/")]
    )
    shared = len(set(counts.index) & array_genes)
    assert len(counts) == 2000 and 1900 <= shared < 2000


def test_designs_pairs_and_responses(regen):
    p = demo.demo_paths(regen)
    for path, n_pairs, extra in [
        (p["array_matrix"], 12, ("P13", "pre-treatment")),
        (p["rnaseq_matrix"], 10, ("P11", "post-treatment")),
    ]:
        _, smp, _ = _read_matrix(path)
        by = smp.groupby("patient id")["timepoint"].agg(list)
        paired = by[by.map(len) == 2]
        assert len(paired) == n_pairs and all(
            sorted(v) == ["post-treatment", "pre-treatment"] for v in paired
        )
        assert by.drop(paired.index).to_dict() == {extra[0]: [extra[1]]}
        resp = (
            smp.drop_duplicates("patient id").set_index("patient id").loc[paired.index, "response"]
        )
        assert (resp == "pCR").sum() == (resp == "RD").sum() == n_pairs // 2
        assert (
            smp["title"] == smp["patient id"] + "_" + smp["timepoint"].str.split("-").str[0]
        ).all()
        assert set(smp["treatment"]) == {"anthracycline-taxane"}
        assert set(smp["tissue"]) == {"breast tumour biopsy"}
        # posts are not in patient order, so pairing by position would be wrong
        posts = smp[smp["timepoint"] == "post-treatment"]["patient id"].tolist()
        assert posts[:n_pairs] != sorted(posts[:n_pairs])


# --------------------------------------------------------------------------- truth


def test_truth_table_states_the_planted_effects(regen):
    truth = pd.read_csv(regen / "truth.tsv", sep="\t")
    assert list(truth.columns) == ["dataset", "gene", "effect", "log2_effect", "gene_set"]
    assert not truth.duplicated(["dataset", "gene", "effect"]).any()
    t = truth.set_index(["dataset", "gene", "effect"])["log2_effect"]
    # Expected values from the design brief, written out by hand.
    for ds in ["GSE990001", "GSE990002"]:
        assert t[ds, "BRCA2", "post_vs_pre"] == -1.0 and t[ds, "ATM", "post_vs_pre"] == -1.0
        assert t[ds, "RAD51", "post_vs_pre"] == -0.8 and t[ds, "MKI67", "post_vs_pre"] == -0.8
        assert t[ds, "GADD45A", "post_vs_pre"] == 1.0 and t[ds, "FAS", "post_vs_pre_pCR"] == 1.0
        assert (
            t[ds, "IFIT1", "post_vs_pre_RD"],
            t[ds, "IFIT1", "post_vs_pre_pCR"],
            t[ds, "IFIT1", "post_vs_pre"],
        ) == (1.0, 0.0, 0.5)
        assert (
            t[ds, "CYP3A4", "RD_vs_pCR_pre"],
            t[ds, "CYP3A4", "RD_vs_pCR_post"],
            t[ds, "CYP3A4", "post_vs_pre"],
        ) == (1.0, 1.0, 0.0)
        assert (
            t[ds, "PALB2", "RD_vs_pCR_pre"],
            t[ds, "PALB2", "RD_vs_pCR_post"],
            t[ds, "ERCC1", "post_vs_pre_pCR"],
        ) == (1.0, 0.0, 1.0)
        sub = truth[truth["dataset"] == ds]
        assert (
            sub.loc[sub["gene_set"].isin(["housekeeping", "breast_markers"]), "log2_effect"] == 0
        ).all()
        assert (sub.loc[sub["gene"].isin(["DDB2", "CHEK2", "TP53"]), "log2_effect"] == 0).all()
        rnd = sub[(sub["gene_set"] == "random_planted") & (sub["effect"] == "post_vs_pre")]
        assert (
            len(rnd) == 40
            and (rnd["log2_effect"] == 1).sum() == (rnd["log2_effect"] == -1).sum() == 20
        )
        assert sub.groupby("gene").size().eq(5).all()


def test_naive_array_analysis_recovers_truth(regen):
    """Log2, keep each gene's highest-mean single-gene probe, paired differences vs truth."""
    p = demo.demo_paths(regen)
    _, smp, table = _read_matrix(p["array_matrix"])
    annot = _read_annot(p["platform_annot"]).set_index("ID")
    sym = annot["Gene symbol"]
    ok = sym[(sym != "") & ~sym.str.contains("///")]
    lt = np.log2(table.loc[ok.index])
    ranked = lt.assign(gene=ok, m=lt.mean(axis=1)).sort_values("m", ascending=False)
    expr = ranked.drop_duplicates("gene").set_index("gene")[smp.index]
    d, resp = _paired_diffs(expr, smp)
    truth = pd.read_csv(regen / "truth.tsv", sep="\t")
    t = truth[(truth["dataset"] == "GSE990001")].pivot(
        index="gene", columns="effect", values="log2_effect"
    )
    est = pd.DataFrame(
        {
            "post_vs_pre": d.mean(axis=1),
            "post_vs_pre_RD": d.loc[:, resp == "RD"].mean(axis=1),
            "post_vs_pre_pCR": d.loc[:, resp == "pCR"].mean(axis=1),
        }
    ).loc[t.index]
    for eff in est:
        err = est[eff] - t[eff]
        assert err.abs().median() < 0.2, eff
        slope = np.polyfit(t[eff], est[eff], 1)[0]
        assert 0.85 < slope < 1.15, (eff, slope)
    planted = t.index[t["post_vs_pre"].abs() >= 0.8]
    assert (
        np.sign(est.loc[planted, "post_vs_pre"]) == np.sign(t.loc[planted, "post_vs_pre"])
    ).mean() > 0.95
    assert est.loc[["BRCA2", "ATM"], "post_vs_pre"].lt(-0.6).all()
    # the trap: the BRCA2 multi-gene probe is brighter than BRCA2's own probes and goes up
    trap = sym.index[sym.str.startswith("BRCA2 /// ")]
    assert len(trap) == 1
    own = sym.index[sym == "BRCA2"]
    lt_all = np.log2(table)
    assert lt_all.loc[trap[0]].mean() > lt_all.loc[own].mean(axis=1).max()
    dt, _ = _paired_diffs(lt_all.loc[trap], smp)
    assert dt.mean(axis=1).iloc[0] > 0.5


def test_naive_rnaseq_analysis_recovers_truth(regen):
    p = demo.demo_paths(regen)
    _, smp, _ = _read_matrix(p["rnaseq_matrix"])
    counts = pd.read_csv(p["rnaseq_counts"], sep="\t", index_col=0)
    logcpm = np.log2((counts + 0.5) / counts.sum() * 1e6)
    expr = logcpm.rename(columns=dict(zip(smp["title"], smp.index)))[smp.index]
    d, resp = _paired_diffs(expr, smp)
    truth = pd.read_csv(regen / "truth.tsv", sep="\t")
    t = truth[(truth["dataset"] == "GSE990002")].pivot(
        index="gene", columns="effect", values="log2_effect"
    )
    est = d.mean(axis=1).loc[t.index]
    slope = np.polyfit(t["post_vs_pre"], est, 1)[0]
    assert 0.85 < slope < 1.15
    assert (est - t["post_vs_pre"]).abs().median() < 0.25
    assert est.loc[["BRCA2", "ATM"]].lt(-0.5).all()
    nulls = counts.index.difference(t.index[t["post_vs_pre"] != 0])
    assert d.loc[nulls].mean(axis=1).abs().median() < 0.15


# --------------------------------------------------------------------------- prepost.geo (helper C)


def test_demo_parses_with_prepost_geo(regen):
    from prepost.io import counts, geo
    p = demo.demo_paths(regen)
    sm = geo.parse_series_matrix(p["array_matrix"])
    assert sm.accession == "GSE990001"
    assert sm.table.shape == (2330, 25) and int(sm.table.isna().sum().sum()) == demo.N_NULL
    assert list(sm.table.columns) == list(sm.samples.index)
    for col in ["title", "patient id", "timepoint", "response", "treatment", "tissue"]:
        assert col in sm.samples.columns, col
    assert sm.samples.loc["GSM9900013", "title"] == "P13_pre"
    platform = geo.parse_platform(p["platform_annot"])
    assert list(platform.columns) == ["ID", "symbol"] and len(platform) == 2330
    rs = geo.parse_series_matrix(p["rnaseq_matrix"])
    assert rs.table.shape[0] == 0 and len(rs.samples) == 21
    table = counts.read_count_table(p["rnaseq_counts"])
    assert table.shape == (2000, 21) and set(table.columns) == set(rs.samples["title"])


def test_demo_array_through_prepost_expression(regen):
    """GEO2R's log2 rule fires on the demo and the collapse keeps BRCA2's own brightest probe."""
    from prepost.prepare import expression
    p = demo.demo_paths(regen)
    _, smp, table = _read_matrix(p["array_matrix"])
    annot = _read_annot(p["platform_annot"]).rename(columns={"Gene symbol": "symbol"})
    assert expression.needs_log2(table)
    lt = expression.log2_transform(table)
    out = expression.collapse_probes(lt, annot[["ID", "symbol"]])
    genes = out[0] if isinstance(out, tuple) else out
    assert genes.shape == (2000, 25)
    own = annot.loc[annot["symbol"] == "BRCA2", "ID"]
    best = lt.loc[own].mean(axis=1).idxmax()
    np.testing.assert_allclose(genes.loc["BRCA2"].to_numpy(), lt.loc[best].to_numpy())
    d, _ = _paired_diffs(genes, smp)
    assert d.loc["BRCA2"].mean() < -0.6


# --------------------------------------------------------------------------- published table


def test_published_table_is_the_significant_array_genes(regen):
    """The demo's "published" DE table: limma topTable layout, significant genes only, and its
    log fold changes agree with a naive paired analysis of the array series (independent of
    prepost's DE), with CIs that cover the planted effects of the strong genes."""
    p = demo.demo_paths(regen)
    table = pd.read_csv(p["published"], sep="\t")
    assert list(table.columns) == ["ID", "logFC", "CI.L", "CI.R", "AveExpr", "P.Value", "adj.P.Val"]
    assert table["ID"].is_unique and (table["adj.P.Val"] < demo.PUBLISHED_ALPHA).all()
    assert (table["CI.L"] < table["logFC"]).all() and (table["logFC"] < table["CI.R"]).all()
    _, smp, raw = _read_matrix(p["array_matrix"])
    annot = _read_annot(p["platform_annot"]).set_index("ID")
    sym = annot["Gene symbol"]
    ok = sym[(sym != "") & ~sym.str.contains("///")]
    lt = np.log2(raw.loc[ok.index])
    ranked = lt.assign(gene=ok, m=lt.mean(axis=1)).sort_values("m", ascending=False)
    expr = ranked.drop_duplicates("gene").set_index("gene")[smp.index]
    d, _ = _paired_diffs(expr, smp)
    naive = d.mean(axis=1).loc[table["ID"]]
    np.testing.assert_allclose(table["logFC"], naive.to_numpy(), atol=0.02)
    truth = pd.read_csv(regen / "truth.tsv", sep="\t")
    t = truth[(truth["dataset"] == "GSE990001") & (truth["effect"] == "post_vs_pre")].set_index("gene")
    strong = t.index[t["log2_effect"].abs() >= 0.8]
    found = table.set_index("ID").reindex(strong).dropna()
    assert len(found) >= 0.9 * len(strong)  # 12 pairs give high power for |effect| >= 0.8
    assert (np.sign(found["logFC"]) == np.sign(t.loc[found.index, "log2_effect"])).all()
    assert "TP53" not in set(table["ID"]) and "GAPDH" not in set(table["ID"])
