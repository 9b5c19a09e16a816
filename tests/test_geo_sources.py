"""GEO inputs beyond one series matrix (issue 14): NCBI-generated RNA-seq counts from GEO's
download endpoint, series split over per-platform matrices, family SOFT files, Gene ST
gene_assignment annotations, the values override; and the real GEO files of ../shared/data.

The endpoint is a small HTTP handler on 127.0.0.1 that answers GEO's query-string URLs; the
fixture files are written here, laid out like the real ones (column names, GSM headers)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from prepost.io import datasets, download as dl, geo
from prepost.io.download import DownloadError
from prepost.io.gene_maps import GeneMapError, read_gene_map
from prepost.io.geo import PlatformError, SeriesMatrixError
from prepost.prepare.dataset import PrepareError, decide_log2, prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "geo"
SHARED_GEO = ROOT.parent / "shared" / "data" / "geo"  # as tests/test_genesets.py: ../shared/data
needs_shared = pytest.mark.skipif(not SHARED_GEO.is_dir(), reason="../shared/data/geo absent")
FAST = dict(retries=1, backoff=0.01, timeout=5)

GSE = "GSE990020"
COUNTS_NAME = f"{GSE}_raw_counts_GRCh38.p13_NCBI.tsv.gz"
ANNOT_NAME = "Human.GRCh38.p13.annot.tsv.gz"
GSMS = [f"GSM99002{i:02d}" for i in range(1, 9)]

ANNOT_TEXT = (
    "GeneID\tSymbol\tDescription\tTaxID\tStatus\tSynonyms\tGeneType\tEnsemblGeneID\tChrAcc\n"
    "1\tA1BG\talpha-1-B glycoprotein\t9606\tlive\tA1B|ABG\tprotein-coding\tENSG00000121410\tNC_000019.10\n"
    "2\tA2M\talpha-2-macroglobulin\t9606\tlive\tA2MD\tprotein-coding\tENSG00000175899\tNC_000012.12\n"
    "9\tNAT1\tN-acetyltransferase 1\t9606\tlive\tAAC1\tprotein-coding\tENSG00000171428\tNC_000008.11\n"
    "100287102\tDDX11L1\tDEAD/H-box helicase 11 like 1\t9606\tlive\t\tpseudo\t\tNC_000001.11\n"
)


def counts_text(genes=("1", "2", "9", "100287102")) -> str:
    rows = ["GeneID\t" + "\t".join(GSMS)]
    for k, g in enumerate(genes):
        rows.append(g + "\t" + "\t".join(str((k + 1) * (j + 3)) for j in range(len(GSMS))))
    return "\n".join(rows) + "\n"


COUNTS = gzip.compress(counts_text().encode(), mtime=0)
ANNOT = gzip.compress(ANNOT_TEXT.encode(), mtime=0)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class GeoDownloadHandler(http.server.BaseHTTPRequestHandler):
    """GEO's /geo/download/ endpoint: ?type=rnaseq_counts[&acc=GSE]&format=file&file=NAME."""

    files: dict[tuple[str | None, str], bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).requests.append(self.path)
        body = None
        if url.path == "/geo/download/" and q.get("type") == "rnaseq_counts" and q.get("format") == "file":
            body = self.files.get((q.get("acc"), q.get("file", "")))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    GeoDownloadHandler.files = {(GSE, COUNTS_NAME): COUNTS, (None, ANNOT_NAME): ANNOT}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GeoDownloadHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/geo/download/"
    server.shutdown()


# --------------------------------------------------------------------------- NCBI counts


