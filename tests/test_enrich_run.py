"""Gene-set collections through the download client (127.0.0.1) and alias harmonisation."""

import functools
import hashlib
import http.server
import threading

import pandas as pd
import pytest

from prepost.enrich import run as enrich_run
from prepost.io import download

GMT = "SET_A\tsource A\tBRCA1\tBRCA2\tATM\nSET_B\tsource B\tMX1\tIFIT1\tFAM123B\n"


@pytest.fixture
def gmt_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "sets.gmt").write_text(GMT)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sets.gmt"
    server.shutdown()


def test_url_collection_is_fetched_and_recorded(tmp_path, gmt_server):
    sha = hashlib.sha256(GMT.encode()).hexdigest()
    prov = enrich_run.fetch_collections(
        [{"name": "web", "url": gmt_server, "sha256": sha}], tmp_path / "cache", tmp_path / "prov.tsv",
        retries=0,
    )
    assert prov.loc[0, "sha256"] == sha and prov.loc[0, "sets"] == 2 and prov.loc[0, "source"] == gmt_server
    assert (tmp_path / "cache/web.gmt").read_text() == GMT
    assert pd.read_csv(tmp_path / "prov.tsv", sep="\t").loc[0, "file"] == "web.gmt"


def test_url_collection_with_wrong_checksum_is_refused(tmp_path, gmt_server):
    with pytest.raises(download.DownloadError, match=r"'web'.*does not match the configured"):
        enrich_run.fetch_collections(
            [{"name": "web", "url": gmt_server, "sha256": "0" * 64}], tmp_path / "cache",
            tmp_path / "prov.tsv", retries=0,
        )
    assert not (tmp_path / "cache/web.gmt").exists()


def test_alias_table_lets_previous_symbols_match(tmp_path):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text(GMT)
    aliases = tmp_path / "hgnc.tsv"
    aliases.write_text("Approved symbol\tPrevious symbols\tAlias symbols\nAMER1\tFAM123B\tWTX\n")
    genes = pd.Index(["BRCA1", "BRCA2", "ATM", "MX1", "IFIT1", "AMER1"])
    without, _ = enrich_run.load_sets({"c": str(gmt)}, genes)
    with_alias, report = enrich_run.load_sets({"c": str(gmt)}, genes, str(aliases))
    assert "AMER1" not in set(without["gene"])
    assert set(with_alias.loc[with_alias.set == "SET_B", "gene"]) == {"MX1", "IFIT1", "AMER1"}
    assert report.set_index("set").loc["SET_B", "n_found"] == 3
