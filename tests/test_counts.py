"""Count tables in the layouts GEO supplements use (prepost.io.counts)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from prepost.io import counts
from prepost.io.geo import CountTableError

from conftest import SHARED_DATA

GSE91061 = SHARED_DATA / "geo/GSE91061/GSE91061_BMS038109Sample.hg19KnownGene.raw.csv.gz"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return p


@pytest.mark.parametrize(
    "name,text",
    [
        ("space.txt", "S1 S2 S3\nG1 1 2 3\nG2 4 5 6\n"),  # R write.table default
        ("quoted.txt", '"S1" "S2" "S3"\n"G1" 1 2 3\n"G2" 4 5 6\n'),
        ("tab.tsv.gz", "S1\tS2\tS3\nG1\t1\t2\t3\nG2\t4\t5\t6\n"),
        ("comma.csv", "S1,S2,S3\nG1,1,2,3\nG2,4,5,6\n"),  # write.csv(row.names=TRUE, col.names=NA) omitted
        ("empty_cell.csv", '"","S1","S2","S3"\n"G1",1,2,3\n"G2",4,5,6\n'),  # write.csv default
    ],
)
def test_header_one_field_short_is_never_shifted(tmp_path, name, text):
    """Each sample keeps its own counts: S1 = (1, 4), S3 = (3, 6). Today's main read the short
    header as gene column "S1", giving S2 the counts of S1 and dropping S3."""
    t = counts.read_counts(_write(tmp_path, name, text))
    assert t.counts.columns.tolist() == ["S1", "S2", "S3"]
    assert t.counts.index.tolist() == ["G1", "G2"]
    assert t.counts["S1"].tolist() == [1, 4] and t.counts["S3"].tolist() == [3, 6]
    assert t.layout["header_one_short"] == ("empty_cell" not in name)


def test_widths_that_do_not_fit_are_an_error(tmp_path):
    with pytest.raises(CountTableError, match=r"header \(line 1\) has 2 fields but the first data row has 4"):
        counts.read_counts(_write(tmp_path, "w.tsv", "S1\tS2\nG1\t1\t2\t3\n"))
    with pytest.raises(CountTableError, match=r"w2\.tsv, line 3: more fields than the 3 columns"):
        counts.read_counts(_write(tmp_path, "w2.tsv", "gene\tS1\tS2\nG1\t1\t2\nG2\t1\t2\t3\n"))
    with pytest.raises(CountTableError, match=r"w3\.tsv, line 3, column S2: value '' is not a count"):
        counts.read_counts(_write(tmp_path, "w3.tsv", "gene\tS1\tS2\nG1\t1\t2\nG2\t1\n"))


def test_featurecounts_layout(tmp_path):
    text = (
        "# Program:featureCounts v2.0.1; Command:...\n"
        "Geneid\tChr\tStart\tEnd\tStrand\tLength\tS1.bam\tS2.bam\n"
        "ENSG1\tchr1;chr1\t100;300\t200;400\t+;+\t202\t5\t0\n"
        "ENSG2\tchr2\t10\t20\t-\t11\t7\t9\n"
    )
    t = counts.read_counts(_write(tmp_path, "fc.txt", text))
    assert t.counts.columns.tolist() == ["S1.bam", "S2.bam"]
    assert t.counts.loc["ENSG2"].tolist() == [7, 9]
    assert t.layout["annotation_columns"] == ["Chr", "Start", "End", "Strand", "Length"]
    assert t.annotation.loc["ENSG1", "Length"] == "202"


def test_gene_id_and_gene_name_columns(tmp_path):
    text = "gene_id,gene_name,A,B\nENSG00000141510.17,TP53,3,4\nENSG00000012048.23,BRCA1,5,6\n"
    t = counts.read_counts(_write(tmp_path, "g.csv", text))
    assert t.counts.columns.tolist() == ["A", "B"] and t.annotation["gene_name"].tolist() == ["TP53", "BRCA1"]
    # declared: exactly these, and a declared column that is missing names the header
    t2 = counts.read_counts(_write(tmp_path, "g.csv", text), annotation_columns=["gene_name"])
    assert t2.layout["annotation_columns_from"] == "config"
    with pytest.raises(CountTableError, match=r"annotation_columns \['symbol'\] not in the header"):
        counts.read_counts(_write(tmp_path, "g.csv", text), annotation_columns=["symbol"])


def test_text_in_a_sample_column_is_named_with_the_fix(tmp_path):
    text = "gene\tinfo\tA\nG1\tx\t1\nG2\t7\t2\n"  # "info" is mostly text, one number: ambiguous
    with pytest.raises(CountTableError, match=r"line 2, column info: value 'x' is not a count.*counts\.annotation_columns"):
        counts.read_counts(_write(tmp_path, "t.tsv", text))
    t = counts.read_counts(_write(tmp_path, "t.tsv", text), annotation_columns=["info"])
    assert t.counts.columns.tolist() == ["A"]


def test_expected_counts_need_round(tmp_path):
    text = "gene_id\ttranscript_id(s)\tS1\tS2\nG1\tT1,T2\t10.50\t3.00\nG2\tT3\t11.5\t0.49\n"
    with pytest.raises(CountTableError, match=r"line 2, column S1: value '10.50' is not a whole number.*counts\.round: true"):
        counts.read_counts(_write(tmp_path, "rsem.genes.results.tsv", text))
    t = counts.read_counts(_write(tmp_path, "rsem.tsv", text), round_values=True)
    assert t.counts.to_numpy().tolist() == [[10, 3], [12, 0]]  # half to even, as R's round
    assert t.layout["rounded_cells"] == 3


def test_duplicate_gene_ids_error_sum_first(tmp_path):
    text = "gene\tA\tB\nG1\t1\t2\nG2\t3\t4\nG1\t10\t20\n"
    p = _write(tmp_path, "d.tsv", text)
    with pytest.raises(CountTableError, match=r"d\.tsv, line 4: duplicate gene id 'G1' \(first on line 2\).*counts\.duplicates"):
        counts.read_counts(p)
    s = counts.read_counts(p, duplicates="sum")
    assert s.counts.loc["G1"].tolist() == [11, 22] and s.counts.index.tolist() == ["G1", "G2"]
    assert s.layout["duplicate_ids"] == {"policy": "sum", "ids": 1, "rows": 2, "examples": ["G1"]}
    f = counts.read_counts(p, duplicates="first")
    assert f.counts.loc["G1"].tolist() == [1, 2]


@pytest.mark.skipif(not GSE91061.is_file(), reason="../shared/data absent")
def test_real_gse91061_supplement():
    """The real file: CSV, quoted header with an empty first cell, Entrez ids, 109 samples.
    Expected values counted from the raw text independently of pandas."""
    t = counts.read_counts(GSE91061)
    with gzip.open(GSE91061, "rt") as fh:
        header = fh.readline().rstrip("\n").split(",")
        rows = [line.rstrip("\n").split(",") for line in fh]
    assert header[0] == '""' and len(header) == 110 and all(len(r) == 110 for r in rows)
    assert t.counts.shape == (len(rows), 109) == (22187, 109)
    assert t.counts.columns.tolist() == [h.strip('"') for h in header[1:]]
    assert t.counts.index.tolist() == [r[0].strip('"') for r in rows]
    rng = np.random.default_rng(1)
    for i in rng.integers(0, len(rows), 50):
        assert t.counts.iloc[i].tolist() == [int(v) for v in rows[i][1:]]
    assert not t.layout["header_one_short"] and t.layout["separator"] == "comma"
