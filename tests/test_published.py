"""Published DE tables (kind: published_de): column mapping, SE / t derivation, claims without
an expression matrix, and the demo's own published table."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from snakemake.utils import validate

from prepost import vocabulary as V
from prepost.claims import effects
from prepost.claims.evaluate import evaluate
from prepost.claims import published as pub
from prepost.paths import resolve_workflow_paths

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
CIT = {"authors": "A B", "title": "t", "journal": "j", "year": 2020, "doi": "10.1/x"}


def _ds(**kw):
    base = {"kind": "published_de", "table": {"path": "x.tsv"}, "contrast": "post_vs_pre",
            "n_pairs": 10, "citation": CIT,
            "columns": {"gene": "Symbol", "log2fc": "logFC", "pvalue": "P", "padj": "FDR"}}
    base.update(kw)
    return base


def _write(tmp_path, df, name="t.tsv", sep="\t"):
    path = tmp_path / name
    df.to_csv(path, sep=sep, index=False)
    return path


def test_se_from_each_source_agrees_with_closed_forms(tmp_path):
    # a gene with known lfc = -1.2, se = 0.3 on a paired t with 9 df (n = 10)
    lfc, se, n = -1.2, 0.3, 10
    t = lfc / se
    p = 2 * stats.t.sf(abs(t), n - 1)
    q = stats.norm.ppf(0.975)
    table = pd.DataFrame({"Symbol": ["BRCA2"], "logFC": [lfc], "SE": [se], "t": [t],
                          "lo": [lfc - q * se], "hi": [lfc + q * se], "P": [p], "FDR": [p]})
    path = _write(tmp_path, table)
    for extra in ({"se": "SE"}, {"stat": "t"}, {"ci_low": "lo", "ci_high": "hi"}, {}):
        cols = {"gene": "Symbol", "log2fc": "logFC", "pvalue": "P", "padj": "FDR", **extra}
        out = pub.read_published(path, _ds(columns=cols), "d").iloc[0]
        assert out["lfc_se"] == pytest.approx(se, rel=1e-9), extra
        assert out["stat"] == pytest.approx(t, rel=1e-9), extra
        # standardised effect: d = t / sqrt(n), Hedges-corrected (prepost.effects.smcc)
        g, v = effects.smcc(t / np.sqrt(n), n)
        assert out["smd"] == pytest.approx(float(g)) and out["smd_se"] == pytest.approx(float(np.sqrt(v)))


def test_t_based_ci_uses_ci_df(tmp_path):
    q = stats.t.ppf(0.975, 20)
    table = pd.DataFrame({"Symbol": ["A"], "logFC": [1.0], "lo": [1 - q * 0.4], "hi": [1 + q * 0.4]})
    path = _write(tmp_path, table)
    cols = {"gene": "Symbol", "log2fc": "logFC", "ci_low": "lo", "ci_high": "hi"}
    out = pub.read_published(path, _ds(columns=cols, ci_df=20), "d").iloc[0]
    assert out["lfc_se"] == pytest.approx(0.4, rel=1e-9)
    assert out["df_total"] == 20
    assert out["pvalue"] == pytest.approx(2 * stats.t.sf(2.5, 9))  # no p column: from t on n-1 df


def test_unpaired_table_uses_group_sizes(tmp_path):
    table = pd.DataFrame({"Symbol": ["PALB2"], "logFC": [-0.8], "t": [-2.5]})
    path = _write(tmp_path, table, "t.csv", sep=",")
    cols = {"gene": "Symbol", "log2fc": "logFC", "stat": "t"}
    ds = _ds(columns=cols, contrast="responder_vs_non_responder_pre",
             n_groups={"responder": 8, "non_responder": 12})
    ds.pop("n_pairs")
    ds["table"] = {"path": "supp.csv"}
    out = pub.read_published(path, ds, "d").iloc[0]
    g, v = effects.smd(-2.5 * np.sqrt(1 / 8 + 1 / 12), 8, 12)
    assert out["smd"] == pytest.approx(float(g)) and out["smd_se"] ** 2 == pytest.approx(float(v))


def test_bad_tables_name_the_file_line_and_column(tmp_path):
    path = _write(tmp_path, pd.DataFrame({"Symbol": ["A", "B"], "logFC": ["1", "x1"], "P": [0.1, 0.2]}))
    with pytest.raises(pub.PublishedTableError, match=r"t\.tsv: line 3, column 'logFC': 'x1'"):
        pub.read_published(path, _ds(columns={"gene": "Symbol", "log2fc": "logFC", "pvalue": "P"}), "d")
    with pytest.raises(pub.PublishedTableError, match=r"column\(s\) padj: 'FDR' of datasets\.d\.columns"):
        pub.read_published(path, _ds(), "d")
    with pytest.raises(pub.PublishedTableError, match="need one of se"):
        pub.read_published(path, _ds(columns={"gene": "Symbol", "log2fc": "logFC"}), "d")
    ds = _ds(contrast="responder_vs_non_responder_pre")
    with pytest.raises(pub.PublishedTableError, match="needs n_groups"):
        pub.sample_sizes(ds, "d")


def _claims():
    return [
        {"id": "g", "statement": "s", "citation": CIT, "kind": "gene_change",
         "genes": ["BRCA2", "ATM"], "contrast": "post_vs_pre", "direction": "down"},
        {"id": "r", "statement": "s", "citation": CIT, "kind": "gene_change",
         "genes": ["PALB2"], "contrast": "responder_vs_non_responder_pre", "direction": "down"},
        {"id": "s", "statement": "s", "citation": CIT, "kind": "gene_set_change",
         "gene_set": "ISG", "contrast": "post_vs_pre", "direction": "up"},
    ]


def test_claims_on_a_published_table(tmp_path):
    table = pd.DataFrame({"Symbol": ["BRCA2"], "logFC": [-1.0], "SE": [0.2], "P": [1e-4], "FDR": [1e-3]})
    path = _write(tmp_path, table)
    ds = _ds(columns={"gene": "Symbol", "log2fc": "logFC", "se": "SE", "pvalue": "P", "padj": "FDR"},
             significant_only=True)
    std = pub.read_published(path, ds, "pub")
    eff = std.assign(contrast="post_vs_pre").rename(columns={"gene": "feature"})
    out = evaluate(_claims(), {"pub": {"post_vs_pre": std}}, effects={"pub": eff},
                      published={"pub": ds}).set_index("feature")
    assert out.loc["BRCA2", "verdict"] == V.REPRODUCED
    assert out.loc["BRCA2", "smd"] == pytest.approx(std.loc[0, "smd"])
    q = stats.norm.ppf(0.975)  # no ci_df: a normal-quantile interval
    np.testing.assert_allclose(out.loc["BRCA2", ["ci_low", "ci_high"]].astype(float), [-1 - q * 0.2, -1 + q * 0.2])
    assert out.loc["ATM", "verdict"] == V.NOT_TESTABLE
    assert out.loc["ATM", "reason"].startswith("gene not in the published table (it lists only significant genes;")
    assert np.isnan(out.loc["ATM", "smd"])
    assert out.loc["PALB2", "reason"] == "contrast responder_vs_non_responder_pre not in the published table (it reports post_vs_pre)"
    assert out.loc["ISG", "verdict"] == V.NOT_TESTABLE
    assert out.loc["ISG", "reason"] == "gene set not in the configured collections"
    ds_all = dict(ds, significant_only=False)
    out = evaluate(_claims(), {"pub": {"post_vs_pre": std}}, published={"pub": ds_all}).set_index("feature")
    assert out.loc["ATM", "reason"] == "gene not in the published table"


def test_schema_accepts_published_de_and_requires_its_keys():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(copy.deepcopy(cfg), SCHEMA)
    bad = copy.deepcopy(cfg)
    bad["datasets"]["demo_published"].pop("n_pairs")
    with pytest.raises(Exception, match="'n_pairs' is a required property"):
        validate(bad, SCHEMA)
    bad = copy.deepcopy(cfg)
    bad["datasets"]["demo_published"].pop("columns")
    with pytest.raises(Exception, match="'columns' is a required property"):
        validate(bad, SCHEMA)
    bad = copy.deepcopy(cfg)
    bad["datasets"]["demo_array"].pop("pairing")
    with pytest.raises(Exception, match="'pairing' is a required property"):
        validate(bad, SCHEMA)


def test_demo_published_table_reads_back_the_array_de(tmp_path):
    """The committed demo table, read through the demo config, gives back the SE its CI was
    built from: CI half-width / qt(0.975, df_total) of the generating fit."""
    cfg = resolve_workflow_paths(yaml.safe_load((ROOT / "config/config.yaml").read_text()), str(ROOT))
    cfg = cfg["datasets"]["demo_published"]
    path = ROOT / cfg["table"]["path"]
    raw = pd.read_csv(path, sep="\t")
    std = pub.read_published(path, cfg, "demo_published")
    assert len(std) == len(raw) and (raw["adj.P.Val"] < 0.05).all()
    # back out the t from the p-value on the moderated t's df, independent of the CI route
    t_from_p = np.sign(raw["logFC"]) * stats.t.isf(raw["P.Value"] / 2, cfg["ci_df"])
    ok = raw["P.Value"] > 1e-12  # tiny p-values lose digits in a 6-significant-digit table
    np.testing.assert_allclose(std["stat"][ok], t_from_p[ok], rtol=2e-3)
    brca2 = std.set_index("gene").loc["BRCA2"]
    assert brca2["log2fc"] < 0 and brca2["smd"] < 0
    assert "TP53" not in set(std["gene"])  # a null gene: absent from a significant-only table


def test_universe_tells_not_significant_from_not_measured(tmp_path):
    """A significant-only table omits ATM: with the assay's gene list, ATM (measured) reads
    'not significant in the source' and PALB2's absent partner gene 'not measured'."""
    table = pd.DataFrame({"Symbol": ["BRCA2"], "logFC": [-1.0], "SE": [0.2], "P": [1e-4], "FDR": [1e-3]})
    ds = _ds(columns={"gene": "Symbol", "log2fc": "logFC", "se": "SE", "pvalue": "P", "padj": "FDR"},
             significant_only=True)
    std = pub.read_published(_write(tmp_path, table), ds, "pub")
    claims = _claims() + [{"id": "m", "statement": "s", "citation": CIT, "kind": "gene_change",
                           "genes": ["NOTONCHIP"], "contrast": "post_vs_pre", "direction": "down"}]
    out = evaluate(claims, {"pub": {"post_vs_pre": std}}, published={"pub": ds},
                   universes={"pub": {"BRCA2", "ATM", "TP53"}}).set_index("feature")
    assert out.loc["BRCA2", "verdict"] == V.REPRODUCED
    assert out.loc["ATM", "verdict"] == V.NS_UNREPORTED
    assert out.loc["ATM", "reason"].startswith("measured, not significant in the source")
    assert np.isnan(out.loc["ATM", "pvalue"]) and out.loc["ATM", "direction_observed"] == ""
    assert out.loc["NOTONCHIP", "verdict"] == V.NOT_TESTABLE
    assert out.loc["NOTONCHIP", "reason"].startswith("not measured")
    # the claims BH runs over real p-values only: BRCA2's claim_padj is its own p here
    assert out.loc["BRCA2", "claim_padj"] == pytest.approx(1e-4)


