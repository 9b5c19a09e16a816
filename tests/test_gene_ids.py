"""Gene identifiers to symbols, sample sheets and column matching (prepare.gene_ids,
io.gene_maps, prepare.samples), on written fixtures and on the real files of ../shared/data."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from prepost.io import counts
from prepost.io.gene_maps import read_gene_map, read_gene_maps
from prepost.prepare import gene_ids, samples
from prepost.prepare.dataset import PrepareError, prepare_dataset

from conftest import ROOT, SHARED_DATA

GENES = SHARED_DATA / "genes"
ENTREZ_SYMBOL = GENES / "org.Hs.eg.db_3.16.0_entrez_symbol.tsv.gz"
ENTREZ_ENSEMBL = GENES / "org.Hs.eg.db_3.16.0_entrez_ensembl.tsv.gz"
G91 = SHARED_DATA / "geo/GSE91061"
real = pytest.mark.skipif(not (ENTREZ_SYMBOL.is_file() and G91.is_dir()), reason="../shared/data absent")


def test_detect_id_type():
    assert gene_ids.detect_id_type(pd.Index(["1", "10", "7157"]))[0] == "entrez"
    assert gene_ids.detect_id_type(pd.Index(["ENSG00000141510.17", "ENSG00000012048", "x"]))[0] == "ensembl"
    assert gene_ids.detect_id_type(pd.Index(["TP53", "BRCA1", "7SK"]))[0] == "symbol"


def test_map_rule_unmapped_ambiguous_merged():
    data = pd.DataFrame({"A": [1, 2, 3, 4, 5], "B": [10, 20, 30, 40, 50]},
                        index=["ENSG01.3", "ENSG02", "ENSG03", "ENSG04", "ENSG01.3_PAR_Y"])
    rel = pd.DataFrame({"ensembl": ["ENSG01", "ENSG02", "ENSG02", "ENSG03"],
                        "symbol": ["X1", "Y1", "Y2", "X1"]})
    out, led = gene_ids.map_to_symbols(data, "ensembl", "counts", relation=rel)
    # ENSG01 (+ its PAR_Y copy) and ENSG03 all reach X1: summed; ENSG02 is ambiguous and
    # ENSG04 unmapped: both keep their own id
    assert out.loc["X1"].tolist() == [1 + 3 + 5, 10 + 30 + 50]
    assert set(out.index) == {"X1", "ENSG02", "ENSG04"} and out.to_numpy().sum() == data.to_numpy().sum()
    assert led["mapped"] == 3 and led["unmapped"] == 1 and led["ambiguous"] == 1
    assert led["merged"]["symbols"] == 1 and led["merged"]["ids"] == 3
    logv = data.astype(float)
    out2, led2 = gene_ids.map_to_symbols(logv, "ensembl", "log2", relation=rel)
    assert out2.loc["X1"].tolist() == [5.0, 50.0] and led2["merged"]["policy"] == "max_mean"
    with pytest.raises(gene_ids.GeneIdError, match="'X1' from"):
        gene_ids.map_to_symbols(data, "ensembl", "counts", relation=rel, merge="error")


def test_gene_map_formats(tmp_path):
    info = tmp_path / "Homo_sapiens.gene_info.gz"  # NCBI's layout: '#' header, dbXrefs
    info.write_bytes(gzip.compress(
        b"#tax_id\tGeneID\tSymbol\tLocusTag\tSynonyms\tdbXrefs\n"
        b"9606\t1\tA1BG\t-\tA1B\tMIM:138670|HGNC:HGNC:5|Ensembl:ENSG00000121410\n"
        b"9606\t7157\tTP53\t-\tP53\tMIM:191170|HGNC:HGNC:11998|Ensembl:ENSG00000141510\n"
    ))
    m = read_gene_map(info)
    assert m.set_index("entrez").loc["7157", "symbol"] == "TP53"
    assert m.set_index("ensembl").loc["ENSG00000121410", "symbol"] == "A1BG"
    annot = tmp_path / "Human.GRCh38.p13.annot.tsv"  # GEO's annotation of its NCBI counts
    annot.write_text("GeneID\tSymbol\tDescription\tGeneType\tEnsemblGeneID\n"
                     "7157\tTP53\ttumor protein p53\tprotein-coding\tENSG00000141510\n")
    assert read_gene_map(annot).iloc[0].to_dict() == {"entrez": "7157", "ensembl": "ENSG00000141510", "symbol": "TP53"}
    two = tmp_path / "two.tsv"
    two.write_text("probe\tname\nENSG00000141510\tTP53\n")
    assert read_gene_map(two).iloc[0].to_dict() == {"id": "ENSG00000141510", "symbol": "TP53"}


def test_sample_sheet_cr_line_ends_empty_and_repeated_header(tmp_path):
    p = tmp_path / "sheet.csv"
    p.write_bytes(b',Sample,Response,Response\r"a",S1,PD,NB\r"b",S2,PRCR,LB\r')
    s = samples.read_sample_sheet(p, "Sample")
    assert s.index.tolist() == ["S1", "S2"]
    assert s["Response"].tolist() == ["PD", "PRCR"] and s["Response (2)"].tolist() == ["NB", "LB"]
    assert s["(row names)"].tolist() == ["a", "b"]
    with pytest.raises(samples.SampleSheetError, match=r"line 3: duplicate sample id 'S1' \(first on line 2\)"):
        q = tmp_path / "dup.tsv"
        q.write_text("sample\tx\nS1\t1\nS1\t2\n")
        samples.read_sample_sheet(q)


def test_match_columns_regex_replicates_unmatched():
    sheet = pd.DataFrame({"title": ["P1_pre", "P1_post"]}, index=pd.Index(["GSM1", "GSM2"], name="sample"))
    data = pd.DataFrame([[1, 2, 3, 9]], columns=["P1_pre_L1", "P1_post_L2", "P1_post_L3", "junk"])
    opts = {"sample_regex": r"^(P\d+_(?:pre|post))_", "replicates": "sum", "unmatched_columns": "drop"}
    out, led = samples.match_columns(data, sheet, opts, "t.tsv", "title")
    assert out.loc[0, "GSM1"] == 1 and out.loc[0, "GSM2"] == 5 and "junk" not in out.columns
    assert led["replicates"]["samples"] == {"GSM2": ["P1_post_L2", "P1_post_L3"]} and led["unmatched_columns"] == ["junk"]
    with pytest.raises(samples.SampleSheetError, match=r"columns \['P1_post_L2', 'P1_post_L3'\] all match sample 'GSM2'.*counts\.replicates"):
        samples.match_columns(data, sheet, {**opts, "replicates": "error"}, "t.tsv", "title")
    with pytest.raises(samples.SampleSheetError, match=r"\['junk'\].*unmatched_columns: drop"):
        samples.match_columns(data, sheet, {**opts, "unmatched_columns": "error"}, "t.tsv", "title")
    first, _ = samples.match_columns(data, sheet, {**opts, "replicates": "first"}, "t.tsv", "title")
    assert first.loc[0, "GSM2"] == 2
    mapped, _ = samples.match_columns(data.iloc[:, :2], sheet, {"sample_map": {"P1_pre_L1": "P1_pre", "P1_post_L2": "P1_post"}}, "t", "title")
    assert mapped.columns.tolist() == ["GSM1", "GSM2"]


def _local_ds(tmp_path, ids, extra=None):
    expr = tmp_path / "counts.tsv"
    rows = "\n".join(f"{g}\t{i + 1}\t{i + 2}\t{i + 3}\t{i + 4}" for i, g in enumerate(ids))
    expr.write_text("gene\tP1_pre\tP1_post\tP2_pre\tP2_post\n" + rows + "\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample\tpatient\ttime\nP1_pre\tP1\tpre\nP1_post\tP1\tpost\nP2_pre\tP2\tpre\nP2_post\tP2\tpost\n")
    ds = {"kind": "local", "expression": str(expr), "samples": str(sheet), "values": "counts",
          "pairing": {"patient": {"field": "patient"}, "timepoint": {"field": "time", "map": {"pre": "pre", "post": "post"}}},
          "contrasts": ["post_vs_pre"], **(extra or {})}
    return ds, {"expression": str(expr), "samples": str(sheet)}


def test_entrez_without_a_map_stops_at_prepare_with_the_fix(tmp_path):
    ds, files = _local_ds(tmp_path, ["7157", "672", "675"])
    with pytest.raises(PrepareError, match=r"look like Entrez Gene ids.*100% of 3.*Set gene_map.*gene_info"):
        prepare_dataset("d", ds, files)


def test_symbols_matching_no_gene_set_stop_at_prepare(tmp_path):
    ds, files = _local_ds(tmp_path, ["ILMN_1", "ILMN_2", "ILMN_3"])
    files["gmt_0"] = str(ROOT / "config/genesets/prepost_curated.gmt")
    with pytest.raises(PrepareError, match=r"only 0 of the \d+ genes of the gene-set collection .*prepost_curated"):
        prepare_dataset("d", ds, files)


def test_symbol_column_of_the_table(tmp_path):
    expr = tmp_path / "c.csv"
    expr.write_text("gene_id,gene_name,P1_pre,P1_post\nENSG00000141510.17,TP53,1,2\nENSG00000012048.23,BRCA1,3,4\n"
                    "ENSG00000999999.1,,5,6\n")
    t = counts.read_counts(expr)
    out, led = gene_ids.map_to_symbols(t.counts, "ensembl", "counts", symbols=t.annotation["gene_name"].reset_index(drop=True))
    assert out.index.tolist() == ["BRCA1", "ENSG00000999999.1", "TP53"] and led["unmapped"] == 1


@real
def test_real_ensembl_map_chain_joins_on_entrez():
    rel = read_gene_maps([ENTREZ_ENSEMBL, ENTREZ_SYMBOL])
    idx = rel.set_index("ensembl")
    assert idx.loc["ENSG00000141510", "symbol"] == "TP53" and idx.loc["ENSG00000139618", "symbol"] == "BRCA2"
    data = pd.DataFrame({"A": [5, 7]}, index=["ENSG00000141510.17", "ENSG00000139618.15"])
    out, led = gene_ids.map_to_symbols(data, "ensembl", "counts", relation=rel)
    assert out.to_dict() == {"A": {"BRCA2": 7, "TP53": 5}} and led["mapped"] == 2


@real
def test_real_gse91061_prepares_from_the_example_config():
    """config/examples/gse91061.yaml on the unmodified files: Entrez ids mapped, the authors'
    table joined by regex, Pt109's two libraries summed, 43 complete pairs (README counts)."""
    cfg = yaml.safe_load((ROOT / "config/examples/gse91061.yaml").read_text())
    ds = cfg["datasets"]["riaz2017"]
    ds["expression"] = str(G91 / "GSE91061_BMS038109Sample.hg19KnownGene.raw.csv.gz")
    ds["samples"] = str(G91 / "authors/SampleTableCorrected.9.19.16.csv")
    files = {"expression": ds["expression"], "samples": ds["samples"], "gene_map_0": str(ENTREZ_SYMBOL),
             "gmt_0": str(ROOT / "config/genesets/prepost_curated.gmt")}
    p = prepare_dataset("riaz2017", ds, files)
    s = p.summary
    assert s["pairs"] == 43
    assert s["columns"]["replicates"]["samples"] == {"Pt109_On": ["Pt109_On_AE527955-5", "Pt109_On_AE527955-6"]}
    assert s["columns"]["unmatched_columns"] == ["Pt68_On_AD635729-6"]
    assert s["gene_ids"]["detected"] == "entrez" and s["gene_ids"]["ids"] == 22187
    assert s["gene_ids"]["mapped"] + s["gene_ids"]["unmapped"] + s["gene_ids"]["ambiguous"] == 22187
    # independent check of the mapping and the replicate sum from the raw files
    raw = pd.read_csv(ds["expression"], index_col=0)
    sym = pd.read_csv(ENTREZ_SYMBOL, sep="\t", dtype=str).set_index("entrez_id")["symbol"]
    for entrez, symbol in [(675, "BRCA2"), (472, "ATM"), (6772, "STAT1")]:
        assert sym[str(entrez)] == symbol
        assert p.expression.loc[symbol, "Pt1_Pre"] == raw.loc[entrez, "Pt1_Pre_AD101148-6"]
        assert p.expression.loc[symbol, "Pt109_On"] == raw.loc[entrez, ["Pt109_On_AE527955-5", "Pt109_On_AE527955-6"]].sum()
    assert json.dumps(s, default=str)  # the ledger is JSON-serialisable for prepare.json
    assert np.array_equal(p.expression.sum().sort_index().to_numpy(),
                          raw.drop(columns="Pt68_On_AD635729-6").T.groupby(lambda c: "_".join(c.split("_")[:2])).sum().T.sum().reindex(p.expression.columns).sort_index().to_numpy())