def test_ncbi_urls_and_remote_files():
    ds = {"kind": "geo_counts", "accession": GSE, "counts": {"source": "ncbi"}}
    files = datasets.remote_files(ds)
    assert files["counts"] == (f"rnaseq_counts/{GSE}/{COUNTS_NAME}", COUNTS_NAME)
    assert files["gene_annotation"] == (f"rnaseq_counts/{ANNOT_NAME}", ANNOT_NAME)
    assert files["series_matrix"][1] == f"{GSE}_series_matrix.txt.gz"
    base = "https://www.ncbi.nlm.nih.gov/geo/download/"
    assert dl.source_base(files["counts"][0], "https://ftp.ncbi.nlm.nih.gov/geo") == base
    assert dl.source_base(files["series_matrix"][0], "https://ftp.ncbi.nlm.nih.gov/geo") == (
        "https://ftp.ncbi.nlm.nih.gov/geo")
    assert dl.geo_url(base, files["counts"][0]) == (
        f"{base}?type=rnaseq_counts&acc={GSE}&format=file&file={COUNTS_NAME}")
    assert dl.geo_url(base, files["gene_annotation"][0]) == (
        f"{base}?type=rnaseq_counts&format=file&file={ANNOT_NAME}")
    assert dl.geo_url("/mirror", files["counts"][0]) == f"/mirror/rnaseq_counts/{GSE}/{COUNTS_NAME}"
    # columns are GSM ids: sample_key defaults to geo_accession for this source only
    assert datasets.counts_sample_key(ds) == "geo_accession"
    assert datasets.counts_sample_key({"counts": {"file": "x.tsv"}}) == "title"
    assert datasets.counts_sample_key({"counts": {"source": "ncbi", "sample_key": "title"}}) == "title"
    other = {**ds, "counts": {"source": "ncbi", "file": "x.tsv.gz", "annotation_file": "Mouse.annot.tsv.gz"}}
    assert datasets.remote_files(other)["counts"][1] == "x.tsv.gz"
    assert datasets.remote_files(other)["gene_annotation"][1] == "Mouse.annot.tsv.gz"


def test_ncbi_download_manifest_offline_and_404(endpoint, tmp_path):
    cache = tmp_path / "cache"
    ftp = "http://127.0.0.1:9/geo"  # never asked: the NCBI files have their own base
    rows = {}
    for role, (rel, name) in datasets.remote_files(
            {"kind": "geo_counts", "accession": GSE, "counts": {"source": "ncbi"}}).items():
        if role == "series_matrix":
            continue
        rows[name] = dl.download_file(rel, ftp, cache / name, cache / f"{name}.rec.tsv",
                                      ncbi_download_url=endpoint, **FAST)
    assert (cache / COUNTS_NAME).read_bytes() == COUNTS
    assert rows[COUNTS_NAME]["sha256"] == sha(COUNTS) and rows[ANNOT_NAME]["sha256"] == sha(ANNOT)
    assert rows[COUNTS_NAME]["url"] == (
        f"{endpoint}?type=rnaseq_counts&acc={GSE}&format=file&file={COUNTS_NAME}")
    manifest = dl.write_manifest([cache / COUNTS_NAME, cache / ANNOT_NAME],
                                 [cache / f"{COUNTS_NAME}.rec.tsv", cache / f"{ANNOT_NAME}.rec.tsv"],
                                 tmp_path / "manifest.tsv")
    assert [r["sha256"] for r in manifest] == [sha(COUNTS), sha(ANNOT)]
    assert [r["status"] for r in manifest] == ["downloaded"] * 2

    # offline: the cached files are used without a request
    n = len(GeoDownloadHandler.requests)
    row = dl.download_file(f"rnaseq_counts/{GSE}/{COUNTS_NAME}", ftp, cache / COUNTS_NAME,
                           tmp_path / "r.tsv", ncbi_download_url=endpoint, offline=True)
    assert row["status"] == "cached" and row["sha256"] == sha(COUNTS)
    assert len(GeoDownloadHandler.requests) == n
    with pytest.raises(DownloadError, match="offline mode: .*missing"):
        dl.download_file(f"rnaseq_counts/{ANNOT_NAME}", ftp, tmp_path / "none" / ANNOT_NAME,
                         tmp_path / "r2.tsv", ncbi_download_url=endpoint, offline=True)

    # a series without NCBI counts: 404, not retried, says what to configure
    with pytest.raises(DownloadError) as e:
        dl.download_file("rnaseq_counts/GSE990099/GSE990099_raw_counts_GRCh38.p13_NCBI.tsv.gz", ftp,
                         tmp_path / "x.tsv.gz", tmp_path / "r3.tsv", ncbi_download_url=endpoint, **FAST)
    msg = str(e.value)
    assert "HTTP 404" in msg and "acc=GSE990099" in msg and "counts.source: supplementary" in msg
    assert GeoDownloadHandler.requests[-1].count("GSE990099") == 2 and not (tmp_path / "x.tsv.gz").exists()
    assert sum("GSE990099" in r for r in GeoDownloadHandler.requests) == 1


