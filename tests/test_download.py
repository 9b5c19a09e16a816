"""Download client against real HTTP servers on 127.0.0.1 (pytest-httpserver and raw sockets).

References are independent of the module: expected GEO paths are written out literally,
checksums come from hashlib on the bytes the server sent, and failure modes are produced by
real sockets (short bodies, resets, slow handlers) rather than mocks.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from prepost import __version__
from prepost.io import download as dl
from prepost.io.download import DownloadError

MATRIX_REL = "series/GSE1nnn/GSE1234/matrix/GSE1234_series_matrix.txt.gz"
ANNOT_REL = "platforms/GPLnnn/GPL570/annot/GPL570.annot.gz"
README_REL = "series/GSE1nnn/GSE1234/suppl/README.txt"
FAST = dict(retries=2, backoff=0.01, timeout=2)


def _payload(tag: str, n: int = 3000) -> bytes:
    # Varied lines so the gzip is several KB and a half-file is a real truncation.
    return "".join(f"{tag}\tID_{i}\t{(i * 7919) % 10007 / 3:.4f}\n" for i in range(n)).encode()


MATRIX = gzip.compress(_payload("matrix"), mtime=0)
ANNOT = gzip.compress(_payload("annot"), mtime=0)
README = b"plain text readme\n"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def _module_server():
    # One server per module: stopping werkzeug waits for its 0.5 s poll, so don't do it per test.
    s = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def server(_module_server):
    _module_server.clear()  # handlers and request log start empty for each test
    yield _module_server
    _module_server.clear()


def serve_geo(server: HTTPServer) -> None:
    server.expect_request("/geo/" + MATRIX_REL).respond_with_data(
        MATRIX, content_type="application/x-gzip")
    server.expect_request("/geo/" + ANNOT_REL).respond_with_data(
        ANNOT, content_type="application/x-gzip")
    server.expect_request("/geo/" + README_REL).respond_with_data(README, content_type="text/plain")


ENTRIES = [(MATRIX_REL, "GSE1234_series_matrix.txt.gz"), (ANNOT_REL, "GPL570.annot.gz"),
           (README_REL, "README.txt")]


def no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- layout


def test_url_builders():
    assert dl.geo_stub("GSE1234") == "GSE1nnn"
    assert dl.geo_stub("GSE123") == "GSEnnn"
    assert dl.geo_stub("GSE990001") == "GSE990nnn"
    assert dl.geo_stub("GPL570") == "GPLnnn"
    assert dl.series_matrix_relpath("GSE990001") == (
        "series/GSE990nnn/GSE990001/matrix/GSE990001_series_matrix.txt.gz")
    assert dl.series_matrix_relpath("GSE1234", "GSE1234-GPL570_series_matrix.txt.gz") == (
        "series/GSE1nnn/GSE1234/matrix/GSE1234-GPL570_series_matrix.txt.gz")
    assert dl.suppl_relpath("GSE990002", "GSE990002_raw_counts.tsv.gz") == (
        "series/GSE990nnn/GSE990002/suppl/GSE990002_raw_counts.tsv.gz")
    assert dl.platform_relpath("GPL570") == "platforms/GPLnnn/GPL570/annot/GPL570.annot.gz"
    assert dl.platform_relpath("GPL990001", "soft") == (
        "platforms/GPL990nnn/GPL990001/soft/GPL990001_family.soft.gz")
    assert dl.geo_url("https://ftp.ncbi.nlm.nih.gov/geo/", MATRIX_REL) == (
        "https://ftp.ncbi.nlm.nih.gov/geo/" + MATRIX_REL)
    assert dl.geo_url("/data/mirror", MATRIX_REL) == "/data/mirror/" + MATRIX_REL
    for bad in ("GSE", "1234", "GSE12x"):
        with pytest.raises(ValueError, match="GEO accession"):
            dl.geo_stub(bad)
    with pytest.raises(ValueError, match="GPL"):
        dl.platform_relpath("GSE1234")
    with pytest.raises(ValueError, match="annot"):
        dl.platform_relpath("GPL570", "xml")


@pytest.mark.parametrize("body,html", [
    (b"<!DOCTYPE html><html><body>Please verify</body></html>", True),
    (b"\xef\xbb\xbf \n\t<HTML lang=en>", True),
    (b"  <?xml version='1.0'?>\n<!DOCTYPE x><html xmlns='http://www.w3.org/1999/xhtml'>", True),
    (b"<?xml version='1.0'?><MINiML/>", False),
    (b"!Series_title\t\"<html> in a title\"", False),
    (MATRIX[:64], False),
])
def test_looks_like_html(body, html):
    assert dl.looks_like_html(body) is html


# --------------------------------------------------------------------------- happy path


def test_download_manifest_and_cache(server, tmp_path):
    serve_geo(server)
    base = server.url_for("/geo")
    out, manifest = tmp_path / "geo", tmp_path / "manifest.tsv"
    df = dl.fetch_all(ENTRIES, base, out, manifest, **FAST)

    on_disk = pd.read_csv(manifest, sep="\t", dtype=str)
    assert list(on_disk.columns) == ["file", "url", "bytes", "sha256", "date", "status"]
    assert on_disk["file"].tolist() == [n for _, n in ENTRIES]  # order as given
    sent = [MATRIX, ANNOT, README]
    assert on_disk["sha256"].tolist() == [sha(b) for b in sent]
    assert on_disk["bytes"].astype(int).tolist() == [len(b) for b in sent]
    assert on_disk["url"].tolist() == [f"{base}/{r}" for r, _ in ENTRIES]
    assert set(on_disk["status"]) == {"downloaded"}
    assert on_disk["date"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    assert df["bytes"].tolist() == [len(b) for b in sent]
    for (_, name), body in zip(ENTRIES, sent):
        assert (out / name).read_bytes() == body
    assert no_leftovers(out) == sorted(n for _, n in ENTRIES)
    assert len(server.log) == 3
    ua = server.log[0][0].headers["User-Agent"]
    assert ua.startswith(f"prepost/{__version__}")

    # Second run: every file matches its manifest sha256 -> no request at all.
    df2 = dl.fetch_all(ENTRIES, base, out, manifest, **FAST)
    assert len(server.log) == 3
    assert df2["status"].tolist() == ["cached"] * 3
    again = pd.read_csv(manifest, sep="\t", dtype=str)
    assert again["sha256"].tolist() == on_disk["sha256"].tolist()
    assert again["date"].tolist() == on_disk["date"].tolist()  # original download date kept


def test_gz_with_content_encoding_is_kept_verbatim(server, tmp_path):
    # Misconfigured mirrors label .gz files "Content-Encoding: gzip"; the file must stay gzip.
    server.expect_request("/f.gz").respond_with_data(
        MATRIX, headers={"Content-Encoding": "gzip"}, content_type="application/x-gzip")
    row = dl.fetch(server.url_for("/f.gz"), tmp_path / "f.gz", **FAST)
    assert (tmp_path / "f.gz").read_bytes() == MATRIX
    assert row["sha256"] == sha(MATRIX) and row["status"] == "downloaded"


def test_retry_500_then_200(server, tmp_path):
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("busy", status=500)
        return Response(MATRIX, status=200, content_type="application/x-gzip")

    server.expect_request("/m.gz").respond_with_handler(handler)
    row = dl.fetch(server.url_for("/m.gz"), tmp_path / "m.gz", **FAST)
    assert len(calls) == 2
    assert row["status"] == "downloaded" and row["sha256"] == sha(MATRIX)
    assert (tmp_path / "m.gz").read_bytes() == MATRIX


def test_500_forever_gives_up(server, tmp_path, monkeypatch):
    slept = []
    monkeypatch.setattr(dl, "_sleep", slept.append)
    server.expect_request("/m.gz").respond_with_data("oops", status=503)
    with pytest.raises(DownloadError, match=r"after 4 attempt\(s\).*HTTP 503"):
        dl.fetch(server.url_for("/m.gz"), tmp_path / "m.gz", retries=3, backoff=0.5)
    assert len(server.log) == 4
    assert slept == [0.5, 1.0, 2.0]  # exponential backoff
    assert no_leftovers(tmp_path) == []


# --------------------------------------------------------------------------- permanent failures


def test_404_is_clear_and_not_retried(server, tmp_path):
    server.expect_request("/geo/x.gz").respond_with_data("Not Found", status=404)
    url = server.url_for("/geo/x.gz")
    with pytest.raises(DownloadError) as e:
        dl.fetch(url, tmp_path / "x.gz", **FAST)
    assert url in str(e.value) and "may not exist" in str(e.value)
    assert len(server.log) == 1
    assert no_leftovers(tmp_path) == []


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html>\n<html><head><title>Checking your browser</title></head></html>" * 40,
    b"\n  <html><body>verify you are human</body></html>",
])
def test_html_challenge_page_is_rejected(server, tmp_path, page):
    server.expect_request("/geo/" + MATRIX_REL).respond_with_data(page, content_type="text/html")
    dest = tmp_path / "geo" / "GSE1234_series_matrix.txt.gz"
    dest.parent.mkdir()
    with pytest.raises(DownloadError) as e:
        dl.fetch(server.url_for("/geo/" + MATRIX_REL), dest, **FAST)
    msg = str(e.value)
    for needle in ("HTML", "challenge", "by hand", str(dest), "offline: true",
                   "download.base_url", "mirror"):
        assert needle in msg, needle
    assert len(server.log) == 1  # a challenge page is not retried
    assert no_leftovers(tmp_path) == []


def test_html_as_text_is_rejected(server, tmp_path):
    server.expect_request("/r.txt").respond_with_data(
        "<!doctype HTML><p>hi", content_type="text/html")
    with pytest.raises(DownloadError, match="HTML"):
        dl.fetch(server.url_for("/r.txt"), tmp_path / "r.txt", expect="text", **FAST)
    assert no_leftovers(tmp_path) == []


def test_truncated_gzip_not_kept_and_old_dest_untouched(server, tmp_path):
    half = MATRIX[: len(MATRIX) // 2]
    server.expect_request("/m.gz").respond_with_data(half, content_type="application/x-gzip")
    dest = tmp_path / "m.gz"
    dest.write_bytes(b"previous content")
    with pytest.raises(DownloadError, match="not a complete gzip"):
        dl.fetch(server.url_for("/m.gz"), dest, **FAST)
    assert dest.read_bytes() == b"previous content"
    assert no_leftovers(tmp_path) == ["m.gz"]
    assert len(server.log) == 1  # full Content-Length received: the server's file is broken


def test_not_gzip_is_rejected(server, tmp_path):
    server.expect_request("/m.gz").respond_with_data(README)
    with pytest.raises(DownloadError, match="not a gzip file"):
        dl.fetch(server.url_for("/m.gz"), tmp_path / "m.gz", **FAST)
    assert no_leftovers(tmp_path) == []


# --------------------------------------------------------------------------- broken connections


class RawServer:
    """One-thread socket server on 127.0.0.1 that plays scripted (mis)behaviours per connection."""

    def __init__(self, script):
        self.script, self.count = script, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/m.gz"

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    got = conn.recv(4096)
                    if not got:
                        break
                    data += got
                mode = self.script[min(self.count, len(self.script) - 1)]
                self.count += 1
                self._respond(conn, mode)

    @staticmethod
    def _respond(conn, mode):
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\n"
                f"Content-Length: {len(MATRIX)}\r\nConnection: close\r\n\r\n").encode()
        if mode == "ok":
            conn.sendall(head + MATRIX)
        elif mode == "short":  # Content-Length longer than the body, then a clean close
            conn.sendall(head + MATRIX[:1500])
        elif mode == "reset":  # part of the body, then RST
            conn.sendall(head + MATRIX[:1500])
            time.sleep(0.05)
            linger = struct.pack("ii", 1, 0)  # on, 0 s: close() sends RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        elif mode == "noclen":  # no Content-Length, body cut: only gzip can tell
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-gzip\r\n\r\n"
                         + MATRIX[:1500])

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def make(script):
        servers.append(RawServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("mode", ["short", "reset", "noclen"])
def test_body_cut_short_is_retried_then_fails(raw_server, tmp_path, mode):
    srv = raw_server([mode])
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\)"):
        dl.fetch(srv.url, tmp_path / "m.gz", **FAST)
    assert srv.count == 3
    assert no_leftovers(tmp_path) == []


def test_body_cut_short_then_complete(raw_server, tmp_path):
    srv = raw_server(["short", "reset", "ok"])
    row = dl.fetch(srv.url, tmp_path / "m.gz", **FAST)
    assert srv.count == 3
    assert row["sha256"] == sha(MATRIX)
    assert (tmp_path / "m.gz").read_bytes() == MATRIX
    assert no_leftovers(tmp_path) == ["m.gz"]


def test_timeout_is_retried_then_clear_error(server, tmp_path):
    def slow(request):
        time.sleep(0.6)
        return Response(MATRIX, content_type="application/x-gzip")

    server.expect_request("/m.gz").respond_with_handler(slow)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\).*(?i:timed out)"):
        dl.fetch(server.url_for("/m.gz"), tmp_path / "m.gz", timeout=0.2, retries=1, backoff=0.01)
    assert time.monotonic() - t0 < 1.0
    assert no_leftovers(tmp_path) == []
    deadline = time.monotonic() + 3  # the slow handlers log only once they finish
    while len(server.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.log) == 2


# --------------------------------------------------------------------------- offline / cache


def test_offline_missing_file_names_it(server, tmp_path):
    with pytest.raises(DownloadError) as e:
        dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), tmp_path / "geo",
                     tmp_path / "manifest.tsv", offline=True)
    msg = str(e.value)
    assert str(tmp_path / "geo" / ENTRIES[0][1]) in msg
    assert server.url_for("/geo") + "/" + MATRIX_REL in msg
    assert "by hand" in msg
    assert len(server.log) == 0


def test_offline_uses_hand_filled_cache(server, tmp_path):
    out = tmp_path / "geo"
    out.mkdir()
    (out / "GSE1234_series_matrix.txt.gz").write_bytes(MATRIX)
    df = dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, tmp_path / "m.tsv", offline=True)
    assert df["status"].tolist() == ["cached"]
    assert df["sha256"].tolist() == [sha(MATRIX)]
    assert len(server.log) == 0


def test_offline_hand_filled_html_is_rejected(tmp_path):
    out = tmp_path / "geo"
    out.mkdir()
    (out / "GPL570.annot.gz").write_bytes(b"<!DOCTYPE html><html>challenge</html>")
    with pytest.raises(DownloadError, match="HTML"):
        dl.fetch_all(ENTRIES[1:2], "http://127.0.0.1:9/geo", out, tmp_path / "m.tsv",
                     offline=True)


def test_offline_sha_mismatch_is_an_error(server, tmp_path):
    serve_geo(server)
    out, manifest = tmp_path / "geo", tmp_path / "manifest.tsv"
    dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, manifest, **FAST)
    (out / ENTRIES[0][1]).write_bytes(ANNOT)
    with pytest.raises(DownloadError) as e:
        dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, manifest, offline=True)
    msg = str(e.value)
    assert sha(MATRIX) in msg and sha(ANNOT) in msg and ENTRIES[0][1] in msg
    assert len(server.log) == 1


def test_online_sha_mismatch_or_unrecorded_file_is_refetched(server, tmp_path):
    serve_geo(server)
    out, manifest = tmp_path / "geo", tmp_path / "manifest.tsv"
    dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, manifest, **FAST)
    dest = out / ENTRIES[0][1]
    dest.write_bytes(ANNOT)  # changed behind the manifest's back
    df = dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, manifest, **FAST)
    assert df["status"].tolist() == ["downloaded"]
    assert dest.read_bytes() == MATRIX
    assert len(server.log) == 2

    manifest.unlink()  # present file, no manifest entry: online -> fetched again
    df = dl.fetch_all(ENTRIES[:1], server.url_for("/geo"), out, manifest, **FAST)
    assert df["status"].tolist() == ["downloaded"]
    assert len(server.log) == 3


def test_failures_are_collected_and_manifest_still_written(server, tmp_path):
    serve_geo(server)
    missing = "series/GSE1nnn/GSE1234/suppl/missing.gz"
    server.expect_request("/geo/" + missing).respond_with_data("Not Found", status=404)
    entries = ENTRIES[:1] + [(missing, "missing.gz")]
    manifest = tmp_path / "manifest.tsv"
    with pytest.raises(DownloadError, match=r"(?s)1 of 2 file\(s\).*missing\.gz.*HTTP 404"):
        dl.fetch_all(entries, server.url_for("/geo"), tmp_path / "geo", manifest, **FAST)
    written = pd.read_csv(manifest, sep="\t", dtype=str)
    assert written["file"].tolist() == [ENTRIES[0][1]]
    assert written["sha256"].tolist() == [sha(MATRIX)]


# --------------------------------------------------------------------------- local mirror


def test_local_folder_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    for rel, body in [(MATRIX_REL, MATRIX), (ANNOT_REL, ANNOT), (README_REL, README)]:
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).write_bytes(body)
    out, manifest = tmp_path / "geo", tmp_path / "manifest.tsv"
    df = dl.fetch_all(ENTRIES, str(mirror), out, manifest)
    assert df["status"].tolist() == ["downloaded"] * 3
    assert df["sha256"].tolist() == [sha(MATRIX), sha(ANNOT), sha(README)]
    assert (out / ENTRIES[1][1]).read_bytes() == ANNOT
    assert dl.fetch_all(ENTRIES, str(mirror), out, manifest)["status"].tolist() == ["cached"] * 3

    (mirror / ANNOT_REL).write_bytes(ANNOT[:-20])  # truncated in the mirror
    (out / ENTRIES[1][1]).unlink()
    with pytest.raises(DownloadError, match="not a complete gzip"):
        dl.fetch_all(ENTRIES, str(mirror), out, manifest)
    assert not (out / ENTRIES[1][1]).exists()
    assert not (out / (ENTRIES[1][1] + ".part")).exists()

    # offline only forbids the network: a local mirror is still read
    df = dl.fetch_all(ENTRIES[:1], str(mirror), tmp_path / "geo2", tmp_path / "m2.tsv",
                      offline=True)
    assert df["status"].tolist() == ["downloaded"] and df["sha256"][0] == sha(MATRIX)

    with pytest.raises(DownloadError, match="not found in the local GEO mirror"):
        dl.fetch(mirror / "series/GSE9nnn/GSE9999/matrix/x.gz", out / "x.gz")


DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "geo"


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo GEO mirror not generated")
def test_demo_mirror_files_pass_validation(tmp_path):
    files = sorted(p for p in DEMO.rglob("*") if p.is_file())
    assert files
    entries = [(str(p.relative_to(DEMO)), p.name) for p in files]
    df = dl.fetch_all(entries, DEMO, tmp_path / "geo", tmp_path / "m.tsv")
    assert df["sha256"].tolist() == [sha(p.read_bytes()) for p in files]


def _mirror_file(tmp_path) -> tuple[Path, str, bytes]:
    rel = "series/GSE1nnn/GSE1234/matrix/GSE1234_series_matrix.txt.gz"
    data = gzip.compress(b'!Series_title\t"x"\n', mtime=0)
    src = tmp_path / "mirror" / rel
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    return tmp_path / "mirror", rel, data


def test_download_file_writes_the_file_and_its_manifest_row(tmp_path):
    """The download rule's unit: one file and its record; the manifest rule joins the records."""
    mirror, rel, data = _mirror_file(tmp_path)
    dest = tmp_path / "cache" / "GSE1234_series_matrix.txt.gz"
    record = tmp_path / "cache" / ".records" / "GSE1234_series_matrix.txt.gz.tsv"
    row = dl.download_file(rel, mirror, dest, record, retries=0)
    assert dest.read_bytes() == data and row["status"] == "downloaded"
    rec = pd.read_csv(record, sep="\t", dtype=str)
    assert list(rec.columns) == dl.MANIFEST_COLUMNS
    assert rec.loc[0, "file"] == dest.name and rec.loc[0, "sha256"] == hashlib.sha256(data).hexdigest()
    assert rec.loc[0, "url"] == str(mirror / rel)
    manifest = dl.write_manifest([dest], [record], tmp_path / "cache" / "manifest.tsv")
    assert manifest[0]["bytes"] == len(data)
    assert pd.read_csv(tmp_path / "cache" / "manifest.tsv", sep="\t").loc[0, "sha256"] == rec.loc[0, "sha256"]


