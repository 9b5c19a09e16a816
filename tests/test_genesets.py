"""GMT parsing, identifier harmonisation and overlap checks; the curated collection against the
demo's planted truth; real public GMT files (skipped when ../shared/data is absent)."""

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from prepost.enrich import genesets as gs

ROOT = Path(__file__).resolve().parents[1]
CURATED = ROOT / "config" / "genesets" / "prepost_curated.gmt"
TRUTH = ROOT / "resources" / "demo" / "truth.tsv"
SHARED = ROOT.parent / "shared" / "data" / "genesets"

# demo generator's set name -> curated set that must contain exactly the same genes
DEMO_TO_CURATED = {
    "dna_repair": "PREPOST_DNA_REPAIR_HR",
    "interferon_irds": "PREPOST_INTERFERON_STIMULATED",
    "xenobiotic_metabolism": "PREPOST_XENOBIOTIC_METABOLISM",
    "radiation_ddr": "PREPOST_RADIATION_DDR",
    "proliferation": "PREPOST_PROLIFERATION",
    "housekeeping": "PREPOST_REFERENCE_GENES",
}


def _write(tmp_path, text, name="x.gmt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_gmt_long_table_and_roundtrip(tmp_path):
    p = _write(tmp_path, "A\tdesc a\tg1\tg2\tg2\t\nB\t\tG3\n\n")
    df = gs.read_gmt(p)
    assert list(df.columns) == ["set", "description", "gene"]
    assert df.values.tolist() == [["A", "desc a", "g1"], ["A", "desc a", "g2"], ["B", "", "G3"]]
    out = tmp_path / "out" / "y.gmt"
    gs.write_gmt(df, out)
    assert out.read_text() == "A\tdesc a\tg1\tg2\nB\t\tG3\n"
    pd.testing.assert_frame_equal(gs.read_gmt(out), df)
    assert gs.to_dict(df) == {"A": ["g1", "g2"], "B": ["G3"]}


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", r"x\.gmt: no gene sets \(empty GMT file\)"),
        ("\n  \n", r"empty GMT file"),
        (
            "A\tdesc\tg1\nB only\n",
            r"x\.gmt, line 2: expected 'name<TAB>description<TAB>genes\.\.\.', found 1",
        ),
        ("A\tdesc\tg1\nB\tdesc\t\t \n", r"x\.gmt, line 2: gene set 'B' has no genes"),
        ("A\td\tg1\n\nB\td\tg2\nA\td\tg3\n", r"x\.gmt, line 4: gene set 'A' already defined on line 1"),
        ("\tdesc\tg1\n", r"line 1: empty gene-set name"),
    ],
)
def test_read_gmt_errors_name_file_and_line(tmp_path, text, pattern):
    with pytest.raises(gs.GeneSetError, match=pattern):
        gs.read_gmt(_write(tmp_path, text))


def test_read_gmt_missing_file(tmp_path):
    with pytest.raises(gs.GeneSetError, match="not found"):
        gs.read_gmt(tmp_path / "nope.gmt")


def test_write_gmt_rejects_tabs(tmp_path):
    df = gs.from_dict({"A": ["g1"]}, description="has\ttab")
    with pytest.raises(gs.GeneSetError, match="tabs"):
        gs.write_gmt(df, tmp_path / "z.gmt")


def test_harmonise_case_and_report():
    sets = gs.from_dict({"S1": ["brca1", "BRCA2", "NOPE1", "brca1"], "S2": ["ATM", "TP53"]})
    mapped, rep = gs.harmonise(sets, ["BRCA1", "BRCA2", "ATM", "TP53", "X"], collection="c")
    assert mapped[["set", "gene"]].values.tolist() == [
        ["S1", "BRCA1"],
        ["S1", "BRCA2"],
        ["S2", "ATM"],
        ["S2", "TP53"],
    ]
    assert mapped.loc[0, "gene_set_id"] == "brca1"
    r = rep.set_index("set")
    # S1: duplicate brca1 counted once -> 3 ids, 2 found
    assert r.loc["S1", "n_genes"] == 3 and r.loc["S1", "n_found"] == 2
    assert r.loc["S1", "missing"] == "NOPE1"
    assert r.loc["S2", "fraction"] == 1.0 and r.loc["S2", "missing"] == ""


def test_harmonise_with_alias_table_both_directions(tmp_path):
    # HGNC-style table: ISG15 was G1P2; AURKA was STK15 (alias); AMBIG points to two symbols.
    hgnc = _write(
        tmp_path,
        "Approved symbol\tPrevious symbols\tAlias symbols\n"
        "ISG15\tG1P2\tUCRP\nAURKA\t\tSTK15, AIK\nGENE1\tAMBIG\t\nGENE2\tAMBIG\t\n",
        "hgnc.tsv",
    )
    aliases = gs.read_alias_table(hgnc)
    assert set(aliases["alias"]) == {"G1P2", "UCRP", "STK15", "AIK"}  # AMBIG dropped
    # the set uses an old symbol (G1P2), the data uses an old one (STK15) for a set's current one
    sets = gs.from_dict({"S": ["G1P2", "AURKA", "AMBIG", "MX1"]})
    data = ["ISG15", "STK15", "GENE1", "MX1"]
    mapped, rep = gs.harmonise(sets, data, aliases=aliases)
    assert dict(zip(mapped["gene_set_id"], mapped["gene"])) == {
        "G1P2": "ISG15",
        "AURKA": "STK15",
        "MX1": "MX1",
    }
    assert rep.loc[0, "n_found"] == 3 and rep.loc[0, "missing"] == "AMBIG"
    with pytest.warns(gs.LowOverlapWarning):  # without aliases only MX1 matches: 25%
        _, rep0 = gs.harmonise(sets, data)
    assert rep0.loc[0, "n_found"] == 1