def test_ncbi_local_mirror_layout(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "rnaseq_counts" / GSE).mkdir(parents=True)
    (mirror / "rnaseq_counts" / GSE / COUNTS_NAME).write_bytes(COUNTS)
    (mirror / "rnaseq_counts" / ANNOT_NAME).write_bytes(ANNOT)
    for rel, name in [(dl.ncbi_counts_relpath(GSE), COUNTS_NAME), (dl.ncbi_annot_relpath(), ANNOT_NAME)]:
        row = dl.download_file(rel, "/unused", tmp_path / "c" / name, tmp_path / f"{name}.tsv",
                               ncbi_download_url=str(mirror))
        assert row["url"] == str(mirror / rel)
    assert (tmp_path / "c" / ANNOT_NAME).read_bytes() == ANNOT


def test_ncbi_annot_is_a_gene_map(tmp_path):
    """GEO's annotation of its NCBI counts is read by the one gene-map reader (io.gene_maps)."""
    p = tmp_path / ANNOT_NAME
    p.write_bytes(ANNOT)
    ann = read_gene_map(p)
    assert set(ann.columns) == {"entrez", "ensembl", "symbol"}
    assert ann["entrez"].tolist() == ["1", "2", "9", "100287102"]
    assert ann.set_index("entrez").loc["100287102"].to_dict() == {"ensembl": "", "symbol": "DDX11L1"}
    with pytest.raises(GeneMapError, match=r"bad\.annot\.tsv, line 1: no gene id and symbol columns"):
        q = tmp_path / "bad.annot.tsv"
        q.write_text("Description\tOther\tThird\nx\ty\tz\n")
        read_gene_map(q)


def series_matrix_text(gse: str, gpl: str, gsms: list[str], titles: list[str], probes: list[str],
                       values: np.ndarray | None = None) -> str:
    q = lambda xs: "\t".join(f'"{x}"' for x in xs)  # noqa: E731
    lines = ['!Series_title\t"written fixture"', f'!Series_geo_accession\t"{gse}"',
             f'!Series_platform_id\t"{gpl}"', f"!Sample_title\t{q(titles)}",
             f"!Sample_geo_accession\t{q(gsms)}", f"!Sample_platform_id\t{q([gpl] * len(gsms))}",
             f"!Sample_characteristics_ch1\t{q(['patient: P' + t.split()[0] for t in titles])}",
             f"!Sample_characteristics_ch1\t{q(['visit: ' + t.split()[1] for t in titles])}",
             "!series_matrix_table_begin", "\t".join(['"ID_REF"'] + [f'"{g}"' for g in gsms])]
    if values is not None:
        for i, p in enumerate(probes):
            lines.append(f'"{p}"\t' + "\t".join(f"{v:.3f}" for v in values[i]))
    lines.append("!series_matrix_table_end")
    return "\n".join(lines) + "\n"


def test_ncbi_counts_prepare_passes_the_annotation(tmp_path, monkeypatch):
    """Columns are GSM ids (sample_key geo_accession by default); the annotation is a prepare
    input under the role gene_annotation and maps the Entrez ids to symbols."""
    titles = [f"{p} {v}" for p in (1, 2, 3, 4) for v in ("pre", "post")]
    sm = tmp_path / f"{GSE}_series_matrix.txt.gz"
    sm.write_bytes(gzip.compress(series_matrix_text(GSE, "GPL24676", GSMS, titles, []).encode()))
    (tmp_path / COUNTS_NAME).write_bytes(COUNTS)
    (tmp_path / ANNOT_NAME).write_bytes(ANNOT)
    ds = {"kind": "geo_counts", "accession": GSE, "counts": {"source": "ncbi"},
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "visit", "map": {"pre": "pre", "post": "post"}}}}
    roles = datasets.remote_files(ds)
    files = {role: str(tmp_path / name) for role, (_, name) in roles.items()}
    assert set(files) == {"series_matrix", "counts", "gene_annotation"}
    p = prepare_dataset("ncbi", ds, files)
    assert p.values == "counts" and sorted(p.expression.columns) == sorted(GSMS)
    assert p.summary["samples"] == 8
    assert p.summary["gene_ids"]["id_type"] == "entrez" and p.summary["gene_ids"]["maps"] == [files["gene_annotation"]]
    assert "DDX11L1" in p.expression.index and "100287102" not in p.expression.index


