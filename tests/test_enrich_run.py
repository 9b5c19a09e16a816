"""Gene-set collections through the download client (127.0.0.1) and alias harmonisation."""

import functools
import hashlib
import http.server
import threading

import pandas as pd
import pytest

from prepost.enrich import run as enrich_run
from prepost.enrich.collections import fetch_collections
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
    prov = fetch_collections(
        [{"name": "web", "url": gmt_server, "sha256": sha}], tmp_path / "cache", tmp_path / "prov.tsv",
        retries=0,
    )
    assert prov.loc[0, "sha256"] == sha and prov.loc[0, "sets"] == 2 and prov.loc[0, "source"] == gmt_server
    assert (tmp_path / "cache/web.gmt").read_text() == GMT
    assert pd.read_csv(tmp_path / "prov.tsv", sep="\t").loc[0, "file"] == "web.gmt"


def test_url_collection_with_wrong_checksum_is_refused(tmp_path, gmt_server):
    with pytest.raises(download.DownloadError, match=r"'web'.*does not match the configured"):
        fetch_collections(
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


def test_low_coverage_collection_is_skipped_with_reason_not_fatal(tmp_path):
    """A targeted panel against genome-wide sets: the collection below enrichment.min_coverage
    is skipped (reason in the report), the other one is tested; ids of another type stay an
    error."""
    panel = pd.Index([f"G{i}" for i in range(40)])
    wide = tmp_path / "wide.gmt"  # each set: 5 panel genes of 50 (10 % coverage)
    wide.write_text("".join(
        f"W{k}\td\t" + "\t".join([f"G{k * 5 + j}" for j in range(5)] + [f"X{k}_{j}" for j in range(45)]) + "\n"
        for k in range(4)))
    small = tmp_path / "small.gmt"  # fully covered
    small.write_text("S1\td\t" + "\t".join(f"G{j}" for j in range(10)) + "\n"
                     "S2\td\t" + "\t".join(f"G{j}" for j in range(10, 20)) + "\n")
    with pytest.warns(Warning):
        sets, report = enrich_run.load_sets({"wide": str(wide), "small": str(small)}, panel, min_coverage=0.2)
    assert set(sets["collection"]) == {"small"}
    status = report.drop_duplicates("collection").set_index("collection")["collection_status"]
    assert status["small"] == "tested"
    assert status["wide"].startswith("skipped: only 10.0% of a typical set's genes are among the 40 measured genes")
    assert "enrichment.min_coverage 20%" in status["wide"]
    assert (report.loc[report["collection"] == "wide", "fraction"] == 0.1).all()  # coverage per set
    # threshold configurable: at 5 % the panel's overlap is tested
    with pytest.warns(Warning):
        sets, _ = enrich_run.load_sets({"wide": str(wide)}, panel, min_coverage=0.05)
    assert set(sets["set"]) == {"W0", "W1", "W2", "W3"}
    # every collection skipped: empty sets, and prerank/ORA give empty tables
    with pytest.warns(Warning):
        sets, _ = enrich_run.load_sets({"wide": str(wide)}, panel, min_coverage=0.5)
    assert sets.empty
