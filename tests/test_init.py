"""`prepost init`: the pairing it proposes for the demo series, a real unpaired series and headers
laid out like three real breast-cancer series (tests/fixtures/init, written by make_fixtures.py),
read back as YAML, validated against the config schema and run through the workflow's pairing."""

from __future__ import annotations

import io
import gzip
from pathlib import Path

import jsonschema
import pytest
import yaml

from prepost.cli import main
from prepost.cli.init import load_source
from prepost.io.geo import parse_series_matrix
from prepost.prepare.pairing import pair_samples
from prepost.cli.propose import place_response, place_timepoint, propose, render_block

from conftest import DEMO_GEO, ROOT, SHARED_DATA

FIXTURES = ROOT / "tests/fixtures/init"
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def _init(*argv: str) -> str:
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert main(["init", *argv]) == 0
    return out.getvalue()


def _block(text: str) -> dict:
    """The dataset blocks printed after the paste marker, read as YAML."""
    blocks = text.split("# ---- paste under datasets: in your config ----\n", 1)[1]
    return yaml.safe_load("datasets:\n" + blocks)["datasets"]


def _proposal(path: Path):
    """What init proposes for a local file (header keys included), as `prepost init FILE`."""
    name, where, samples, header, notes = load_source(str(path), str(DEMO_GEO), path.parent)
    return propose(samples, name, where, header, notes)


def _validate_dataset(name: str, ds: dict) -> None:
    cfg = {"datasets": {name: ds}}
    jsonschema.validate(cfg, SCHEMA)


def test_demo_accessions_fetched_through_the_download_client(geo_server):
    text = _init("GSE990001", "GSE990002", "--base-url", geo_server)
    assert f"{geo_server}/series/GSE990nnn/GSE990001/matrix/GSE990001_series_matrix.txt.gz" in text
    blocks = _block(text)
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())["datasets"]
    arr, rna = blocks["GSE990001"], blocks["GSE990002"]
    assert arr["kind"] == "geo_series_matrix" and arr["platform"]["accession"] == "GPL990001"
    assert rna["kind"] == "geo_counts" and rna["counts"] == {"file": "GSE990002_raw_counts.tsv.gz"}
    for got, want in ((arr, shipped["demo_array"]), (rna, shipped["demo_rnaseq"])):
        assert got["pairing"]["timepoint"] == want["pairing"]["timepoint"]
        assert got["pairing"]["response"] == want["pairing"]["response"]
        assert got["pairing"]["patient"] == {"field": "patient id"}
        assert "interaction" in got["contrasts"]
    for name, ds in blocks.items():
        _validate_dataset(name, ds)
    assert "12 complete pairs (24 samples)" in text and "10 complete pairs (20 samples)" in text
    # the characteristics table is shown
    assert "patient id" in text and "GSM9900013" in text


def test_block_pairs_as_the_workflow_would(tmp_path):
    path = DEMO_GEO / "series/GSE990nnn/GSE990001/matrix/GSE990001_series_matrix.txt.gz"
    sm = parse_series_matrix(path)
    prop = propose(sm.samples, "demo", str(path))
    ds = yaml.safe_load("datasets:\n" + render_block(prop))["datasets"]["demo"]
    sheet, ledger = pair_samples(sm.samples, ds["pairing"], "demo")
    assert (ledger.status == "kept").sum() == 24
    assert ledger.loc[ledger.status == "dropped", "patient"].tolist() == ["P13"]


def test_unpaired_real_series_says_so():
    path = SHARED_DATA / "geo/GSE99709/GSE99709_series_matrix.txt.gz"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    text = _init(str(path))
    assert "NO PAIRS FOUND" in text and "does not look paired" in text
    ds = _block(text)["GSE99709"]
    assert "pairing" not in ds  # nothing proposed, only commented hints
    assert ds["kind"] == "geo_counts"


def test_gse18728_layout_upin_and_three_timepoints():
    prop = _proposal(FIXTURES / "GSE18728_like_series_matrix.txt")
    assert prop.patient.status == "chosen" and prop.patient.chosen.field == "upin"
    assert prop.timepoint.chosen.field == "time point"
    assert prop.timepoint.map["bl"] == "pre" and prop.timepoint.map["or"] == "post"
    assert prop.timepoint.map["c2"] == prop.timepoint.map["C2"]
    assert prop.timepoint.map["c2"] in ("on", "exclude")
    assert prop.response.chosen.field == "response category"
    assert prop.response.map == {"R": "responder", "NR": "non_responder"}
    ds = yaml.safe_load("datasets:\n" + render_block(prop))["datasets"]["GSE18728"]
    _validate_dataset("GSE18728", ds)
    # patients 1001-1009: seven with bl and or (1004 without c2); 1005 (no or) and 1007 unpaired
    assert prop.n_pairs == 7