# --------------------------------------------------------------------------- split series


def _matrix(tmp_path, name, gpl, gsms, titles, probes, rng):
    values = rng.normal(8, 1, size=(len(probes), len(gsms)))
    path = tmp_path / name
    path.write_bytes(gzip.compress(series_matrix_text("GSE990030", gpl, gsms, titles, probes, values).encode()))
    return path


def _platform(tmp_path, gpl, probes):
    path = tmp_path / f"{gpl}.annot"
    path.write_text("ID\tGene symbol\n" + "".join(f"{p}\tG{i}\n" for i, p in enumerate(probes)))
    return path


PAIRING = {"patient": {"field": "patient"},
           "timepoint": {"field": "visit", "map": {"pre": "pre", "post": "post"}}}


def test_series_matrix_list_same_platform_combined(tmp_path):
    rng = np.random.default_rng(1)
    probes = [f"p{i}" for i in range(30)]
    a = _matrix(tmp_path, "GSE990030-GPL990001-1_series_matrix.txt.gz", "GPL990001",
                ["GSM1", "GSM2", "GSM3", "GSM4"], ["1 pre", "1 post", "2 pre", "2 post"], probes, rng)
    b = _matrix(tmp_path, "GSE990030-GPL990001-2_series_matrix.txt.gz", "GPL990001",
                ["GSM5", "GSM6"], ["3 pre", "3 post"], probes, rng)
    ds = {"kind": "geo_series_matrix", "accession": "GSE990030",
          "series_matrix_file": [a.name, b.name], "platform": {"accession": "GPL990001"},
          "pairing": PAIRING}
    roles = datasets.remote_files(ds)
    assert list(roles) == ["series_matrix", "series_matrix_2", "platform"]
    assert roles["series_matrix_2"] == (
        f"series/GSE990nnn/GSE990030/matrix/{b.name}", b.name)
    files = {"series_matrix": str(a), "series_matrix_2": str(b),
             "platform": str(_platform(tmp_path, "GPL990001", probes))}
    p = prepare_dataset("split", ds, files)
    assert sorted(p.expression.columns) == ["GSM1", "GSM2", "GSM3", "GSM4", "GSM5", "GSM6"]
    assert p.summary["values_automatic"] is True and p.summary["values_input"] == "log2"

    # a GSM in two files
    c = _matrix(tmp_path, "dup_series_matrix.txt.gz", "GPL990001", ["GSM4", "GSM7"],
                ["2 post", "4 pre"], probes, rng)
    with pytest.raises(SeriesMatrixError, match=r"dup_series_matrix.txt.gz: sample GSM4 is also in .*GPL990001-1"):
        prepare_dataset("split", ds, {**files, "series_matrix_2": str(c)})


def test_series_matrix_list_two_platforms(tmp_path):
    rng = np.random.default_rng(2)
    a = _matrix(tmp_path, "GSE990030-GPL990001_series_matrix.txt.gz", "GPL990001",
                ["GSM1", "GSM2"], ["1 pre", "1 post"], ["p1", "p2"], rng)
    b = _matrix(tmp_path, "GSE990030-GPL990002_series_matrix.txt.gz", "GPL990002",
                ["GSM3", "GSM4"], ["2 pre", "2 post"], ["q1", "q2"], rng)
    ds = {"kind": "geo_series_matrix", "accession": "GSE990030", "platform": {"accession": "GPL990001"},
          "series_matrix_file": [a.name, b.name], "pairing": PAIRING}
    with pytest.raises(PrepareError, match=r"different platforms .*GPL990002.*one geo_series_matrix dataset per platform"):
        prepare_dataset("x", ds, {"series_matrix": str(a), "series_matrix_2": str(b), "platform": "unused"})
    # geo_counts takes the samples only: two platforms (e.g. two sequencers) are fine
    sm = geo.combine_series_matrices([(str(a), geo.parse_series_matrix(a)), (str(b), geo.parse_series_matrix(b))],
                                     table=False)
    assert sm.samples.index.tolist() == ["GSM1", "GSM2", "GSM3", "GSM4"] and len(sm.table) == 0
    assert sm.series["platform_id"] == ["GPL990001", "GPL990002"]


