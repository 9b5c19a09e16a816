"""Whole-workflow smoke tests on the embedded demo, downloaded from a GEO-like server on 127.0.0.1."""

import filecmp
import hashlib
import io
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_run, run_workflow, workflow_cmd

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_every_rule_in_dry_run(tmp_path, geo_server):
    proc = run_workflow(tmp_path, geo_server, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ["download", "prepare", "de", "genesets", "enrich", "claims", "all"]:
        assert f"\n{rule} " in proc.stdout or f"rule {rule}:" in proc.stdout, rule


def test_one_enrich_job_per_dataset_whatever_its_contrasts(tmp_path, geo_server):
    """Datasets with different lists of contrasts get an enrich rule each (enrich, enrich_2 in
    the order of the sorted datasets), each job writing exactly its dataset's contrasts' files
    and the set scores."""
    cmd = workflow_cmd(tmp_path, geo_server, "-n")  # writes config.yaml
    cfg_path = tmp_path / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["datasets"]["demo_array"]["contrasts"] = ["post_vs_pre"]
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = [b for b in proc.stdout.split("\n\n") if "rule enrich" in b]
    by_ds = {next(w.split("=")[1] for w in b.split() if w.startswith("ds=")): b for b in blocks}
    assert set(by_ds) == {"demo_array", "demo_rnaseq"}, blocks
    assert "rule enrich:" in by_ds["demo_array"] and "rule enrich_2:" in by_ds["demo_rnaseq"]
    assert "results/demo_array/enrich/post_vs_pre/gsea.tsv" in by_ds["demo_array"]
    assert "post_vs_pre_responder" not in by_ds["demo_array"]
    assert "results/demo_array/enrich/set_scores.tsv" in by_ds["demo_array"]
    for c in ("post_vs_pre", "post_vs_pre_responder", "interaction"):
        assert f"results/demo_rnaseq/enrich/{c}/gsea.dotplot.png" in by_ds["demo_rnaseq"]


@pytest.mark.parametrize("cores, threads", [(2, 1), (4, 2)])
def test_dataset_jobs_take_two_threads_only_with_spare_cores(tmp_path, geo_server, cores, threads):
    """The demo's 2 expression datasets on 2 cores: their de and enrich jobs run side by side
    with 1 thread each; with 4 cores each job gets 2 (its contrasts in two workers)."""
    proc = subprocess.run(workflow_cmd(tmp_path, geo_server, "-n", "--cores", str(cores)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = [b for b in proc.stdout.split("\n\n") if "\nrule de:" in b or "\nrule enrich:" in b]
    assert len(blocks) == 4, blocks
    for b in blocks:
        assert (f"threads: {threads}" in b) if threads > 1 else ("threads:" not in b), b


def test_planted_claims_reproduced(demo_run):
    claims = pd.read_csv(demo_run / "results/claims.tsv", sep="\t")
    assert set(claims["dataset"]) == {"demo_array", "demo_rnaseq", "demo_published"}
    for gene in ["BRCA2", "ATM", "FANCA", "PARP1"]:
        rows = claims[(claims.feature == gene) & (claims.contrast == "post_vs_pre")]
        assert len(rows) >= 3
        assert (rows["verdict"] == "reproduced").all(), rows[["dataset", "feature", "effect", "pvalue", "verdict"]]


def test_downloads_are_recorded_with_checksums(demo_run, geo_server):
    for ds in ["demo_array", "demo_rnaseq"]:
        manifest = pd.read_csv(demo_run / f"resources/geo/{ds}/manifest.tsv", sep="\t")
        assert len(manifest) >= 2
        for row in manifest.itertuples():
            local = demo_run / f"resources/geo/{ds}" / row.file
            assert hashlib.sha256(local.read_bytes()).hexdigest() == row.sha256
            assert row.url.startswith(geo_server)
            assert local.stat().st_size == row.bytes


def test_pair_ledger_reports_unpaired_sample(demo_run):
    for ds in ["demo_array", "demo_rnaseq"]:
        ledger = pd.read_csv(demo_run / f"results/{ds}/pairs.tsv", sep="\t")
        dropped = ledger[ledger.status == "dropped"]
        assert len(dropped) == 1
        assert dropped["reason"].str.startswith("unpaired").all()
        kept = ledger[ledger.status == "kept"]
        assert (kept.groupby("patient")["timepoint"].apply(sorted) == pd.Series([["post", "pre"]] * kept.patient.nunique(), index=sorted(kept.patient.unique()))).all()


def test_de_tables_have_documented_columns(demo_run):
    for ds in ["demo_array", "demo_rnaseq"]:
        de = pd.read_csv(demo_run / f"results/{ds}/de/post_vs_pre.tsv", sep="\t")
        assert list(de.columns[:7]) == ["gene", "mean_expr", "log2fc", "lfc_se", "stat", "pvalue", "padj"]
        assert de["gene"].is_unique
        assert len(de) > 1000


def test_every_contrast_has_its_fit_record(demo_run):
    """de/{contrast}.fit.json beside each table names engine and trend; the report's methods too."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    html = (demo_run / "results/report.html").read_text()
    for ds in ["demo_array", "demo_rnaseq"]:
        for c in cfg["datasets"][ds]["contrasts"]:
            record = json.loads((demo_run / f"results/{ds}/de/{c}.fit.json").read_text())
            de = pd.read_csv(demo_run / f"results/{ds}/de/{c}.tsv", sep="\t")
            assert record["dataset"] == ds and record["contrast"] == c
            assert record["genes"] == len(de) and record["genes_padj_below_0.05"] == (de["padj"] < 0.05).sum()
            if ds == "demo_array":
                assert record["engine"] == "limma-style moderated t (prepost.de.limma)"
                assert record["dispersion_trend"] is None
            else:
                assert record["engine"] in ("prepost.de.nb", "pydeseq2")
                assert record["dispersion_trend"] in ("parametric", "mean")
    methods = html.split('id="methods-text">', 1)[1].split("</p>", 1)[0]
    contrasts = ", ".join(cfg["datasets"]["demo_array"]["contrasts"])  # one engine, no trend
    assert f"Engine, demo_array: {contrasts}: limma-style moderated t (prepost.de.limma)." in methods
    rnaseq = methods.split("Engine and dispersion trend, demo_rnaseq: ", 1)[1].split(". ", 1)[0]
    for c in cfg["datasets"]["demo_rnaseq"]["contrasts"]:
        assert c in rnaseq
    assert "prepost.de.nb (DESeq2 1.38 re-implementation), parametric trend " in rnaseq


def test_second_run_is_byte_identical(demo_run, tmp_path, geo_server):
    proc = run_workflow(tmp_path, geo_server)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tsvs = sorted(p.relative_to(demo_run / "results") for pattern in ("*.tsv", "*.png", "*.fit.json")
                  for p in (demo_run / "results").rglob(pattern) if "benchmarks" not in p.parts)
    assert len(tsvs) >= 13
    for rel in tsvs:
        assert filecmp.cmp(demo_run / "results" / rel, tmp_path / "results" / rel, shallow=False), rel


def test_rerun_has_nothing_to_do(demo_run, geo_server):
    proc = run_workflow(demo_run, geo_server, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_snakemake_report(demo_run, geo_server):
    report = demo_run / "snakemake-report.html"
    proc = run_workflow(demo_run, geo_server, "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.stat().st_size > 10_000


def test_planted_pathways_found_and_control_set_not(demo_run):
    for ds in ["demo_array", "demo_rnaseq"]:
        gsea = pd.read_csv(demo_run / f"results/{ds}/enrich/post_vs_pre/gsea.tsv", sep="\t").set_index("set")
        assert gsea.loc["PREPOST_PROLIFERATION", "padj"] < 0.05 and gsea.loc["PREPOST_PROLIFERATION", "nes"] < 0
        assert gsea.loc["PREPOST_RADIATION_DDR", "padj"] < 0.05 and gsea.loc["PREPOST_RADIATION_DDR", "nes"] > 0
        assert gsea.loc["PREPOST_REFERENCE_GENES", "padj"] > 0.25
        tests = pd.read_csv(demo_run / f"results/{ds}/enrich/set_tests.tsv", sep="\t")
        isg = tests[(tests.set == "PREPOST_INTERFERON_STIMULATED")].set_index("group")
        # planted: ISGs rise after treatment in non-responders only
        assert isg.loc["non_responder", "mean_diff"] > 0.5 and isg.loc["non_responder", "p_ttest"] < 0.05
        assert isg.loc["responder", "p_ttest"] > 0.05


def test_meta_analysis_and_forest_plots(demo_run):
    """claims_meta.tsv pools each claim once per cohort (the published table is demo_array's own
    patients), and every claim has a forest plot."""
    claims = pd.read_csv(demo_run / "results/claims.tsv", sep="\t")
    meta = pd.read_csv(demo_run / "results/claims_meta.tsv", sep="\t", keep_default_na=False,
                       na_values=["NA"])
    ids = [c["id"] for c in yaml.safe_load((ROOT / "config/claims.yaml").read_text())["claims"]]
    assert set(meta["claim"]) == set(ids)
    for cid in ids:
        assert (demo_run / f"results/claims/forest/{cid}.png").read_bytes()[:4] == b"\x89PNG"
    brca2 = meta[(meta.claim == "kneubil2022_brca2_lower_post") & (meta.feature == "BRCA2")].iloc[0]
    assert brca2["k"] == 2 and brca2["datasets"] == "demo_array,demo_rnaseq"
    assert "demo_published left out (same patients as demo_array)" in brca2["reason"]
    assert brca2["verdict"] == "reproduced" and brca2["effect"] < 0
    pub = claims[claims.dataset == "demo_published"].set_index(["claim", "feature"])
    assert pub.loc[("kneubil2022_brca2_lower_post", "BRCA2"), "verdict"] == "reproduced"
    assert pub.loc[("radiation_proliferation_down", "PREPOST_PROLIFERATION"), "verdict"] == "not testable"

def test_html_report_has_qc_and_claims(demo_run):
    html = (demo_run / "results/report.html").read_text()
    claims = pd.read_csv(demo_run / "results/claims.tsv", sep="\t")
    start = html.index('id="claims-table"')
    table = html[start: html.index("</table>", start)]
    assert table.count("<tr") == 1 + len(claims)
    assert "<script src" not in html and 'src="data:image/webp;base64,' in html
    for ds in ("demo_array", "demo_rnaseq"):
        ident = pd.read_csv(demo_run / f"results/{ds}/qc/pair_identity.tsv", sep="\t")
        assert len(ident) > 0 and f"{ds}: PCA" in html


def _job_counts(out: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run: rule -> number of jobs."""
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()[3:]
    return {r: int(n) for r, n in (line.split() for line in table if line.strip()) if r != "total"}


def test_deleted_cached_download_is_fetched_again_alone(demo_run, tmp_path, geo_server):
    """Downloaded files are rule outputs: Snakemake itself sees one that went missing, and
    fetches that file only (one download job), then checks it into the manifest again."""
    run = copy_run(demo_run, tmp_path / "run")
    geo = run / "resources/geo/demo_array"
    lost = geo / "GPL990001.annot.gz"
    before, manifest = lost.read_bytes(), (geo / "manifest.tsv").read_text()
    lost.unlink()
    proc = run_workflow(run, geo_server, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _job_counts(proc.stdout)
    assert jobs["download"] == 1 and jobs["download_manifest"] == 1, jobs
    assert "resources/geo/demo_array/GPL990001.annot.gz" in proc.stdout
    proc = run_workflow(run, geo_server, "resources/geo/demo_array/GPL990001.annot.gz",
                        "resources/geo/demo_array/manifest.tsv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert lost.read_bytes() == before
    again = pd.read_csv(geo / "manifest.tsv", sep="\t")
    assert again.drop(columns="date").equals(pd.read_csv(io.StringIO(manifest), sep="\t").drop(columns="date"))


def test_editing_a_description_reruns_nothing(demo_run, tmp_path, geo_server):
    """Rules get only the config keys they read (Snakemake reruns a job whose params change):
    a dataset's description, citation or cohort label is not one of them for the DE."""
    run = copy_run(demo_run, tmp_path / "run")
    cmd = workflow_cmd(run, geo_server, "-n")
    cfg_path = run / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["datasets"]["demo_rnaseq"]["description"] = "edited by a test"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    jobs = _job_counts(out) if "Job stats:" in out else {}
    assert set(jobs) <= {"report", "all"}, jobs  # the report prints the configuration
