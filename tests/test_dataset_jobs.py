"""The de and enrich jobs cover a whole dataset; with 2 threads their contrasts run in forked
workers (prepost.parallel). Side by side or in order, every file written is the same, byte for
byte, on the demo's prepared data."""

import filecmp
from pathlib import Path

import pytest
import yaml

from prepost.de.job import DE_FILES, dataset_de_job
from prepost.enrich.job import dataset_enrichment_job
from prepost.paths import DE_PLOTS, GSEA_PLOTS, resolve_workflow_paths

ROOT = Path(__file__).resolve().parents[1]
CONTRASTS = ["post_vs_pre", "responder_vs_non_responder_pre", "post_vs_pre_responder",
             "post_vs_pre_non_responder", "interaction"]

pytestmark = pytest.mark.slow


def _inputs(run: Path, ds: str) -> tuple:
    d = run / "results" / ds
    return d / "expression.parquet", d / "qc/samples_used.tsv", d / "prepare.json"


def _de(run: Path, ds: str, dest: Path, threads: int) -> list[Path]:
    out = {}
    for c in CONTRASTS:
        out.update({f"{c}_{w}": str(dest / f"{c}.{w}") for w in DE_FILES})
        out.update({f"{c}_plot_{k}": str(dest / f"{c}.{k}.png") for k in DE_PLOTS})
    done = dataset_de_job(*_inputs(run, ds), CONTRASTS, out, dataset=ds, genes=["BRCA2", "ATM"],
                          threads=threads)
    assert list(done) == CONTRASTS
    return sorted(Path(p) for p in out.values())


@pytest.mark.parametrize("ds", ["demo_rnaseq", "demo_array"])
def test_de_job_same_files_in_order_and_side_by_side(demo_run, tmp_path, ds):
    serial = _de(demo_run, ds, tmp_path / "serial", threads=1)
    forked = _de(demo_run, ds, tmp_path / "forked", threads=2)
    assert len(serial) == len(CONTRASTS) * (len(DE_FILES) + len(DE_PLOTS))
    for a, b in zip(serial, forked):
        assert a.name == b.name and filecmp.cmp(a, b, shallow=False), a.name
    # the tables equal the workflow's own (which ran the same job with 2 threads)
    for c in CONTRASTS:
        assert filecmp.cmp(tmp_path / "forked" / f"{c}.table",
                           demo_run / f"results/{ds}/de/{c}.tsv", shallow=False), c


def test_enrich_job_same_files_in_order_and_side_by_side(demo_run, tmp_path):
    ds = "demo_rnaseq"
    cfg = resolve_workflow_paths(yaml.safe_load((ROOT / "config/config.yaml").read_text()), str(ROOT))
    settings = cfg["enrichment"]
    gmts = {c["name"]: str(demo_run / "resources/genesets" / f"{c['name']}.gmt")
            for c in settings["collections"]}
    tables = {c: str(demo_run / f"results/{ds}/de/{c}.tsv") for c in CONTRASTS}
    written = {}
    for threads in (1, 2):
        dest = tmp_path / str(threads)
        dest.mkdir()
        out = {"scores": dest / "scores.tsv", "tests": dest / "tests.tsv", "slopes": dest / "slopes.png"}
        for c in CONTRASTS:
            out.update({f"{c}_{k}": dest / f"{c}.{k}.tsv" for k in ("gsea", "ora", "report")})
            out[f"{c}_record"] = dest / f"{c}.run.json"
            out.update({f"{c}_{k}": dest / f"{c}.{k}.png" for k in GSEA_PLOTS})
        done = dataset_enrichment_job(tables, *_inputs(demo_run, ds), gmts, settings,
                                      {k: str(v) for k, v in out.items()}, dataset=ds,
                                      threads=threads)
        assert list(done) == [*CONTRASTS, "set_scores"]
        written[threads] = sorted(Path(p) for p in out.values())
    for a, b in zip(written[1], written[2]):
        assert a.name == b.name and filecmp.cmp(a, b, shallow=False), a.name
    for c in CONTRASTS:  # and the workflow's own
        assert filecmp.cmp(tmp_path / "2" / f"{c}.gsea.tsv",
                           demo_run / f"results/{ds}/enrich/{c}/gsea.tsv", shallow=False), c