def test_default_matrix_404_says_series_may_be_split(tmp_path):
    ds = {"kind": "geo_series_matrix", "accession": "GSE990031", "platform": {"accession": "GPL990001"}}
    rel, name = datasets.remote_files(ds)["series_matrix"]
    with pytest.raises(DownloadError) as e:
        dl.download_file(rel, tmp_path / "mirror", tmp_path / name, tmp_path / "r.tsv")
    msg = str(e.value)
    assert "split per platform" in msg and "GSE990031-GPLmmm_series_matrix.txt.gz" in msg
    assert "series_matrix_file" in msg
    # a configured name that is missing gets no such hint
    rel2 = dl.series_matrix_relpath("GSE990031", "GSE990031-GPL1_series_matrix.txt.gz")
    with pytest.raises(DownloadError) as e2:
        dl.download_file(rel2, tmp_path / "mirror", tmp_path / "y.gz", tmp_path / "r.tsv")
    assert "split per platform" not in str(e2.value)


# --------------------------------------------------------------------------- values override


def test_values_override_for_series_matrices():
    intensities = pd.DataFrame({"a": [10.0, 5000.0, 200.0], "b": [20.0, 4000.0, 300.0]})
    logs = np.log2(intensities)
    sm = {"kind": "geo_series_matrix"}
    assert decide_log2(sm, "intensity", intensities) == (False, {"values_input": "intensity", "values_automatic": True})
    assert decide_log2(sm, "intensity", logs) == (True, {"values_input": "log2", "values_automatic": True})
    # GEO2R's rule would transform these; the config says they are log2 already, and vice versa
    assert decide_log2({**sm, "values": "log2"}, "log2", intensities) == (
        True, {"values_input": "log2", "values_automatic": False})
    assert decide_log2({**sm, "values": "intensity"}, "intensity", logs) == (
        False, {"values_input": "intensity", "values_automatic": False})
    assert datasets.values_kind({**sm, "values": "log2"}) == "log2"


# --------------------------------------------------------------------------- platform annotations


