"""Parsers of GEO files, on small fixtures written the way GEO writes them."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prepost.io import counts, geo
from prepost.io.geo import CountTableError, GeoFormatError, PlatformError, SeriesMatrixError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo" / "geo"

# A series matrix as GEO serves it: quoted tab-separated cells, repeated !Series_summary,
# characteristics spread over lines with keys mixed across samples, an empty characteristics
# cell, a cell without "key: " and a value containing ": ", null / NA / empty table cells.
SERIES = "\n".join(
    [
        '!Series_title\t"Paired biopsies before and after neoadjuvant chemotherapy"',
        '!Series_geo_accession\t"GSE12345"',
        '!Series_status\t"Public on Jan 01 2015"',
        '!Series_summary\t"First paragraph."',
        '!Series_summary\t"Second: with a colon."',
        '!Series_platform_id\t"GPL570"',
        '!Series_sample_id\t"GSM1001 GSM1002 GSM1003 "',
        "",
        '!Sample_title\t"P1 pre"\t"P1 post"\t"P2 pre"',
        '!Sample_geo_accession\t"GSM1001"\t"GSM1002"\t"GSM1003"',
        '!Sample_status\t"Public on Jan 01 2015"\t"Public on Jan 01 2015"\t"Public on Jan 01 2015"',
        '!Sample_source_name_ch1\t"breast tumour, core biopsy"\t"breast tumour, surgery"\t"breast tumour, core biopsy"',
        '!Sample_organism_ch1\t"Homo sapiens"\t"Homo sapiens"\t"Homo sapiens"',
        '!Sample_characteristics_ch1\t"patient id: P1"\t"patient id: P1"\t"patient id: P2"',
        '!Sample_characteristics_ch1\t"timepoint: pre"\t"timepoint: post"\t"age: 51"',
        '!Sample_characteristics_ch1\t"age: 47"\t"age: 47"\t"timepoint: pre"',
        '!Sample_characteristics_ch1\t"note: ratio: 2:1"\t""\t"ER positive"',
        '!Sample_data_processing\t"MAS5"\t"MAS5"\t"MAS5"',
        '!Sample_data_processing\t"scaled to 500"\t"scaled to 500"\t"scaled to 500"',
        '!Sample_platform_id\t"GPL570"\t"GPL570"\t"GPL570"',
        '!Sample_description\t"first"\t""\t"third"',
        '!Sample_data_row_count\t"4"\t"4"\t"4"',
        "!series_matrix_table_begin",
        '"ID_REF"\t"GSM1001"\t"GSM1002"\t"GSM1003"',
        '"1007_s_at"\t1520.3\t1498.1\tnull',
        '"1053_at"\t88.2\t\t92.5',
        '"117_at"\t"12.5"\tNA\t14',
        '"121_at"\t-3.1e2\t0\t7.25',
        "!series_matrix_table_end",
        "",
    ]
)


def _write(tmp_path: Path, name: str, text: str, *, gz: bool = False, raw: bytes | None = None) -> Path:
    p = tmp_path / name
    data = raw if raw is not None else text.encode("utf-8")
    if gz:
        with gzip.GzipFile(p, "wb", mtime=0) as fh:
            fh.write(data)
    else:
        p.write_bytes(data)
    return p


def _check_fixture(sm: geo.SeriesMatrix) -> None:
    assert sm.accession == "GSE12345"
    assert sm.series["summary"] == ["First paragraph.", "Second: with a colon."]
    assert sm.series["sample_id"] == ["GSM1001 GSM1002 GSM1003"]
    s = sm.samples
    assert s.index.name == "sample"
    assert list(s.index) == ["GSM1001", "GSM1002", "GSM1003"]
    assert list(s["title"]) == ["P1 pre", "P1 post", "P2 pre"]
    assert list(s["geo_accession"]) == ["GSM1001", "GSM1002", "GSM1003"]
    assert s.loc["GSM1002", "source_name_ch1"] == "breast tumour, surgery"
    assert list(s["platform_id"]) == ["GPL570"] * 3
    # characteristics: by key per cell, whatever line it was on
    assert list(s["patient id"]) == ["P1", "P1", "P2"]
    assert list(s["timepoint"]) == ["pre", "post", "pre"]
    assert list(s["age"]) == ["47", "47", "51"]
    assert s.loc["GSM1001", "note"] == "ratio: 2:1"
    assert pd.isna(s.loc["GSM1002", "note"]) and pd.isna(s.loc["GSM1003", "note"])
    assert s.loc["GSM1003", "characteristics_ch1"] == "ER positive"
    assert pd.isna(s.loc["GSM1001", "characteristics_ch1"])
    assert s.loc["GSM1001", "data_processing"] == "MAS5; scaled to 500"
    assert s.loc["GSM1001", "description"] == "first"
    assert pd.isna(s.loc["GSM1002", "description"])
    assert "characteristics_ch1" in s.columns and "characteristics_ch1" != "Sample_characteristics_ch1"
    # characteristics columns sit where the characteristics lines were
    cols = list(s.columns)
    assert cols.index("organism_ch1") < cols.index("patient id") < cols.index("data_processing")

    t = sm.table
    assert t.index.name == "ID_REF"
    assert list(t.index) == ["1007_s_at", "1053_at", "117_at", "121_at"]
    assert list(t.columns) == ["GSM1001", "GSM1002", "GSM1003"]
    assert (t.dtypes == "float64").all()
    expected = np.array(
        [[1520.3, 1498.1, np.nan], [88.2, np.nan, 92.5], [12.5, np.nan, 14.0], [-310.0, 0.0, 7.25]]
    )
    np.testing.assert_array_equal(t.to_numpy(), expected)


def test_series_matrix_plain_and_gzip(tmp_path):
    _check_fixture(geo.parse_series_matrix(_write(tmp_path, "GSE12345_series_matrix.txt", SERIES)))
    _check_fixture(geo.parse_series_matrix(_write(tmp_path, "x.txt.gz", SERIES, gz=True)))


def test_series_matrix_crlf_bom_trailing_tabs(tmp_path):
    # Windows line ends, a UTF-8 BOM, and a trailing tab on every line (sample lines and table rows)
    messy = "\r\n".join(line + "\t" if line.strip() else line for line in SERIES.split("\n"))
    p = _write(tmp_path, "messy.txt.gz", "", gz=True, raw=b"\xef\xbb\xbf" + messy.encode())
    _check_fixture(geo.parse_series_matrix(p))


def test_series_matrix_rnaseq_empty_table(tmp_path):
    head = SERIES.split("!series_matrix_table_begin")[0]
    text = head + '!series_matrix_table_begin\n"ID_REF"\t"GSM1001"\t"GSM1002"\t"GSM1003"\n!series_matrix_table_end\n'
    sm = geo.parse_series_matrix(_write(tmp_path, "rna.txt", text))
    assert sm.table.shape == (0, 3)
    assert list(sm.table.columns) == ["GSM1001", "GSM1002", "GSM1003"]
    assert list(sm.samples["timepoint"]) == ["pre", "post", "pre"]


def test_series_matrix_second_channel(tmp_path):
    text = SERIES.replace(
        '!Sample_data_processing\t"MAS5"',
        '!Sample_characteristics_ch2\t"reference: pool"\t"reference: pool"\t"universal RNA"\n'
        '!Sample_data_processing\t"MAS5"',
        1,
    )
    s = geo.parse_series_matrix(_write(tmp_path, "ch2.txt", text)).samples
    assert s["reference_ch2"].iloc[:2].tolist() == ["pool", "pool"]
    assert pd.isna(s["reference_ch2"].iloc[2])
    assert s.loc["GSM1003", "characteristics_ch2"] == "universal RNA"
    assert list(s["timepoint"]) == ["pre", "post", "pre"]  # ch1 keys untouched


def _error(tmp_path, text, exc=SeriesMatrixError) -> str:
    p = _write(tmp_path, "bad_series_matrix.txt", text)
    with pytest.raises(exc) as info:
        geo.parse_series_matrix(p)
    msg = str(info.value)
    assert "bad_series_matrix.txt" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, GeoFormatError)
    return msg


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), start=1) if needle in line)


def test_series_matrix_errors(tmp_path):
    head = SERIES.split("!series_matrix_table_begin")[0]
    assert "series_matrix_table_begin" in _error(tmp_path, head)

    no_end = SERIES.replace("!series_matrix_table_end", "")
    msg = _error(tmp_path, no_end)
    assert f"line {_line_of(SERIES, 'table_begin')}" in msg and "without !series_matrix_table_end" in msg

    ragged = SERIES.replace('"1053_at"\t88.2\t\t92.5', '"1053_at"\t88.2\t92.5')
    msg = _error(tmp_path, ragged)
    assert f"line {_line_of(SERIES, '1053_at')}" in msg and "3 cells, expected 4" in msg

    non_num = SERIES.replace("\t7.25", "\t7,25")
    msg = _error(tmp_path, non_num)
    assert f"line {_line_of(SERIES, '121_at')}, column GSM1003" in msg and "'7,25'" in msg

    dup = SERIES.replace('"GSM1002"\t"GSM1003"\n!Sample_status', '"GSM1002"\t"GSM1002"\n!Sample_status')
    msg = _error(tmp_path, dup)
    assert "duplicate GSM" in msg and "GSM1002" in msg and f"line {_line_of(SERIES, 'Sample_geo_accession')}" in msg

    dup_header = SERIES.replace('"ID_REF"\t"GSM1001"\t"GSM1002"\t"GSM1003"', '"ID_REF"\t"GSM1001"\t"GSM1001"\t"GSM1003"')
    assert "duplicate GSM" in _error(tmp_path, dup_header)

    short_sample_line = SERIES.replace('!Sample_organism_ch1\t"Homo sapiens"\t"Homo sapiens"\t"Homo sapiens"',
                                       '!Sample_organism_ch1\t"Homo sapiens"\t"Homo sapiens"')
    msg = _error(tmp_path, short_sample_line)
    assert f"line {_line_of(SERIES, 'Sample_organism_ch1')}" in msg and "expected 3" in msg

    other_gsm = SERIES.replace('"ID_REF"\t"GSM1001"', '"ID_REF"\t"GSM9999"')
    assert "GSM9999" in _error(tmp_path, other_gsm)


def test_series_matrix_truncated_gzip(tmp_path):
    p = _write(tmp_path, "trunc_series_matrix.txt.gz", SERIES, gz=True)
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(SeriesMatrixError, match="trunc_series_matrix.txt.gz"):
        geo.parse_series_matrix(p)


# --- platforms ---------------------------------------------------------------------------

ANNOT = "\n".join(
    [
        "^Annotation",
        "!Annotation_date = Jun 11 2013",
        "!Annotation_platform = GPL570",
        "!Annotation_platform_title = [HG-U133_Plus_2] Affymetrix Human Genome U133 Plus 2.0 Array",
        "!Annotation_platform_organism = Homo sapiens",
        "#ID = Platform reference identifier",
        "#Gene title = Entrez Gene name",
        "#Gene symbol = Entrez Gene symbol",
        "#Gene ID = Entrez Gene identifier",
        "#GenBank Accession = representative GenBank accession",
        "!platform_table_begin",
        "ID\tGene title\tGene symbol\tGene ID\tGenBank Accession",
        "1007_s_at\tdiscoidin domain receptor tyrosine kinase 1 /// microRNA 4640\tDDR1 /// MIR4640\t780 /// 100616237\tU48705",
        "1053_at\treplication factor C (activator 1) 2, 40kDa\tRFC2\t5982\tM87338",
        "117_at\theat shock 70kDa protein 6 (HSP70B')\tHSPA6\t3310\tX51757",
        '121_at\tpaired box 8 "isoform"\tPAX8\t7849\tX69699',
        "AFFX-BioB-3_at\t\t\t\tJ04423",
        "!platform_table_end",
        "",
    ]
)


def test_platform_annot(tmp_path):
    p = geo.parse_platform(_write(tmp_path, "GPL570.annot.gz", ANNOT, gz=True))
    assert list(p.columns) == ["ID", "symbol"]
    assert p.to_dict("list") == {
        "ID": ["1007_s_at", "1053_at", "117_at", "121_at", "AFFX-BioB-3_at"],
        "symbol": ["DDR1 /// MIR4640", "RFC2", "HSPA6", "PAX8", ""],
    }


SOFT = "\n".join(
    [
        "^DATABASE = GeoMiame",
        "!Database_name = Gene Expression Omnibus (GEO)",
        "^PLATFORM = GPL6480",
        "!Platform_title = Agilent-014850 Whole Human Genome Microarray 4x44K G4112F (Probe Name version)",
        "!Platform_geo_accession = GPL6480",
        "#ID = Agilent feature extraction feature number",
        "#SPOT_ID = ",
        "#GENE_SYMBOL = ",
        "!platform_table_begin",
        "ID\tSPOT_ID\tGENE_SYMBOL\tGENE_NAME",
        "A_23_P100001\tA_23_P100001\tFAM174B\tfamily with sequence similarity 174, member B",
        "A_23_P100011\tA_23_P100011\tAP3S2\tadaptor-related protein complex 3, sigma 2 subunit",
        "A_23_P100022\tA_23_P100022\t\t",
        "(+)E1A_r60_1\t(+)E1A_r60_1\t\t",
        "!platform_table_end",
        "^SAMPLE = GSM100",
        "!Sample_title = x",
        "!sample_table_begin",
        "ID_REF\tVALUE\tthis section is ragged and must never be read\textra",
        "A_23_P100001\t5.5",
        "!sample_table_end",
        "",
    ]
)


def test_platform_family_soft_stops_at_table_end(tmp_path):
    p = geo.parse_platform(_write(tmp_path, "GPL6480_family.soft.gz", SOFT, gz=True))
    assert p["ID"].tolist() == ["A_23_P100001", "A_23_P100011", "A_23_P100022", "(+)E1A_r60_1"]
    assert p["symbol"].tolist() == ["FAM174B", "AP3S2", "", ""]


def test_platform_plain_tsv_numeric_ids_and_symbol_column(tmp_path):
    text = "# Illumina probe annotation\n# exported 2020\nID\tSymbol\tEntrez\n10001\tTP53\t7157\n10002\t\t\n"
    p = geo.parse_platform(_write(tmp_path, "ann.tsv", text))
    assert p["ID"].tolist() == ["10001", "10002"] and p["ID"].map(type).eq(str).all()
    assert p["symbol"].tolist() == ["TP53", ""]
    p2 = geo.parse_platform(_write(tmp_path, "ann2.tsv", text), symbol_column="Entrez")
    assert p2["symbol"].tolist() == ["7157", ""]


def test_platform_errors(tmp_path):
    no_sym = ANNOT.replace("\tGene symbol\t", "\tGene sym\t")
    with pytest.raises(PlatformError) as info:
        geo.parse_platform(_write(tmp_path, "nosym.annot", no_sym))
    msg = str(info.value)
    assert "nosym.annot" in msg and "'Gene sym'" in msg and "'GenBank Accession'" in msg

    with pytest.raises(PlatformError, match=r"symbol column 'Gene_Symbol' not found.*'Gene symbol'"):
        geo.parse_platform(_write(tmp_path, "a.annot", ANNOT), symbol_column="Gene_Symbol")

    with pytest.raises(PlatformError, match=r"trunc\.soft, line 9: !platform_table_begin without"):
        geo.parse_platform(_write(tmp_path, "trunc.soft", SOFT.split("!platform_table_end")[0]))

    with pytest.raises(PlatformError, match="duplicate probe ID.*1053_at"):
        geo.parse_platform(_write(tmp_path, "dup.annot", ANNOT.replace("117_at\t", "1053_at\t")))


# --- count tables ------------------------------------------------------------------------


def test_count_table_tsv_gz(tmp_path):
    text = "gene\tP01_pre\tP01_post\nTP53\t10\t0\nBRCA1\t7\t1234567\n"
    c = counts.read_count_table(_write(tmp_path, "counts.tsv.gz", text, gz=True))
    assert c.index.name == "gene"
    assert c.index.tolist() == ["TP53", "BRCA1"] and c.columns.tolist() == ["P01_pre", "P01_post"]
    assert (c.dtypes == "int64").all()
    assert c.to_numpy().tolist() == [[10, 0], [7, 1234567]]


def test_count_table_csv_whole_floats_gene_column(tmp_path):
    text = '"symbol","gene_id","S1","S2"\r\n"TP53","ENSG00000141510",12.0,3\r\n"MYC","ENSG00000136997",0.0,5.0\r\n'
    p = _write(tmp_path, "counts.csv", text)
    # gene_id holds no number at all: annotation beside the gene ids, not a sample
    t = counts.read_counts(p)
    assert t.counts.columns.tolist() == ["S1", "S2"] and t.counts.index.tolist() == ["TP53", "MYC"]
    assert t.annotation["gene_id"].tolist() == ["ENSG00000141510", "ENSG00000136997"]
    assert t.layout["annotation_columns"] == ["gene_id"] and t.layout["separator"] == "comma"
    c = counts.read_count_table(_write(tmp_path, "c2.csv", text.replace('"symbol",', "").replace('"TP53",', "").replace('"MYC",', "")))
    assert c.index.tolist() == ["ENSG00000141510", "ENSG00000136997"]
    assert c.to_numpy().tolist() == [[12, 3], [0, 5]] and (c.dtypes == "int64").all()
    # leading comment line (featureCounts style); gene column chosen by name, not first
    c3 = counts.read_count_table(_write(tmp_path, "fc2.tsv", "# c\nA\tGeneid\n4\tg1\n5\tg2\n"), gene_column="Geneid")
    assert c3.to_dict() == {"A": {"g1": 4, "g2": 5}}


def test_count_table_errors(tmp_path):
    def err(text, name="bad_counts.tsv", **kw):
        with pytest.raises(CountTableError) as info:
            counts.read_count_table(_write(tmp_path, name, text), **kw)
        assert name in str(info.value)
        return str(info.value)

    msg = err("gene\tA\tB\ng1\t1\t2\ng2\t3.5\t4\n")
    assert "line 3, column A" in msg and "counts must be integers" in msg and "'local'" in msg
    assert "line 2, column B" in err("gene\tA\tB\ng1\t1\t-2\n")
    assert "line 3, column B" in err("gene\tA\tB\ng1\t1\t2\ng2\t3\tNA\n")
    assert "duplicate gene id 'g1'" in err("gene\tA\tB\ng1\t1\t2\ng1\t3\t4\n") and "line 3" in err(
        "gene\tA\tB\ng1\t1\t2\ng1\t3\t4\n"
    )
    assert "['gene', 'A', 'B']" in err("gene\tA\tB\ng1\t1\t2\n", gene_column="Geneid")
    assert "duplicate column" in err("gene\tA\tA\ng1\t1\t2\n")


# --- the embedded demo (generated by tools/prepost_demo.py) ----------------------------------------


@pytest.mark.skipif(not (DEMO / "series").exists(), reason="demo not generated")
def test_demo_files_parse():
    sm_path = DEMO / "series/GSE990nnn/GSE990001/matrix/GSE990001_series_matrix.txt.gz"
    sm = geo.parse_series_matrix(sm_path)
    assert sm.accession == "GSE990001"
    # independent count of the GSM columns and data rows from the raw text
    raw = gzip.open(sm_path, "rt").read().split("\n")
    header = next(line for line in raw if line.startswith('"ID_REF"'))
    nrows = raw.index("!series_matrix_table_end") - raw.index("!series_matrix_table_begin") - 2
    assert sm.table.shape == (nrows, header.count("\t"))
    assert len(sm.samples) == 25 and sm.samples.index.is_unique
    assert set(sm.samples["timepoint"]) == {"pre-treatment", "post-treatment"}
    assert sm.samples["patient id"].str.fullmatch(r"P\d\d").all()
    assert (sm.samples["title"] == sm.samples["patient id"] + "_" + sm.samples["timepoint"].str[:-10]).all()

    ann = geo.parse_platform(DEMO / "platforms/GPL990nnn/GPL990001/annot/GPL990001.annot.gz", "Gene symbol")
    assert set(sm.table.index) <= set(ann["ID"])

    rs = geo.parse_series_matrix(DEMO / "series/GSE990nnn/GSE990002/matrix/GSE990002_series_matrix.txt.gz")
    assert len(rs.table) == 0 and len(rs.samples) == 21
    table = counts.read_count_table(DEMO / "series/GSE990nnn/GSE990002/suppl/GSE990002_raw_counts.tsv.gz", "gene")
    assert set(table.columns) == set(rs.samples["title"])
    assert (table.dtypes == "int64").all() and (table.to_numpy() >= 0).all()


def test_htseq_summary_rows_are_not_genes(tmp_path):
    p = tmp_path / "counts.tsv"
    p.write_text("gene\tS1\tS2\nBRCA2\t10\t12\nATM\t3\t0\n__no_feature\t500\t400\n__ambiguous\t7\t9\n")
    df = counts.read_count_table(p)
    assert list(df.index) == ["BRCA2", "ATM"]
    assert df.loc["ATM", "S2"] == 0


def test_count_table_fast_and_text_paths_agree(tmp_path):
    """Plain numbers take the vectorised path; quoted, padded cells the per-cell text path. Both
    give the same int64 table."""
    plain = tmp_path / "plain.tsv"
    plain.write_text("gene\tS1\tS2\nA\t1\t20\nB\t0\t3\n007\t5\t6.0\n")
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('"gene"\t"S1"\t"S2"\n"A"\t" 1"\t20\n"B"\t0\t"3 "\n"007"\t5\t6\n')
    a, b = counts.read_count_table(plain), counts.read_count_table(quoted)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == ["A", "B", "007"] and (a.dtypes == "int64").all()
    assert a.loc["007", "S2"] == 6