def test_geo_counts_short_header_sheet_join_and_entrez_map(tmp_path):
    """A GEO RNA-seq series as it often comes: a series matrix without response, a count table
    written by R's write.table (header one field short, Entrez ids, library suffixes on the
    titles), response from the paper's sheet, a two-column id map."""
    q = lambda xs: "\t".join(f'"{x}"' for x in xs)  # noqa: E731
    gsm = ["GSM1", "GSM2", "GSM3", "GSM4", "GSM5", "GSM6"]
    titles = ["P1_pre", "P1_post", "P2_pre", "P2_post", "P3_pre", "P3_post"]
    sm = tmp_path / "GSE1_series_matrix.txt"
    sm.write_text("\n".join([
        '!Series_geo_accession\t"GSE1"', f"!Sample_title\t{q(titles)}", f"!Sample_geo_accession\t{q(gsm)}",
        f"!Sample_characteristics_ch1\t{q('patient: ' + t[:2] for t in titles)}",
        f"!Sample_characteristics_ch1\t{q('visit: ' + t[3:] for t in titles)}",
        "!series_matrix_table_begin", f'"ID_REF"\t{q(gsm)}', "!series_matrix_table_end"]) + "\n")
    cols = [f"{t}_L{i}" for i, t in enumerate(titles)]
    rng = np.random.default_rng(5)
    values = rng.integers(0, 1000, (4, 6))
    table = tmp_path / "GSE1_counts.txt"
    table.write_text(" ".join(f'"{c}"' for c in cols) + "\n" + "".join(
        f'"{g}" ' + " ".join(map(str, v)) + "\n" for g, v in zip(["7157", "672", "675", "999999"], values)))
    sheet = tmp_path / "paper_table.csv"
    sheet.write_text("Patient,pCR\nP1,yes\nP2,no\nP3,no\nP9,yes\n")
    gmap = tmp_path / "map.tsv"
    gmap.write_text("entrez\tsymbol\n7157\tTP53\n672\tBRCA1\n675\tBRCA2\n")
    ds = {"kind": "geo_counts", "accession": "GSE1",
          "counts": {"file": table.name, "sample_regex": r"^(P\d_(?:pre|post))_L"},
          "sample_sheet": {"path": str(sheet), "id_column": "Patient", "join": "patient"},
          "gene_map": [{"path": str(gmap)}],
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "visit", "map": {"pre": "pre", "post": "post"}},
                      "response": {"field": "pCR", "map": {"yes": "responder", "no": "non_responder"}}},
          "contrasts": ["post_vs_pre"]}
    files = {"series_matrix": str(sm), "counts": str(table), "sample_sheet": str(sheet), "gene_map_0": str(gmap)}
    p = prepare_dataset("d", ds, files)
    assert p.summary["count_table"]["header_one_short"] is True
    expect = pd.DataFrame(values, index=["7157", "672", "675", "999999"], columns=gsm)
    assert p.expression.loc["TP53"].tolist() == expect.loc["7157"].tolist()  # GSM1 has P1_pre's counts
    assert p.expression.loc["999999"].tolist() == expect.loc["999999"].tolist()  # unmapped keeps its id
    assert p.summary["sample_sheet"]["sheet_rows_not_used"] == ["P9"]
    resp = p.sheet.set_index("sample")["response"]
    assert resp["GSM1"] == "responder" and resp["GSM4"] == "non_responder"