def test_manifest_stops_on_a_cached_file_changed_after_download(tmp_path):
    mirror, rel, data = _mirror_file(tmp_path)
    dest = tmp_path / "cache" / "GSE1234_series_matrix.txt.gz"
    record = tmp_path / "cache" / "rec.tsv"
    dl.download_file(rel, mirror, dest, record, retries=0)
    dest.write_bytes(gzip.compress(b"edited\n", mtime=0))
    with pytest.raises(DownloadError, match=r"GSE1234_series_matrix.txt.gz changed since it was downloaded.*Delete the file"):
        dl.write_manifest([dest], [record], tmp_path / "cache" / "manifest.tsv")
    assert not (tmp_path / "cache" / "manifest.tsv").exists()


def test_manifest_names_a_damaged_record(tmp_path):
    """A record cut short or edited by hand stops the manifest job, naming the record."""
    mirror, rel, data = _mirror_file(tmp_path)
    dest, record = tmp_path / "cache" / "GSE1234_series_matrix.txt.gz", tmp_path / "cache" / "rec.tsv"
    dl.download_file(rel, mirror, dest, record, retries=0)
    header, row = record.read_text().splitlines()
    record.write_text(header + "\n")
    with pytest.raises(DownloadError, match=r"rec\.tsv should hold one row .* found 0 row"):
        dl.write_manifest([dest], [record], tmp_path / "cache" / "manifest.tsv")
    record.write_text(header + "\n" + row.replace(f"\t{len(data)}\t", "\t12kB\t") + "\n")
    with pytest.raises(DownloadError, match=r"rec\.tsv: bytes '12kB' is not a whole number"):
        dl.write_manifest([dest], [record], tmp_path / "cache" / "manifest.tsv")
    assert not (tmp_path / "cache" / "manifest.tsv").exists()


def test_offline_download_job_keeps_a_file_put_in_the_cache_by_hand(tmp_path):
    """The GEO challenge-page fix: the user downloads in a browser and puts the file in place; the
    offline job (its file output is update()-flagged, so Snakemake does not delete it) records it."""
    dest = tmp_path / "cache" / "GSE1234_series_matrix.txt.gz"
    dest.parent.mkdir(parents=True)
    data = gzip.compress(b"by hand\n", mtime=0)
    dest.write_bytes(data)
    row = dl.download_file("series/GSE1nnn/GSE1234/matrix/GSE1234_series_matrix.txt.gz",
                           "http://127.0.0.1:9/geo", dest, tmp_path / "rec.tsv", offline=True)
    assert row["status"] == "cached" and dest.read_bytes() == data