def test_universe_file_errors_name_the_line(tmp_path):
    good = tmp_path / "u.txt"
    good.write_text("# assay genes\nBRCA2\n\nATM\n")
    assert pub.read_universe(good) == {"BRCA2", "ATM"}
    bad = tmp_path / "bad.txt"
    bad.write_text("BRCA2\nATM\t-1.2\n")
    with pytest.raises(pub.PublishedTableError, match=r"bad.txt: line 2: .*not one gene symbol"):
        pub.read_universe(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(pub.PublishedTableError, match="lists no gene"):
        pub.read_universe(empty)


def test_set_claim_on_a_complete_table_is_a_competitive_rank_sum(tmp_path):
    """Members' t against the other genes' by rank sum; p against the closed-form normal
    approximation with continuity correction (no ties), effect = difference of mean t."""
    rng = np.random.default_rng(3)
    genes = [f"G{i}" for i in range(300)]
    t = rng.normal(size=300)
    t[:15] += 1.5  # the set's members go up
    table = pd.DataFrame({"Symbol": genes, "logFC": t * 0.2, "t": t})
    ds = _ds(columns={"gene": "Symbol", "log2fc": "logFC", "stat": "t"})
    std = pub.read_published(_write(tmp_path, table), ds, "pub")
    members = genes[:15] + ["ABSENT1"]
    out = evaluate(_claims(), {"pub": {"post_vs_pre": std}}, published={"pub": ds},
                   gene_sets={"ISG": members}).set_index("feature")
    row = out.loc["ISG"]
    n1, n2 = 15, 285
    ranks = stats.rankdata(t)
    u = ranks[:15].sum() - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2 - 0.5) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    assert row["pvalue"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)
    assert row["effect"] == pytest.approx(t[:15].mean() - t[15:].mean(), rel=1e-12)
    assert row["verdict"] == V.REPRODUCED and row["n_pairs"] == 15
    assert np.isnan(row["smd"])  # a competitive statistic is not pooled with standardised effects