def test_gene_map_by_url_through_the_download_client(tmp_path):
    """A gene map given as a URL is fetched by the download client (127.0.0.1 here), its sha256
    checked, and parsed once; a wrong checksum is an error naming the config key."""
    import functools
    import hashlib
    import http.server
    import threading

    from prepost.io import download
    from prepost.io.gene_maps import fetch_gene_map

    served = tmp_path / "srv"
    served.mkdir()
    body = gzip.compress(b"#tax_id\tGeneID\tSymbol\tdbXrefs\n9606\t7157\tTP53\tEnsembl:ENSG00000141510\n")
    (served / "Homo_sapiens.gene_info.gz").write_bytes(body)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/Homo_sapiens.gene_info.gz"
        sha = hashlib.sha256(body).hexdigest()
        row = fetch_gene_map({"url": url, "sha256": sha}, tmp_path / "map0", "datasets.d.gene_map[0]", retries=0)
        assert row["rows"] == 1 and row["sha256"] == sha
        assert read_gene_map(tmp_path / "map0").iloc[0]["symbol"] == "TP53"
        with pytest.raises(download.DownloadError, match=r"datasets\.d\.gene_map\[0\].*does not match"):
            fetch_gene_map({"url": url, "sha256": "0" * 64}, tmp_path / "map1", "datasets.d.gene_map[0]", retries=0)
        assert not (tmp_path / "map1").exists()
    finally:
        server.shutdown()
