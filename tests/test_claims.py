from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from prepost import vocabulary as V
from prepost.claims.catalogue import ClaimsError, load_claims
from prepost.claims.evaluate import evaluate
from prepost.stats import bh_adjust

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/claims.schema.yaml"

CIT = {"authors": "Kneubil M, Goulart K", "title": "t", "journal": "J Clin Oncol", "year": 2022, "doi": "10.1/x"}


def claim(i, genes, direction="down", contrast="post_vs_pre"):
    return {"id": f"c{i}", "statement": "s", "citation": CIT, "kind": "gene_change",
            "genes": genes, "contrast": contrast, "direction": direction}


def de_table(rows):
    return pd.DataFrame(rows, columns=["gene", "mean_expr", "log2fc", "lfc_se", "stat", "pvalue", "padj"])


def test_bh_matches_statsmodels():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=50) ** 3
    p[[3, 10]] = np.nan
    ours = bh_adjust(p)
    ok = ~np.isnan(p)
    ref = multipletests(p[ok], method="fdr_bh")[1]
    np.testing.assert_allclose(ours[ok], ref, rtol=1e-12)
    assert np.isnan(ours[~ok]).all()


def test_verdicts_cover_every_case():
    de = de_table([
        ["BRCA2", 8, -1.2, 0.2, -6, 1e-6, 1e-4],     # down, significant -> reproduced
        ["ATM", 8, -0.1, 0.2, -0.5, 0.6, 0.9],        # down, ns -> same direction ns
        ["FANCA", 8, 1.5, 0.2, 7.5, 1e-8, 1e-6],      # up, significant -> contradicted
        ["PARP1", 8, 0.2, 0.3, 0.6, 0.5, 0.9],        # up, ns -> opposite ns
        ["BRCA1", 0, 0.0, np.nan, np.nan, np.nan, np.nan],  # untested
    ])
    claims = [claim(1, ["BRCA2"]), claim(2, ["ATM"]), claim(3, ["FANCA"]), claim(4, ["PARP1"]),
              claim(5, ["BRCA1", "NOTAGENE"])]
    out = evaluate(claims, {"d": {"post_vs_pre": de}}).set_index("feature")
    assert out.loc["BRCA2", "verdict"] == V.REPRODUCED
    assert out.loc["ATM", "verdict"] == V.SAME_NS
    assert out.loc["FANCA", "verdict"] == V.CONTRADICTED
    assert out.loc["PARP1", "verdict"] == V.OPPOSITE_NS
    assert out.loc["BRCA1", "verdict"] == V.NOT_TESTABLE
    assert "not tested" in out.loc["BRCA1", "reason"]
    assert out.loc["NOTAGENE", "verdict"] == V.NOT_TESTABLE
    assert out.loc["NOTAGENE", "reason"] == "gene not in the expression data"
    # BH over the 4 tested claims: p = 1e-6, 0.6, 1e-8, 0.5
    np.testing.assert_allclose(out.loc["BRCA2", "claim_padj"], 2e-6)
    np.testing.assert_allclose(out.loc["ATM", "claim_padj"], 0.6)
    np.testing.assert_allclose(out.loc["BRCA2", ["ci_low", "ci_high"]].astype(float),
                               [-1.2 - 1.959964 * 0.2, -1.2 + 1.959964 * 0.2], atol=1e-6)
    assert out.loc["BRCA2", "citation"] == "Kneubil M et al. 2022, J Clin Oncol"


def test_genome_adjustment_uses_de_padj():
    de = de_table([["BRCA2", 8, -1.2, 0.2, -6, 0.001, 0.2]])
    claims = [claim(1, ["BRCA2"])]
    by_claims = evaluate(claims, {"d": {"post_vs_pre": de}}, adjust="claims")
    by_genome = evaluate(claims, {"d": {"post_vs_pre": de}}, adjust="genome")
    assert by_claims.loc[0, "verdict"] == V.REPRODUCED
    assert by_genome.loc[0, "verdict"] == V.SAME_NS


def test_contrast_not_run_is_not_testable():
    out = evaluate([claim(1, ["BRCA2"])], {"d": {}})
    assert out.loc[0, "verdict"] == V.NOT_TESTABLE
    assert "not run" in out.loc[0, "reason"]