def test_gse28844_layout_timepoint_in_free_text_patient_in_title():
    prop = _proposal(FIXTURES / "GSE28844_like_series_matrix.txt")
    assert prop.patient.chosen.field == "title" and prop.patient.chosen.regex
    assert prop.timepoint.chosen.field == "tumor biopsy acquisition"
    assert sorted(prop.timepoint.map.values()) == ["post", "pre"]
    # Miller & Payne grades cannot be placed without the paper's cut: written commented out
    assert prop.response.status == "ambiguous"
    assert set(prop.response.unplaced) == {"1", "2", "3", "4", "5"}
    text = render_block(prop)
    ds = yaml.safe_load("datasets:\n" + text)["datasets"]["GSE28844"]
    assert "response" not in ds["pairing"]
    assert "#   field: 'pathologic response to chemotherapy (miller & payne grade)'" in text
    assert ds["contrasts"] == ["post_vs_pre"]
    _validate_dataset("GSE28844", ds)
    assert prop.n_pairs == 8
    # the title's own suffix (1/2, not the time order) is not taken for the timepoint
    assert "title" not in {c.field for c in prop.timepoint.alternatives}


def test_gse21974_layout_before_after():
    prop = _proposal(FIXTURES / "GSE21974_like_series_matrix.txt")
    assert prop.timepoint.chosen.field == "before/after chemotherapy"
    assert prop.timepoint.map == {"before": "pre", "after": "post"}
    assert prop.response.map == {"R": "responder", "NR": "non_responder"}
    assert prop.n_pairs == 9
    ds = yaml.safe_load("datasets:\n" + render_block(prop))["datasets"]["GSE21974"]
    assert ds["platform"]["accession"] == "GPL6480"
    _validate_dataset("GSE21974", ds)


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def _matrix(tmp_path, titles, *chars) -> Path:
    gsm = [f"GSM{i}" for i in range(1, len(titles) + 1)]
    rows = ['!Series_geo_accession\t"GSE1"', '!Series_platform_id\t"GPL1"',
            "!Sample_title\t" + "\t".join(f'"{t}"' for t in titles),
            "!Sample_geo_accession\t" + "\t".join(f'"{g}"' for g in gsm)]
    rows += ["!Sample_characteristics_ch1\t" + "\t".join(f'"{c}"' for c in line) for line in chars]
    rows += ["!series_matrix_table_begin", "\t".join(['"ID_REF"'] + gsm), "!series_matrix_table_end"]
    return _write(tmp_path / "GSE1_series_matrix.txt", rows)


def test_ambiguous_timepoint_is_commented_with_the_alternatives(tmp_path):
    # two fields split every patient, with different splits, both readable: no silent pick
    titles = [f"S{i}" for i in range(8)]
    path = _matrix(tmp_path, titles,
                   [f"patient: {p}" for p in ("a", "a", "b", "b", "c", "c", "d", "d")],
                   [f"visit: {v}" for v in ("pre", "post") * 4],
                   [f"sampling: {v}" for v in ("before", "after", "after", "before") * 2])
    prop = _proposal(path)
    assert prop.timepoint.status == "ambiguous"
    text = render_block(prop)
    ds = yaml.safe_load("datasets:\n" + text)["datasets"]["GSE1"]
    assert "timepoint" not in ds["pairing"]
    assert "# AMBIGUOUS" in text and "'visit'" in text and "'sampling'" in text
    assert prop.n_pairs is None and "left to you" in prop.check


def test_unplaced_value_is_left_out_of_the_map_and_named(tmp_path):
    titles = [f"S{i}" for i in range(6)]
    path = _matrix(tmp_path, titles,
                   [f"patient: {p}" for p in ("a", "a", "b", "b", "c", "c")],
                   [f"time: {v}" for v in ("baseline", "week 6", "baseline", "surgery", "baseline", "surgery")])
    prop = _proposal(path)
    assert prop.timepoint.unplaced == ["week 6"]
    text = render_block(prop)
    assert "# 'week 6': ?   # NOT PLACED" in text
    ds = yaml.safe_load("datasets:\n" + text)["datasets"]["GSE1"]
    assert "week 6" not in ds["pairing"]["timepoint"]["map"]  # the run stops, naming the value