def test_gene_assignment_symbols(tmp_path):
    text = (
        "#ID = probeset\n!platform_table_begin\nID\tGB_LIST\tgene_assignment\tmrna_assignment\n"
        "7896736\t\tNR_024368 // DDX11L1 // DEAD/H box 11 like 1 // 1p36.33 // 100287102 /// "
        "NR_034090 // DDX11L1 // DEAD/H box 11 like 1 // 1p36.33 // 100287102\tx\n"
        "7896738\t\tNM_001005484 // OR4F5 // olfactory receptor 4F5 // 1p36.33 // 79501 /// "
        "ENST00000335137 // OR4F17 // olfactory receptor 4F17 // 19p13.3 // 81099\tx\n"
        "7896740\t\t---\tx\n"
        "7896742\t\tAK126 // --- // --- // --- // ---\tx\n"
        "!platform_table_end\n"
    )
    p = tmp_path / "GPL6244.soft"
    p.write_text(text)
    for kw in ({}, {"symbol_column": "gene_assignment"}):  # detected, or configured
        ann = geo.parse_platform(p, **kw)
        assert ann["symbol"].tolist() == ["DDX11L1", "OR4F5 /// OR4F17", "", ""]
    # a plain symbol column wins over gene_assignment when both exist
    p2 = tmp_path / "both.tsv"
    p2.write_text("ID\tgene_assignment\tGene Symbol\n1\tNM_1 // AAA // x\tBBB\n")
    assert geo.parse_platform(p2)["symbol"].tolist() == ["BBB"]
    assert geo.parse_platform(p2, "gene_assignment")["symbol"].tolist() == ["AAA"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("ID\tgene_assignment\n1\tNM_1 // AAA // x\n2\tjust text\n")
    with pytest.raises(PlatformError, match=r"bad.tsv, line 3, column gene_assignment: 'just text'"):
        geo.parse_platform(bad)


def test_family_soft_platform_sections():
    soft = FIXTURES / "GSE990010_family.soft"
    assert geo.parse_platform(soft, accession="GPL990001")["symbol"].tolist() == ["AAA", "BBB /// CCC", "", "DDD"]
    ann = geo.parse_platform(soft, accession="GPL990002")
    assert ann.to_dict("list") == {"ID": ["q1", "q2"], "symbol": ["EEE", ""]}
    with pytest.raises(PlatformError, match=r"no \^PLATFORM = GPL96 section .*GPL990001"):
        geo.parse_platform(soft, accession="GPL96")


@needs_shared
def test_real_gpl96_platform_soft():
    ann = geo.parse_platform(SHARED_GEO / "GPL96" / "GPL96.txt.gz", accession="GPL96")
    assert len(ann) == 22283 and ann["ID"].is_unique
    assert ann.set_index("ID").loc["1007_s_at", "symbol"] == "DDR1"
    multi = ann["symbol"].str.contains(" /// ", regex=False)
    assert multi.sum() > 500  # kept as written for collapse_probes to judge
    assert (ann["symbol"] == "").sum() > 0 and not ann["symbol"].isin(["---"]).any()
    explicit = geo.parse_platform(SHARED_GEO / "GPL96" / "GPL96.txt.gz", "Gene Symbol")
    assert explicit.equals(ann)


@needs_shared
def test_real_gpl97_annot():
    ann = geo.parse_platform(SHARED_GEO / "GPL97" / "GPL97.annot.gz")
    assert len(ann) == 22645 and ann["ID"].is_unique
    assert ann.loc[0].tolist() == ["200000_s_at", "PRPF8"]
    assert ann["symbol"].str.count("///").max() >= 2
    assert "SNX3///NR2E1" in set(ann["symbol"])  # .annot writes A///B without spaces; kept as is


@needs_shared
def test_real_rnaseq_series_matrix_combines_as_samples():
    path = SHARED_GEO / "GSE99709" / "GSE99709_series_matrix.txt.gz"
    sm = geo.parse_series_matrix(path)
    one = geo.combine_series_matrices([(str(path), sm)], table=False)
    assert len(one.samples) == 12 and len(one.table) == 0
    with pytest.raises(SeriesMatrixError, match="is also in"):
        geo.combine_series_matrices([(str(path), sm), (str(path), sm)], table=False)


# --------------------------------------------------------------------------- family SOFT


def test_family_soft_fixture():
    sm = geo.parse_family_soft(FIXTURES / "GSE990010_family.soft")
    assert sm.accession == "GSE990010" and sm.series["platform_id"] == ["GPL990001", "GPL990002"]
    assert list(sm.samples.columns[:5]) == ["title", "geo_accession", "platform_id", "patient", "visit"]
    assert sm.samples.loc["GSM9900101", "note"] == "a: b"  # split at the first ": "
    assert pd.isna(sm.samples.loc["GSM9900102", "note"])
    assert sm.table.index.tolist() == ["p1", "p2", "p3", "p4", "q1", "q2"]  # first sample's order
    assert sm.table.loc["p1"].tolist()[:2] == [8.5, 9.0]
    assert np.isnan(sm.table.loc["p3", "GSM9900101"]) and np.isnan(sm.table.loc["p4", "GSM9900101"])
    one = geo.parse_family_soft(FIXTURES / "GSE990010_family.soft", "GPL990001")
    assert one.samples.index.tolist() == ["GSM9900101", "GSM9900102"]
    assert one.other_platform_samples == ["GSM9900103"] and one.table.index.tolist() == ["p1", "p2", "p3", "p4"]
    with pytest.raises(SeriesMatrixError, match="no sample on platform GPL1"):
        geo.parse_family_soft(FIXTURES / "GSE990010_family.soft", "GPL1")


def test_family_soft_and_series_matrix_agree(tmp_path):
    """The same series written both ways parses to the same samples and table."""
    rng = np.random.default_rng(3)
    gsms, titles = ["GSM11", "GSM12", "GSM13"], ["1 pre", "1 post", "2 pre"]
    probes = ["a1", "a2", "a3"]
    values = rng.normal(8, 1, size=(3, 3)).round(3)
    sm_path = tmp_path / "GSE990040_series_matrix.txt"
    sm_path.write_text(series_matrix_text("GSE990040", "GPL990001", gsms, titles, probes, values))
    soft = tmp_path / "GSE990040_family.soft.gz"
    soft.write_bytes(gzip.compress(family_soft_text("GSE990040", "GPL990001", gsms, titles, probes, values).encode()))
    a, b = geo.parse_series_matrix(sm_path), geo.parse_family_soft(soft)
    cols = ["title", "geo_accession", "platform_id", "patient", "visit"]
    pd.testing.assert_frame_equal(a.samples[cols], b.samples[cols])
    pd.testing.assert_frame_equal(a.table, b.table)


def family_soft_text(gse, gpl, gsms, titles, probes, values, symbols=None) -> str:
    out = [f"^SERIES = {gse}", f"!Series_geo_accession = {gse}", f"!Series_platform_id = {gpl}",
           f"^PLATFORM = {gpl}", f"!Platform_geo_accession = {gpl}", "!platform_table_begin",
           "ID\tGene Symbol"]
    out += [f"{p}\t{(symbols or [f'G{i}' for i in range(len(probes))])[i]}" for i, p in enumerate(probes)]
    out.append("!platform_table_end")
    for j, (g, t) in enumerate(zip(gsms, titles)):
        out += [f"^SAMPLE = {g}", f"!Sample_title = {t}", f"!Sample_geo_accession = {g}",
                f"!Sample_platform_id = {gpl}", f"!Sample_characteristics_ch1 = patient: P{t.split()[0]}",
                f"!Sample_characteristics_ch1 = visit: {t.split()[1]}", "!sample_table_begin", "ID_REF\tVALUE"]
        out += [f"{p}\t{values[i, j]:.3f}" for i, p in enumerate(probes)]
        out.append("!sample_table_end")
    return "\n".join(out) + "\n"


def test_family_soft_dataset_with_its_own_platform(tmp_path):
    rng = np.random.default_rng(4)
    titles = [f"{p} {v}" for p in (1, 2, 3, 4) for v in ("pre", "post")]
    gsms = [f"GSM5{i}" for i in range(8)]
    probes = [f"p{i}" for i in range(40)]
    values = 2 ** rng.normal(9, 1, size=(40, 8))  # intensities: GEO2R's rule would log2 them
    soft = tmp_path / "GSE990050_family.soft.gz"
    soft.write_bytes(gzip.compress(family_soft_text("GSE990050", "GPL990001", gsms, titles, probes, values).encode()))
    ds = {"kind": "geo_series_matrix", "accession": "GSE990050", "family_soft": True,
          "platform": {"accession": "GPL990001", "file": "family"}, "pairing": PAIRING}
    roles = datasets.remote_files(ds)
    assert roles == {"family_soft": ("series/GSE990nnn/GSE990050/soft/GSE990050_family.soft.gz",
                                     "GSE990050_family.soft.gz")}
    p = prepare_dataset("soft", ds, {"family_soft": str(soft)})
    assert p.values == "log2" and p.summary["log2_transformed"] is True
    assert p.summary["values_automatic"] is True and p.expression.shape == (40, 8)
    np.testing.assert_allclose(p.expression.loc["G0", "GSM50"], np.log2(values[0, 0]), atol=1e-3)
    forced = prepare_dataset("soft", {**ds, "values": "log2"}, {"family_soft": str(soft)})
    assert forced.summary["log2_transformed"] is False and forced.summary["values_automatic"] is False
    # an annot file next to the family SOFT
    annot = _platform(tmp_path, "GPL990001", probes)
    ds2 = {**ds, "platform": {"accession": "GPL990001"}}
    assert set(datasets.remote_files(ds2)) == {"family_soft", "platform"}
    assert prepare_dataset("soft", ds2, {"family_soft": str(soft), "platform": str(annot)}).expression.shape == (40, 8)


@pytest.mark.parametrize("edit,message,at", [
    (lambda t: t.replace("!sample_table_end\n^SAMPLE = GSM12", "^SAMPLE = GSM12"),
     r"line (\d+): !sample_table_begin without !sample_table_end before the next section", "!sample_table_begin"),
    (lambda t: t.rsplit("!sample_table_end", 1)[0],
     r"line (\d+): !sample_table_begin without !sample_table_end \(truncated", "!sample_table_begin"),
    (lambda t: t.replace("ID_REF\tVALUE", "ID_REF\tSIGNAL", 1),
     r"line (\d+): sample GSM11's table header is \['ID_REF', 'SIGNAL'\]; expected columns ID_REF and VALUE",
     "ID_REF\tSIGNAL"),
    (lambda t: t.replace("a2\t4.000", "a2\tn/d", 1),
     r"line (\d+): sample GSM11: VALUE 'n/d' is not a number", "a2\tn/d"),
    (lambda t: t.replace("a2\t4.000", "a2\tInf", 1),
     r"line (\d+): sample GSM11: infinite VALUE 'Inf'", "a2\tInf"),
    (lambda t: t.replace("!Sample_geo_accession = GSM12", "!Sample_geo_accession = GSM99"),
     r"line (\d+): \^SAMPLE = GSM12 but its !Sample_geo_accession is GSM99", "^SAMPLE = GSM12"),
])
def test_family_soft_errors_name_file_and_line(tmp_path, edit, message, at):
    values = np.arange(9, dtype=float).reshape(3, 3) + 1
    text = family_soft_text("GSE990040", "GPL990001", ["GSM11", "GSM12", "GSM13"],
                            ["1 pre", "1 post", "2 pre"], ["a1", "a2", "a3"], values)
    bad = edit(text)
    assert bad != text
    p = tmp_path / "GSE990040_family.soft"
    p.write_text(bad)
    with pytest.raises(SeriesMatrixError) as e:
        geo.parse_family_soft(p)
    msg = str(e.value)
    assert msg.startswith(str(p)), msg
    m = re.search(message, msg)
    assert m, msg
    assert bad.splitlines()[int(m.group(1)) - 1] == at


# --------------------------------------------------------------------------- config schema


SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


def _config():
    import yaml

    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def _validate(mutate):
    from snakemake.utils import validate

    cfg = _config()
    mutate(cfg["datasets"])
    validate(cfg, SCHEMA)
    return cfg


def test_schema_accepts_the_new_sources():
    cfg = _validate(lambda d: (
        d["demo_rnaseq"].update(counts={"source": "ncbi"}),
        d["demo_array"].update(series_matrix_file=["GSE1-GPL1_series_matrix.txt.gz",
                                                   "GSE1-GPL2_series_matrix.txt.gz"], values="log2"),
    ))
    assert cfg["download"]["ncbi_download_url"] == "https://www.ncbi.nlm.nih.gov/geo/download/"
    assert "sample_key" not in cfg["datasets"]["demo_rnaseq"]["counts"]  # no default: per source
    _validate(lambda d: d["demo_array"].update(family_soft=True, platform={"accession": "GPL570", "file": "family"}))
    _validate(lambda d: d["demo_array"]["platform"].update(symbol_column="gene_assignment"))


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["demo_rnaseq"].update(counts={"gene_column": "x"}), "file"),
    (lambda d: d["demo_rnaseq"].update(counts={"source": "geo"}), "'geo' is not one of"),
    (lambda d: d["demo_array"].update(series_matrix_file=["../x.gz"]), "series_matrix_file"),
    (lambda d: d["demo_array"].update(series_matrix_file=[]), "series_matrix_file"),
    (lambda d: d["demo_array"].update(values="counts"), "'counts' is not one of"),
    (lambda d: d["demo_array"]["platform"].update(file="family"), "family_soft"),
    (lambda d: d["demo_array"].update(family_soft=False, platform={"accession": "GPL570", "file": "family"}),
     "True was expected"),
])
def test_schema_rejects_bad_combinations(mutate, expected):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as e:
        _validate(mutate)
    assert expected in str(e.value)