def test_project_catalogue_is_valid_and_has_the_kneubil_claims():
    claims = load_claims(ROOT / "config/claims.yaml", SCHEMA)
    genes = {g for c in claims for g in c.get("genes", []) if c["direction"] == "down"}
    assert {"BRCA2", "ATM", "FANCA", "PARP1"} <= genes
    by_id = {c["id"]: c for c in claims}
    assert by_id["kneubil2022_brca2_lower_post"]["published_p"] == 0.009
    assert by_id["kneubil2022_atm_lower_post"]["published_p"] == 0.004


def test_bad_catalogue_names_the_key(tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - id: x\n    statement: s\n    kind: gene_change\n    genes: [A]\n"
                   "    contrast: post_vs_pre\n    direction: sideways\n    citation: {authors: a, title: t, journal: j, year: 2020, doi: d}\n")
    with pytest.raises(ClaimsError, match=r"claims\.yaml: key claims\.0\.direction \(claim 'x'\): 'sideways'"):
        load_claims(bad, SCHEMA)


def test_moderated_t_ci_uses_t_quantile_and_patients_moved():
    de = de_table([["BRCA2", 8, -1.0, 0.25, -4, 0.001, 0.01]])
    de["df_total"] = 7.0
    de["n_pairs"], de["n_up"], de["n_down"] = 8, 1, 7
    out = evaluate([claim(1, ["BRCA2"])], {"d": {"post_vs_pre": de}})
    q = 2.364624251592785  # qt(0.975, 7) in R
    np.testing.assert_allclose(out.loc[0, ["ci_low", "ci_high"]].astype(float), [-1 - q * 0.25, -1 + q * 0.25], rtol=1e-9)
    assert out.loc[0, "n_moved"] == 7 and out.loc[0, "n_pairs"] == 8


def set_claim(contrast, direction="up", treatment=None):
    c = {"id": "s1", "statement": "s", "citation": CIT, "kind": "gene_set_change",
         "gene_set": "ISG", "contrast": contrast, "direction": direction}
    if treatment:
        c["treatment"] = treatment
    return c


def test_gene_set_claim_uses_paired_set_test_with_t_interval():
    tests = pd.DataFrame({"set": ["ISG", "ISG"], "group": ["all", "non_responder"], "n_pairs": [10, 5],
                          "mean_diff": [0.2, 1.0], "sd_diff": [1.0, 0.5], "p_ttest": [0.5, 0.004],
                          "padj_ttest": [0.5, 0.01], "n_up": [6, 5], "n_down": [4, 0]})
    gsea = pd.DataFrame({"set": ["ISG"], "nes": [2.1], "pvalue": [0.001], "padj": [0.002]})
    out = evaluate([set_claim("post_vs_pre_non_responder")], {"d": {}},
                      gsea_tables={"d": {"post_vs_pre_non_responder": gsea}}, set_tests={"d": tests})
    row = out.loc[0]
    assert row["verdict"] == V.REPRODUCED and row["n_moved"] == 5
    se = 0.5 / np.sqrt(5)
    q = 2.776445105197793  # qt(0.975, 4) in R
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], [1 - q * se, 1 + q * se], rtol=1e-9)
    assert row["nes"] == 2.1


def test_unpaired_set_claim_uses_prerank_and_wrong_treatment_is_not_testable():
    gsea = pd.DataFrame({"set": ["ISG"], "nes": [-1.8], "pvalue": [0.01], "padj": [0.03]})
    tables = {"d": {"responder_vs_non_responder_pre": gsea}}
    out = evaluate([set_claim("responder_vs_non_responder_pre", "down")], {"d": {}}, gsea_tables=tables)
    assert out.loc[0, "effect_unit"] == "NES (prerank)" and out.loc[0, "verdict"] == V.REPRODUCED
    out = evaluate([set_claim("responder_vs_non_responder_pre", "down", ["radiotherapy"])], {"d": {}},
                      gsea_tables=tables, treatments={"d": ["chemotherapy"]})
    assert out.loc[0, "verdict"] == V.NOT_TESTABLE and out.loc[0, "reason"].startswith("wrong treatment")