@pytest.mark.parametrize("value,label", [
    ("pre-treatment", "pre"), ("Baseline", "pre"), ("bl", "pre"), ("at diagnosis", "pre"),
    ("post-treatment", "post"), ("or", "post"), ("surgical specimen", "post"),
    ("C2", "on"), ("after cycle 1", "on"), ("T1", None), ("before or after", None),
])
def test_timepoint_words(value, label):
    assert place_timepoint(value)[0] == label


@pytest.mark.parametrize("value,label", [
    ("pCR", "responder"), ("RD", "non_responder"), ("NR", "non_responder"), ("R", "responder"),
    ("non-responder", "non_responder"), ("N/A", "unknown"), ("3", None),
])
def test_response_words(value, label):
    assert place_response(value)[0] == label


def test_count_table_columns(tmp_path):
    cols = ["P1_pre", "P1_post", "P2_pre", "P2_post", "P3_pre", "P3_post"]
    with gzip.open(tmp_path / "counts.tsv.gz", "wt") as fh:
        fh.write("gene\t" + "\t".join(cols) + "\n")
        for g in range(5):
            fh.write(f"G{g}\t" + "\t".join(str(10 * g + i) for i in range(len(cols))) + "\n")
    text = _init(str(tmp_path / "counts.tsv.gz"))
    ds = _block(text)["counts"]
    assert ds["kind"] == "local" and ds["values"] == "counts"
    assert ds["pairing"]["patient"]["field"] == "title"
    assert ds["pairing"]["timepoint"]["map"] == {"pre": "pre", "post": "post"}
    assert "3 complete pairs" in text


def test_output_writes_a_new_config_and_never_replaces_one(tmp_path, capsys):
    out = tmp_path / "my.yaml"
    _init(str(FIXTURES / "GSE21974_like_series_matrix.txt"), "-o", str(out), "--base-url", str(DEMO_GEO))
    cfg = yaml.safe_load(out.read_text())
    jsonschema.validate(cfg, SCHEMA)
    assert cfg["claims"] == "<workflow>/config/claims.yaml"
    assert list(cfg["datasets"]) == ["GSE21974"]
    before = out.read_text()
    assert main(["init", str(FIXTURES / "GSE21974_like_series_matrix.txt"), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_accession_names_what_was_tried(tmp_path, capsys):
    assert main(["init", "GSE123", "--base-url", str(DEMO_GEO), "--retries", "0"]) == 2
    err = capsys.readouterr().err
    assert "GSE123" in err and "neither its series matrix nor its family SOFT" in err
    assert main(["init", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: not a GEO series accession (GSEnnn) nor an existing file" in capsys.readouterr().err


@pytest.mark.parametrize("accession,pairs,responders", [("GSE18728", 7, 4), ("GSE28844", 8, 2), ("GSE21974", 9, 5)])
def test_shipped_real_config_pairs_headers_laid_out_like_its_series(accession, pairs, responders):
    """config/real_breast_neoadjuvant.yaml's pairing rules on headers with those series' layouts."""
    cfg = yaml.safe_load((ROOT / "config/real_breast_neoadjuvant.yaml").read_text())
    jsonschema.validate(cfg, SCHEMA)
    ds = cfg["datasets"][accession]
    sm = parse_series_matrix(FIXTURES / f"{accession}_like_series_matrix.txt")
    sheet, ledger = pair_samples(sm.samples, ds["pairing"], accession)
    kept = sheet[sheet["in_pair"]]
    assert kept["patient"].nunique() == pairs
    assert kept.drop_duplicates("patient")["response"].eq("responder").sum() == responders


def test_written_config_builds_the_workflow_dag(tmp_path):
    """The two commands: `prepost init ... -o my.yaml`, then Snakemake on it (dry run here; the
    same datasets run in full as the demo)."""
    import subprocess

    from conftest import SNAKEMAKE

    cfg = tmp_path / "my.yaml"
    _init("GSE990001", "GSE990002", "--base-url", str(DEMO_GEO), "-o", str(cfg))
    proc = subprocess.run(SNAKEMAKE + ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-n",
                                       "--cores", "1", "--configfile", str(cfg)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "interaction" in (tmp_path / "my.yaml").read_text()
    assert "prepare" in proc.stdout and "report" in proc.stdout


def test_family_soft_of_two_platforms():
    prop = _proposal(ROOT / "tests/fixtures/geo/GSE990010_family.soft")
    assert prop.patient.chosen.field == "patient" and prop.timepoint.map == {"pre": "pre", "post": "post"}
    assert prop.n_pairs == 1 and "needs at least 3 pairs" in prop.check
    assert any("2 platforms (GPL990001, GPL990002)" in n for n in prop.header_notes)