def test_demo_published_table_judges_set_claims_descriptively():
    """The demo's significant-only table with its universe and the curated GMT: each set claim is
    described (members listed up / down of those measured), never given a test verdict; the
    counts match a direct count on the files."""
    from prepost.enrich.genesets import read_gmt

    cfg = resolve_workflow_paths(yaml.safe_load((ROOT / "config/config.yaml").read_text()), str(ROOT))
    ds = cfg["datasets"]["demo_published"]
    std = pub.read_published(ROOT / ds["table"]["path"], ds, "demo_published")
    universe = pub.read_universe(ROOT / ds["universe"]["path"])
    gmt = read_gmt(ROOT / "config/genesets/prepost_curated.gmt")
    sets = gmt.groupby("set")["gene"].apply(list).to_dict()
    catalogue = yaml.safe_load((ROOT / "config/claims.yaml").read_text())["claims"]
    out = evaluate(catalogue, {"demo_published": {"post_vs_pre": std}}, published={"demo_published": ds},
                   universes={"demo_published": universe}, gene_sets=sets,
                   treatments={"demo_published": ds["treatment"]})
    set_rows = out[(out["kind"] == "gene_set_change") & (out["contrast"] == "post_vs_pre")
                   & ~out["reason"].str.startswith("wrong treatment")]
    assert len(set_rows)
    for r in set_rows.itertuples():
        members = sets[r.feature]
        listed = std[std["gene"].isin(members)]
        measured = sum(g in universe for g in members)
        assert r.verdict == V.NOT_TESTABLE
        assert r.reason.startswith(f"descriptive only (significant-only table): of {len(members)} set genes, "
                                   f"{measured} measured; {(listed['log2fc'] > 0).sum()} listed as "
                                   f"significantly up, {(listed['log2fc'] < 0).sum()} down")
    # a post_vs_pre claim gene that the array measured but the table omits (not significant)
    genes = out[(out["kind"] == "gene_change") & (out["contrast"] == "post_vs_pre")]
    omitted = genes[~genes["feature"].isin(std["gene"]) & genes["feature"].isin(universe)
                    & ~genes["reason"].str.startswith("wrong treatment")]
    assert (omitted["verdict"] == V.NS_UNREPORTED).all()