def test_alias_table_two_column_form(tmp_path):
    p = _write(tmp_path, "alias\tsymbol\ng1p2\tisg15\nX\tX\n", "a.tsv")
    assert gs.read_alias_table(p).values.tolist() == [["G1P2", "ISG15"]]
    bad = _write(tmp_path, "from\tto\na\tb\n", "b.tsv")
    with pytest.raises(gs.GeneSetError, match=r"b\.tsv: alias table needs columns"):
        gs.read_alias_table(bad)


def test_low_overlap_warns_and_collection_failure_raises():
    data = [f"G{i}" for i in range(100)]
    sets = gs.from_dict(
        {"good": ["G1", "G2", "G3", "G4"], "half": ["G5", "G6", "Z1", "Z2"], "bad": ["Z3", "Z4"]}
    )
    with pytest.warns(gs.LowOverlapWarning, match=r"c1: 2 of 3 sets have < 60% .*half \(50%\), bad \(0%\)"):
        gs.harmonise(sets, data, collection="c1", warn_fraction=0.6)
    # Ensembl ids in the data, symbols in the sets: the commonest silent failure
    ens = [f"ENSG{i:011d}" for i in range(50)]
    with pytest.raises(
        gs.OverlapError, match=r"mysets: only 0\.0% .*Unmatched ids e\.g\. \['G1'.*ENSG00000000000"
    ):
        gs.harmonise(sets, ens, collection="mysets")


def test_membership_matrix():
    sets = gs.from_dict({"A": ["b", "a"], "B": ["c", "zz"]})
    names, mat = gs.membership(sets, pd.Index(["a", "b", "c"]))
    assert list(names) == ["A", "B"]
    assert mat.tolist() == [[True, True, False], [False, False, True]]


def test_curated_collection_cites_sources_and_matches_demo_truth():
    cur = gs.read_gmt(CURATED)
    desc = cur.drop_duplicates("set").set_index("set")["description"]
    for name, d in desc.items():
        assert re.search(r"doi:10\.\d{4,}/\S+", d), f"{name}: description lacks a DOI"
    truth = pd.read_csv(TRUTH, sep="\t")
    cur_sets = gs.to_dict(cur)
    for demo_name, cur_name in DEMO_TO_CURATED.items():
        planted = set(truth.loc[truth.gene_set == demo_name, "gene"])
        assert planted == set(cur_sets[cur_name]), demo_name
    # the small literature subsets are inside their parent sets
    assert set(cur_sets["PREPOST_KNEUBIL2022_DNA_REPAIR"]) < set(cur_sets["PREPOST_DNA_REPAIR_HR"])
    assert set(cur_sets["PREPOST_IRDS_7"]) < set(cur_sets["PREPOST_INTERFERON_STIMULATED"])
    for g in ["BRCA1", "BRCA2", "ATM", "PALB2", "FANCA", "PARP1", "ERCC1", "RAD51"]:
        assert g in cur_sets["PREPOST_DNA_REPAIR_HR"]
    for g in ["CYP3A4", "CYP2A6", "ABCB5", "CYP1A1", "CYP4Z1"]:
        assert g in cur_sets["PREPOST_XENOBIOTIC_METABOLISM"]
    for g in ["GADD45A", "XPC", "PPM1D", "FAS", "CDKN1A", "MDM2"]:
        assert g in cur_sets["PREPOST_RADIATION_DDR"]


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/genesets absent")


@needs_shared
def test_real_collections_parse_with_documented_sizes():
    # sizes from ../shared/data/README.md
    h = gs.read_gmt(SHARED / "h.all.v7.0.symbols.gmt")
    assert h["set"].nunique() == 50 and h["gene"].nunique() == 4384
    r = gs.read_gmt(SHARED / "ReactomePathways.gmt")
    assert r["set"].nunique() == 2504 and r["gene"].nunique() == 11387


@needs_shared
def test_hallmark_against_demo_genes_fails_loudly():
    """The demo has ~170 real symbols among 2000 genes: Hallmark barely overlaps -> error."""
    h = gs.read_gmt(SHARED / "h.all.v7.0.symbols.gmt")
    truth = pd.read_csv(TRUTH, sep="\t")
    demo_genes = truth["gene"].unique().tolist() + [f"DEMO{i:04d}" for i in range(1800)]
    with pytest.raises(gs.OverlapError, match=r"hallmark: only \d+\.\d% .*median over 50 sets"):
        gs.harmonise(h, demo_genes, collection="hallmark")
    # on a gene list that covers it (lower-case, as some count tables write symbols) it passes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped, rep = gs.harmonise(h, h["gene"].str.lower().unique(), collection="hallmark")
    assert (rep["fraction"] == 1).all() and len(mapped) == len(h)
