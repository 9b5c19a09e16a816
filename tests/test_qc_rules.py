"""QC rules against simulated truth (prepost.qc.simulate) and on real GSE91061 counts: clusters
of contaminated or degraded libraries, a lone noisy library, swapped pairs, sex from
expression, acting on flags (qc.exclude), PC-field associations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, SHARED_DATA
from prepost.qc import exclude as qc_exclude
from prepost.qc import identity, outliers
from prepost.qc.samples import correlation_outliers, pc_associations, qc_dataset
from prepost.qc.simulate import paired_cohort


def _qc(cohort, sheet=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return qc_dataset(cohort.counts, "counts", cohort.sheet if sheet is None else sheet)


@pytest.mark.parametrize("defect", ["tissue", "degraded"])
def test_a_planted_cluster_is_flagged_and_the_correlation_fence_alone_misses_it(defect):
    c = paired_cohort(40, 3000, 11, defect=defect, fraction=0.10)
    res = _qc(c)
    s = res.samples.set_index("sample")
    truth = c.defect != ""
    assert truth.sum() == 8
    assert s.loc[truth[truth].index, "outlier"].mean() >= 0.9
    assert s.loc[truth[~truth].index, "outlier"].sum() <= 1  # of 72 clean samples
    if defect == "degraded":  # the old rule: the group drags the quartiles with it
        fence = correlation_outliers(res.matrix)
        assert fence.loc[truth[truth].index, "outlier"].mean() < 0.9


def test_clean_cohorts_are_rarely_flagged():
    clean = flagged = 0
    for seed in range(3):
        s = _qc(paired_cohort(40, 3000, 20 + seed)).samples
        clean += len(s)
        flagged += int(s["outlier"].sum())
    assert flagged <= 2  # <= 1 per 100 samples, 240 samples


def test_a_lone_noisy_library_is_caught_and_attributed_to_itself():
    c = paired_cohort(30, 3000, 5, defect="noisy", n_defect=1)
    res = _qc(c)
    bad = c.defect[c.defect != ""].index[0]
    s = res.samples.set_index("sample")
    assert s.at[bad, "outlier"]
    pr = res.pair_rule.set_index("attributed_to")
    assert bad in pr.index  # the pair rule names the noisy sample, not its partner
    assert s["outlier"].sum() <= 2


def test_pair_rule_attributes_the_defect_to_the_contaminated_sample():
    c = paired_cohort(30, 3000, 8, defect="tissue", fraction=0.07)
    res = _qc(c)
    planted = set(c.defect[c.defect != ""].index)
    named = set(res.pair_rule.loc[res.pair_rule["flag"].astype(bool), "attributed_to"])
    assert planted <= named and len(named - planted) <= 1


def test_small_cohorts_are_not_judged_by_distances():
    c = paired_cohort(8, 2000, 3, defect="tissue", fraction=0.2)
    res = _qc(c)
    assert res.pair_rule.empty
    assert not res.samples["distance_outlier"].any()
    assert res.samples["score_distance"].isna().all()


def test_robust_distance_matches_its_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40))
    x[:3] += 8  # a planted group
    rd = outliers.robust_distances(x)
    assert rd["flag"].iloc[:3].all() and rd["flag"].iloc[3:].sum() <= 1
    assert rd["sd_cutoff"].iloc[0] == pytest.approx(outliers.SD_FACTOR * 20.515, rel=1e-4)  # chi2(5) 0.999


def test_swapped_pairs_are_flagged_and_the_true_partner_named():
    c = paired_cohort(40, 3000, 9, swap=(1, 4))
    ident = _qc(c).pair_identity.set_index("patient")
    assert ident.loc[["P002", "P005"], "flag"].all()
    assert ident.at["P002", "best_other_patient"] == "P005"
    assert ident.at["P005", "best_other_patient"] == "P002"
    assert ident["flag"].sum() <= 3  # the two swapped + at most one genuine pair of 38
    assert (ident["basis"] == "identity genes").all()


def test_genuine_pairs_rarely_flagged():
    genuine = flagged = 0
    for seed in range(4):
        ident = _qc(paired_cohort(40, 2000, 40 + seed)).pair_identity
        genuine += len(ident)
        flagged += int(ident["flag"].sum())
    assert flagged <= 2  # 160 genuine pairs


def test_sex_calls_equal_the_truth_and_a_wrong_sheet_is_flagged():
    c = paired_cohort(30, 2000, 4)
    sheet = c.sheet.copy()
    wrong = sheet["sample"] == "S003_post"
    sheet.loc[wrong, "sex"] = "female" if sheet.loc[wrong, "sex"].iloc[0] == "male" else "male"
    s = _qc(c, sheet).samples.set_index("sample")
    called = s["sex_expr"] != "unknown"
    truth = c.sheet.set_index("sample")["sex"]
    assert called.mean() > 0.9
    assert (s.loc[called, "sex_expr"] == truth[called[called].index]).all()
    assert s.index[s["sex_mismatch"]].tolist() == ["S003_post"]
    assert "sex" in s.at["S003_post", "qc_flags"]


def test_expressed_sex_disagreeing_within_a_pair_flags_identity():
    c = paired_cohort(30, 2000, 12)
    sex = c.truth["sex"]
    m = next(p for p, v in sex.items() if v == "male")
    f = next(p for p, v in sex.items() if v == "female")
    counts = c.counts.copy()
    a, b = f"S{int(m[1:]):03d}_post", f"S{int(f[1:]):03d}_post"
    counts[a], counts[b] = c.counts[b].to_numpy(), c.counts[a].to_numpy()  # swapped libraries
    res = qc_dataset(counts, "counts", c.sheet)
    ident = res.pair_identity.set_index("patient")
    assert ident.loc[[m, f], "flag"].all()
    assert all("sex differs" in r for r in ident.loc[[m, f], "reason"])


def test_foreign_reads_name_the_genes():
    c = paired_cohort(30, 2000, 2)
    counts = c.counts.copy()
    rare = counts.median(axis=1).sort_values().index[:5]
    counts.loc[rare, "S001_pre"] = 200_000
    s = identity.foreign_reads(counts, counts / (counts.sum() / counts.sum().median())).loc["S001_pre"]
    assert s["n_foreign_genes"] == 5 and s["foreign_share"] > 0.05
    assert set(s["foreign_genes"].split(", ")) == set(rare)


def _sheet_for(c):
    pairs = c.sheet.assign(status="kept", reason="complete pair")
    return c.sheet.copy(), pairs[["sample", "patient", "timepoint", "status", "reason"]]


def test_exclusion_modes():
    c = paired_cohort(30, 2000, 6, defect="tissue", fraction=0.05)
    res = _qc(c)
    sheet, pairs = _sheet_for(c)
    flagged = set(res.samples.loc[res.samples["outlier"], "sample"])
    assert flagged
    used, pt, table = qc_exclude.apply_exclusion(sheet, pairs, res.samples, "none")
    assert not used["qc_excluded"].any() and set(table.loc[table["would_exclude"], "sample"]) >= flagged
    assert used["in_pair"].all()
    used, pt, table = qc_exclude.apply_exclusion(sheet, pairs, res.samples, "outliers")
    u = used.set_index("sample")
    for smp in flagged:
        assert not u.at[smp, "usable"] and not u.at[smp, "in_pair"]
        mate = u.index[(u["patient"] == u.at[smp, "patient"]) & (u.index != smp)][0]
        assert u.at[mate, "usable"] and not u.at[mate, "in_pair"]
        assert "partner" in u.at[mate, "qc_reason"]
    assert set(pt.loc[pt["qc_status"] == "excluded", "sample"]) == flagged
    used, _, _ = qc_exclude.apply_exclusion(sheet, pairs, res.samples, "list", ["S002_pre"])
    assert used.set_index("sample").loc["S002_pre", "qc_excluded"]
    with pytest.raises(qc_exclude.ExclusionError, match="S999_pre"):
        qc_exclude.apply_exclusion(sheet, pairs, res.samples, "list", ["S999_pre"])
    with pytest.raises(qc_exclude.ExclusionError, match="qc.exclude"):
        qc_exclude.apply_exclusion(sheet, pairs, res.samples, "sometimes")


def test_pc_associations_find_the_field_that_drives_a_pc():
    rng = np.random.default_rng(1)
    n = 40
    batch = np.repeat(["a", "b"], n // 2)
    age = rng.normal(60, 10, n)
    scores = pd.DataFrame({"PC1": (batch == "b") * 3 + rng.normal(0, 0.5, n), "PC2": rng.normal(size=n)},
                          index=[f"s{i}" for i in range(n)])
    sheet = pd.DataFrame({"sample": scores.index, "batch": batch, "age": age})
    a = pc_associations(scores, sheet).set_index(["field", "pc"])
    assert a.at[("batch", "PC1"), "pvalue"] < 1e-10 and a.at[("batch", "PC1"), "r2"] > 0.8
    y = scores["PC1"].to_numpy()
    grp = [y[batch == g] for g in ("a", "b")]
    ss_b = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in grp)
    assert a.at[("batch", "PC1"), "r2"] == pytest.approx(ss_b / ((y - y.mean()) ** 2).sum())
    assert a.at[("age", "PC2"), "r2"] == pytest.approx(np.corrcoef(age, scores["PC2"])[0, 1] ** 2)


# ------------------------------------------------------------------------------------------
# real data: GSE91061 (melanoma, 43 pairs), skipped without ../shared/data
# ------------------------------------------------------------------------------------------
real = pytest.mark.skipif(not (SHARED_DATA / "geo/GSE91061").is_dir(), reason="../shared/data absent")


def _real_path(p: str) -> str:
    return str(SHARED_DATA / p.split("shared/data/", 1)[1]) if "shared/data/" in p else str(ROOT / p)


@pytest.fixture(scope="module")
def gse91061():
    from prepost.prepare.dataset import prepare_dataset

    cfg = yaml.safe_load((ROOT / "config/examples/gse91061.yaml").read_text())
    ds = cfg["datasets"]["riaz2017"]
    for m in ds["gene_map"]:
        m["path"] = _real_path(m["path"])
    files = {"expression": _real_path(ds["expression"]), "samples": _real_path(ds["samples"]),
             **{f"gene_map_{i}": m["path"] for i, m in enumerate(ds["gene_map"])}}
    return prepare_dataset("riaz2017", ds, files)


@real
def test_gse91061_planted_swap_is_flagged(gse91061):
    p = gse91061
    sheet = p.sheet.copy()
    before = qc_dataset(p.expression, p.values, sheet).pair_identity.set_index("patient")
    # exchange the post labels of two patients with well-supported identity
    ok = before[before["z_own"] > 3].index[:2].tolist()
    a, b = ok
    pa = (sheet["patient"] == a) & (sheet["timepoint"] == "post")
    pb = (sheet["patient"] == b) & (sheet["timepoint"] == "post")
    sheet.loc[pa, "patient"], sheet.loc[pb, "patient"] = b, a
    after = qc_dataset(p.expression, p.values, sheet).pair_identity.set_index("patient")
    assert after.loc[[a, b], "flag"].all()
    assert after.at[a, "best_other_patient"] == b and after.at[b, "best_other_patient"] == a
    assert (after["basis"] == "identity genes").all() and after["n_genes"].iloc[0] >= 20
    # the genuine pairs keep their verdicts
    assert after.drop(index=[a, b])["flag"].sum() == before.drop(index=[a, b])["flag"].sum()


@real
def test_gse91061_writes_every_qc_output(gse91061, tmp_path):
    from prepost import files
    from prepost.qc.run import run_qc

    p = gse91061
    files.write_parquet(p.expression, tmp_path / "expr.parquet")
    files.write_tsv(p.sheet, tmp_path / "samples.tsv")
    files.write_tsv(p.ledger, tmp_path / "pairs.tsv")
    (tmp_path / "prepare.json").write_text('{"values": "counts", "dataset": "riaz2017"}')
    tables = ["samples_qc", "pair_identity", "pair_distances", "pc_associations", "exclusions",
              "samples_used", "pairs_used"]
    plots = ["pca", "correlation", "distribution", "scree", "associations"]
    out = {**{t: tmp_path / f"{t}.tsv" for t in tables}, **{k: tmp_path / f"{k}.png" for k in plots}}
    info = run_qc(tmp_path / "expr.parquet", tmp_path / "samples.tsv", tmp_path / "prepare.json",
                  tmp_path / "pairs.tsv", "riaz2017", out=out, exclude="outliers")
    assert all(f.stat().st_size > 0 for f in out.values())
    sq = pd.read_csv(out["samples_qc"], sep="\t")
    assert len(sq) == p.expression.shape[1]
    assert set(sq["sex_expr"]) <= {"male", "female", "unknown"}
    assert (sq["sex_expr"] != "unknown").mean() > 0.9
    used = pd.read_csv(out["samples_used"], sep="\t")
    assert set(used.loc[used["qc_excluded"], "sample"]) == set(info["excluded"])


def test_a_panel_without_identity_genes_flags_no_pair_and_calls_no_sex():
    """A targeted panel (the real NanoString cohort holds UTY only): the fallback score is shown,
    never flagged, and one Y gene at background calls no sex."""
    c = paired_cohort(30, 2000, 14, swap=(1, 4))
    keep = [g for g in c.counts.index if g not in identity.IDENTITY_GENES or g == "UTY"]
    counts = c.counts.loc[keep]
    counts.loc["UTY"] = np.random.default_rng(0).integers(1, 28, counts.shape[1])  # background
    res = qc_dataset(counts, "counts", c.sheet)
    ident = res.pair_identity
    assert ident["basis"].str.contains("not assessable").all() and not ident["flag"].any()
    assert (res.samples["sex_expr"] == "unknown").all()
    rule = identity.expressed_sex(res.matrix, None)["sex_rule"].iloc[0]
    assert rule.startswith("not called: the data hold 1 Y-linked gene(s) and no XIST")