def test_catalogue_covers_every_seed_finding_with_its_citation():
    """The testable findings of seeds 000 and 003 (shared/seeds), each with the seed's reference."""
    claims = {c["id"]: c for c in load_claims(ROOT / "config/claims.yaml", SCHEMA)}

    def find(genes=None, gene_set=None, contrast=None, direction=None):
        return [c for c in claims.values()
                if (genes is None or set(genes) <= set(c.get("genes", [])))
                and (gene_set is None or c.get("gene_set") == gene_set)
                and (contrast is None or c["contrast"] == contrast)
                and (direction is None or c["direction"] == direction)]

    for g in ["BRCA2", "ATM", "FANCA", "PARP1"]:
        hits = find([g], contrast="post_vs_pre", direction="down")
        assert any(c["citation"].get("doi") == "10.1200/JCO.2022.40.16_suppl.e12538" for c in hits), g
    assert find(["BRCA1", "BRCA2"], contrast="post_vs_pre", direction="down")
    for g, p in [("PALB2", 0.005), ("ERCC1", 0.009)]:
        (c,) = find([g], contrast="responder_vs_non_responder_pre", direction="down")
        assert c["published_p"] == p
    xeno = ["CYP3A4", "CYP2A6", "ABCB5", "CYP1A1", "CYP4Z1"]
    (c,) = find(xeno, contrast="responder_vs_non_responder_pre", direction="down")
    assert c["citation"]["doi"] == "10.3390/biom12121834"
    isg = find(gene_set="PREPOST_INTERFERON_STIMULATED")
    assert {c["citation"].get("doi") for c in isg} >= {"10.1158/1078-0432.CCR-17-2551"}
    ddr = find(["GADD45A", "XPC", "PPM1D", "FAS"], direction="up", contrast="post_vs_pre")
    (rad,) = [c for c in ddr if c.get("treatment") == ["radiotherapy"]]
    assert "PMC2662705" in rad["citation"]["url"]
    (chemo,) = [c for c in ddr if c.get("treatment") == ["chemotherapy"]]  # seed 003: same genes after chemo
    assert "PMC5733757" in chemo["citation"]["url"]
    (prolif,) = find(gene_set="PREPOST_PROLIFERATION", direction="down")
    assert prolif["treatment"] == ["radiotherapy"]
    # seed 003 cites the IRDS / chemotherapy overlap only by PMC id: url + note, no DOI
    for c in claims.values():
        if "PMC5733757" in c["citation"].get("url", ""):
            assert "doi" not in c["citation"] and c["citation"]["note"]


def test_real_data_config_validates_and_builds_the_dag(tmp_path):
    """config/real_breast_neoadjuvant.yaml: schema-valid, and Snakemake builds its DAG without
    the network (a dry run only plans downloads)."""
    import copy
    import os
    import shutil
    import subprocess
    import sys

    import yaml
    from snakemake.utils import validate

    path = ROOT / "config/real_breast_neoadjuvant.yaml"
    cfg = yaml.safe_load(path.read_text())
    validate(copy.deepcopy(cfg), str(ROOT / "workflow/schemas/config.schema.yaml"))
    assert {"GSE28844", "GSE18728", "GSE87455"} <= set(cfg["datasets"])
    exe = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
    if exe is None:
        pytest.skip("snakemake not on PATH")
    env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    run = subprocess.run(
        [exe, "-n", "--nolock", "--cores", "1", "--configfile", str(path)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout + run.stderr
    for rule in ("download", "prepare", "de", "enrich", "claims"):
        assert f"\n{rule} " in out, rule


def test_set_claim_of_a_skipped_collection_names_why():
    """A targeted panel: a set claim whose collection was skipped for coverage says so."""
    from types import SimpleNamespace

    import pandas as pd

    from prepost.claims.evaluate import _skipped_collection

    cov = pd.DataFrame({
        "collection": ["curated", "curated"], "set": ["ISG", "OTHER"], "n_genes": [20, 10],
        "n_found": [3, 9], "fraction": [0.15, 0.9],
        "collection_status": ["skipped: only 15.0% of a typical set's genes are among the 730 measured genes", "tested"],
    })
    ev = {"reason": "gene set not tested (absent or too few genes found)"}
    out = _skipped_collection(SimpleNamespace(feature="ISG"), ev, cov)
    assert out["reason"] == ("gene-set collection curated skipped: only 15.0% of a typical set's genes are "
                             "among the 730 measured genes; this set: 3 of 20 genes measured")
    assert _skipped_collection(SimpleNamespace(feature="OTHER"), ev, cov) == ev
    assert _skipped_collection(SimpleNamespace(feature="ISG"), {"reason": "", "effect": 1.0}, cov)["reason"] == ""
