"""Deterministic generator of the embedded demo: two synthetic GEO series with planted truth.

Why: the workflow must run end to end offline and its tests need data whose true effects are
known. The demo is therefore written in GEO's own file formats (series matrix, platform .annot,
supplementary count table) and laid out like GEO's FTP tree under ``<outdir>/geo``, so the
default run exercises exactly the download -> parse -> collapse -> DE -> claims path used on
real series. Every random draw comes from fixed seeds and every gzip member is written with
mtime=0 and no file name, so a rerun is byte-identical to the committed files.

    python tools/prepost_demo.py [outdir]      # default resources/demo (make demo-data)

All values are SYNTHETIC: no patient, no real measurement. Gene symbols of the curated sets are
real HGNC symbols so the configured claims and gene sets resolve; every other gene is DEMOnnnn.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from prepost.files import atomic_path
from prepost_demo_readme import readme_text

SEED = 20261123
DATE = "Nov 23 2026"
GEO_FTP = "ftp://ftp.ncbi.nlm.nih.gov/geo"

ARRAY_GSE, ARRAY_GPL = "GSE990001", "GPL990001"
RNASEQ_GSE, RNASEQ_GPL = "GSE990002", "GPL990002"  # GPL990002 is named only; no file is written
COUNTS_FILE = f"{RNASEQ_GSE}_raw_counts.tsv.gz"
# A third cohort (RNA-seq) with an on-treatment biopsy and unpaired patients: ordered
# timepoints (pre, on, post) and pairing.unpaired: block (config/examples/demo_timepoints.yaml).
TP_GSE = "GSE990003"
TP_COUNTS_FILE = f"{TP_GSE}_raw_counts.tsv.gz"

# Curated gene sets (real HGNC symbols). Set names are the values of truth.tsv's gene_set.
GENE_SETS: dict[str, list[str]] = {
    "dna_repair": (
        "BRCA1 BRCA2 ATM PALB2 ERCC1 FANCA PARP1 RAD51 ATR CHEK1 CHEK2 XRCC1 MLH1 MSH2 MSH6 "
        "PMS2 XRCC5 XRCC6 LIG4 NBN MRE11 RAD50 BARD1 BRIP1 FANCD2 ERCC2 XPA TP53BP1 PRKDC "
        "TP53"
    ).split(),
    "interferon_irds": (
        "IFIT1 IFIT3 IFI44 IFI27 MX1 OAS1 OAS3 ISG15 STAT1 IFI6 RSAD2 BST2 USP18 IRF7 IFI44L "
        "IFIT2 OAS2 MX2 HERC5 IFI35"
    ).split(),
    "xenobiotic_metabolism": (
        "CYP3A4 CYP2A6 ABCB5 CYP1A1 CYP4Z1 CYP1B1 GSTA1 UGT1A1 ABCB1 NQO1 CYP2E1 CYP2C9 ABCC1 "
        "ALDH3A1 EPHX1 GSTM1"
    ).split(),
    "radiation_ddr": (
        "GADD45A XPC PPM1D FAS CDKN1A MDM2 DDB2 SESN1 TP53I3 BAX BBC3 TNFRSF10B RRM2B ZMAT3 "
        "AEN TRIAP1"
    ).split(),
    "proliferation": (
        "MKI67 TOP2A CCNB1 BUB1 AURKA CDK1 PLK1 CCNA2 MCM2 TYMS CDC20 BIRC5 FOXM1 MYBL2 CENPF "
        "UBE2C PTTG1 RRM2 CCNB2 TPX2 NUSAP1 ZWINT MELK CEP55 KIF2C MCM10 CDC6 E2F1 PCNA "
        "KIF20A"
    ).split(),
    "housekeeping": (
        "ACTB GAPDH B2M RPLP0 PPIA TBP HPRT1 GUSB TFRC PGK1 YWHAZ SDHA HMBS UBC POLR2A ALAS1 "
        "RPL13A EEF1A1 TUBB PUM1"
    ).split(),
    "breast_markers": "ESR1 PGR ERBB2 KRT5 KRT18 KRT8 FOXA1 GATA3 EGFR AR".split(),
}

# Planted effects, log2 units. Components (see README):
#   post_all  added to every post-treatment sample
#   post_RD   added to post-treatment samples of non-responders (RD) only
#   group_RD  added to every sample of a non-responder (both timepoints)
#   pre_pCR   added to pre-treatment samples of responders (pCR) only
COMPONENTS = ["post_all", "post_RD", "group_RD", "pre_pCR"]
PLANTED: dict[str, dict[str, float]] = {
    **{g: {"post_all": -1.0} for g in ["BRCA2", "ATM", "FANCA", "PARP1", "BRCA1"]},
    "RAD51": {"post_all": -0.8},
    **{g: {"post_all": 1.0} for g in ["GADD45A", "XPC", "PPM1D", "FAS", "CDKN1A", "MDM2"]},
    **{g: {"post_all": -0.8} for g in GENE_SETS["proliferation"]},
    **{g: {"post_RD": 1.0} for g in GENE_SETS["interferon_irds"]},
    **{g: {"group_RD": 1.0} for g in GENE_SETS["xenobiotic_metabolism"]},
    **{g: {"pre_pCR": -1.0} for g in ["PALB2", "ERCC1"]},
}
# On-treatment (after cycle 2) effects of GSE990003, log2 units, added to its on samples only:
# proliferation falls further than at surgery (-1.5 vs post_all -0.8), interferon genes rise
# transiently. on_vs_pre, post_vs_on and post_vs_pre recover them (tests/test_demo_timepoints.py).
ON_PLANTED: dict[str, float] = {
    **{g: -1.5 for g in GENE_SETS["proliferation"]},
    **{g: 1.0 for g in GENE_SETS["interferon_irds"]},
}
TP_EFFECTS = ["on_vs_pre", "post_vs_on", "post_vs_pre"]
N_RANDOM_PLANTED = 40  # filler genes, half +1 half -1 post_all
CONTRASTS = ["post_vs_pre", "post_vs_pre_RD", "post_vs_pre_pCR", "RD_vs_pCR_pre", "RD_vs_pCR_post"]

N_GENES = 2000
N_FILLER_ARRAY = N_GENES - sum(len(v) for v in GENE_SETS.values())
N_RNASEQ_SWAP = 60  # fillers dropped from / added to the RNA-seq cohort ("same genes, mostly")
PATIENT_SD, ARRAY_NOISE_SD = 0.5, 0.3
N_TWO_PROBES, N_THREE_PROBES, N_MULTI, N_UNANNOTATED, N_NULL = 200, 35, 30, 6, 8
FORCE_MULTIPROBE = ["BRCA2", "ATM", "PARP1", "MKI67", "IFIT1", "CYP3A4", "GADD45A", "PALB2"]
AFFX = [
    f"AFFX-{stem}-{end}_at"
    for stem, ends in [
        ("BioB", "5M3"),
        ("BioC", "53"),
        ("BioDn", "53"),
        ("CreX", "53"),
        ("DapX", "5M3"),
        ("LysX", "5M3"),
        ("PheX", "5M3"),
        ("ThrX", "5M3"),
        ("TrpnX", "5M3"),
    ]
    for end in ends
]

# A "published" DE table derived from the array cohort (prepost's own paired DE), laid out like
# limma's topTable(confint=TRUE) and cut to significant genes, as papers' supplements often are.
PUBLISHED_FILE = "demo_published_de.tsv"
# The "assay's gene list" beside it (every gene the array measured), for published_de universe:.
UNIVERSE_FILE = "demo_published_universe.txt"
PUBLISHED_ALPHA = 0.05
# The array cohort's pairing rules (config/config.yaml's demo_array), for the derived table.
ARRAY_PAIRING = {
    "patient": {"field": "patient id"},
    "timepoint": {"field": "timepoint", "map": {"pre-treatment": "pre", "post-treatment": "post"}},
    "response": {"field": "response", "map": {"pCR": "responder", "RD": "non_responder"}},
}

TREATMENT = "anthracycline-taxane"
TISSUE = "breast tumour biopsy"


# --------------------------------------------------------------------------- layout & output


def _stub(acc: str) -> str:
    """GEO folder grouping (same rule as prepost.download.geo_stub): GSE990001 -> GSE990nnn."""
    return acc[:3] + acc[3:-3] + "nnn"


def demo_paths(outdir: str | os.PathLike) -> dict[str, Path]:
    """Every file the generator writes, by role; GEO files mirror GEO's FTP layout."""
    out = Path(outdir)
    geo = out / "geo"
    return {
        "array_matrix": geo
        / "series"
        / _stub(ARRAY_GSE)
        / ARRAY_GSE
        / "matrix"
        / f"{ARRAY_GSE}_series_matrix.txt.gz",
        "platform_annot": geo
        / "platforms"
        / _stub(ARRAY_GPL)
        / ARRAY_GPL
        / "annot"
        / f"{ARRAY_GPL}.annot.gz",
        "rnaseq_matrix": geo
        / "series"
        / _stub(RNASEQ_GSE)
        / RNASEQ_GSE
        / "matrix"
        / f"{RNASEQ_GSE}_series_matrix.txt.gz",
        "rnaseq_counts": geo / "series" / _stub(RNASEQ_GSE) / RNASEQ_GSE / "suppl" / COUNTS_FILE,
        "timepoints_matrix": geo
        / "series"
        / _stub(TP_GSE)
        / TP_GSE
        / "matrix"
        / f"{TP_GSE}_series_matrix.txt.gz",
        "timepoints_counts": geo / "series" / _stub(TP_GSE) / TP_GSE / "suppl" / TP_COUNTS_FILE,
        "timepoints_truth": out / "truth_timepoints.tsv",
        "truth": out / "truth.tsv",
        "published": out / "published" / PUBLISHED_FILE,
        "published_universe": out / "published" / UNIVERSE_FILE,
        "readme": out / "README.md",
    }


def _write_gz(text: str, dest: Path) -> None:
    """gzip with mtime=0 and an empty file name, so identical text gives identical bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    _write_bytes(buf.getvalue(), dest)


def _write_bytes(data: bytes, dest: Path) -> None:
    """Atomic write with ordinary permissions (mkstemp's 0600 would surprise a shared checkout)."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)


def _write_text(text: str, dest: Path) -> None:
    _write_bytes(text.encode("utf-8"), dest)


def _q(value) -> str:
    return f'"{value}"'


def _qline(key: str, values) -> str:
    """One series-matrix header line: key, then each cell double-quoted, tab-separated."""
    return "\t".join([key, *(_q(v) for v in values)])


# --------------------------------------------------------------------------- truth model


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent stream per part, so changing one part does not reshuffle the others."""
    return np.random.default_rng([seed, stream])


def gene_universe(seed: int = SEED) -> pd.DataFrame:
    """All genes with their set, cohort membership and planted effect components.

    Columns: gene, gene_set, in_array, in_rnaseq, post_all, post_RD, group_RD, pre_pCR.
    """
    rng = _rng(seed, 1)
    curated = pd.DataFrame(
        [(g, s) for s, genes in GENE_SETS.items() for g in genes], columns=["gene", "gene_set"]
    )
    if curated["gene"].duplicated().any():
        raise ValueError(
            f"demo gene sets repeat a gene: {curated['gene'][curated['gene'].duplicated()].tolist()}"
        )
    n_filler = N_FILLER_ARRAY + N_RNASEQ_SWAP
    filler = pd.DataFrame(
        {"gene": [f"DEMO{i:04d}" for i in range(1, n_filler + 1)], "gene_set": "filler"}
    )
    genes = pd.concat([curated, filler], ignore_index=True)
    is_filler = genes["gene_set"].eq("filler").to_numpy()
    in_array = ~is_filler | (np.arange(len(genes)) < len(curated) + N_FILLER_ARRAY)
    genes["in_array"] = in_array
    genes["in_rnaseq"] = in_array.copy()
    for c in COMPONENTS:
        genes[c] = 0.0
    planted = (
        pd.DataFrame.from_dict(PLANTED, orient="index").reindex(columns=COMPONENTS).fillna(0.0)
    )
    idx = genes.set_index("gene").index
    genes.loc[idx.get_indexer(planted.index), COMPONENTS] = planted.to_numpy()

    shared_filler = np.flatnonzero(is_filler & in_array)
    pick = rng.choice(shared_filler, size=N_RANDOM_PLANTED + N_RNASEQ_SWAP, replace=False)
    random_planted, dropped = pick[:N_RANDOM_PLANTED], pick[N_RANDOM_PLANTED:]
    signs = np.repeat([1.0, -1.0], N_RANDOM_PLANTED // 2)
    genes.loc[random_planted, "post_all"] = rng.permutation(signs)
    genes.loc[random_planted, "gene_set"] = "random_planted"
    genes.loc[dropped, "in_rnaseq"] = False
    genes.loc[is_filler & ~in_array, "in_rnaseq"] = True
    return genes


def _design(
    gse: str, n_patients: int, unpaired: str, first_gsm: int, seed: int, stream: int
) -> pd.DataFrame:
    """Samples of one cohort: half the paired patients pCR, the unpaired patient RD.

    GSM order: all pre samples by patient, then the post samples in a shuffled patient order,
    so code that pairs by column position instead of by patient id gets the wrong answer.
    """
    rng = _rng(seed, stream)
    patients = [f"P{i:02d}" for i in range(1, n_patients + 1)]
    n_pcr = n_patients // 2
    response = dict(zip(patients, rng.permutation(["pCR"] * n_pcr + ["RD"] * (n_patients - n_pcr))))
    extra = f"P{n_patients + 1:02d}"
    response[extra] = "RD"
    pre = patients + ([extra] if unpaired == "pre" else [])
    post = list(rng.permutation(patients)) + ([extra] if unpaired == "post" else [])
    df = pd.DataFrame(
        {"patient": pre + post, "timepoint": ["pre"] * len(pre) + ["post"] * len(post)}
    )
    df["response"] = df["patient"].map(response)
    df["title"] = df["patient"] + "_" + df["timepoint"]
    df.insert(0, "sample", [f"GSM{first_gsm + i}" for i in range(len(df))])
    df["gse"] = gse
    return df.set_index("sample")


def array_design(seed: int = SEED) -> pd.DataFrame:
    """GSE990001: 12 patients pre/post + P13 pre only (GSM9900001..GSM9900025)."""
    return _design(ARRAY_GSE, 12, "pre", 9900001, seed, 2)


def rnaseq_design(seed: int = SEED) -> pd.DataFrame:
    """GSE990002: 10 patients pre/post + P11 post only (GSM9900101..GSM9900121)."""
    return _design(RNASEQ_GSE, 10, "post", 9900101, seed, 3)


def effect_matrix(genes: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray:
    """Planted log2 effect of every gene in every sample (genes x samples)."""
    post = samples["timepoint"].eq("post").to_numpy(float)
    rd = samples["response"].eq("RD").to_numpy(float)
    return (
        np.outer(genes["post_all"], post)
        + np.outer(genes["post_RD"], post * rd)
        + np.outer(genes["group_RD"], rd)
        + np.outer(genes["pre_pCR"], (1 - post) * (1 - rd))
    )


def truth_table(genes: pd.DataFrame, designs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Expected value of each contrast for every curated or planted gene, per dataset.

    post_vs_pre is the mean paired difference over the complete pairs, so it weights the
    RD-only components by the design's actual fraction of RD pairs.
    """
    rows = []
    for dataset, samples in designs.items():
        member = genes["in_array"] if dataset == ARRAY_GSE else genes["in_rnaseq"]
        g = genes[member & genes["gene_set"].ne("filler")]
        counts = samples.groupby("patient")["timepoint"].nunique()
        paired = samples[samples["patient"].isin(counts.index[counts == 2])]
        frac_rd = paired.drop_duplicates("patient")["response"].eq("RD").mean()
        pa, pr, gr, pp = (g[c].to_numpy() for c in COMPONENTS)
        values = {
            "post_vs_pre_RD": pa + pr,
            "post_vs_pre_pCR": pa - pp,
            "RD_vs_pCR_pre": gr - pp,
            "RD_vs_pCR_post": gr + pr,
        }
        values["post_vs_pre"] = (
            frac_rd * values["post_vs_pre_RD"] + (1 - frac_rd) * values["post_vs_pre_pCR"]
        )
        for effect in CONTRASTS:
            rows.append(
                pd.DataFrame(
                    {
                        "dataset": dataset,
                        "gene": g["gene"].to_numpy(),
                        "effect": effect,
                        "log2_effect": np.round(values[effect], 6) + 0.0,
                        "gene_set": g["gene_set"].to_numpy(),
                    }
                )
            )
    truth = pd.concat(rows, ignore_index=True)
    return truth.sort_values(["dataset", "gene", "effect"], ignore_index=True)


# --------------------------------------------------------------------------- array cohort


def array_probes(genes: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Probe table of GPL990001 with each probe's expression recipe.

    Columns: ID, symbol, source (gene whose signal the probe carries, "" for none), kind
    (main | secondary | multi | control | unannotated), base (log2 mean), scale (fraction of the
    gene's planted effect the probe shows). Secondary probes are 1-3 log2 units dimmer and show
    30% of the effect, so only the documented highest-mean rule recovers the gene's truth.
    """
    rng = _rng(seed, 4)
    g = genes[genes["in_array"]].reset_index(drop=True)
    n = len(g)
    base = np.clip(rng.normal(7.0, 2.0, n), 2.5, 14.0)
    curated = g["gene_set"].ne("filler").to_numpy() & g["gene_set"].ne("random_planted").to_numpy()
    base[curated] = rng.uniform(6.5, 11.0, n)[curated]
    hk = g["gene_set"].eq("housekeeping").to_numpy()
    base[hk] = rng.uniform(11.0, 13.5, n)[hk]
    main = pd.DataFrame(
        {"symbol": g["gene"], "source": g["gene"], "kind": "main", "base": base, "scale": 1.0}
    )

    forced = np.flatnonzero(g["gene"].isin(FORCE_MULTIPROBE).to_numpy())
    others = np.setdiff1d(np.arange(n), forced)
    multi_idx = np.concatenate(
        [forced, rng.choice(others, N_TWO_PROBES + N_THREE_PROBES - len(forced), replace=False)]
    )
    sec_idx = np.concatenate([multi_idx, multi_idx[N_TWO_PROBES:]])
    secondary = pd.DataFrame(
        {
            "symbol": g["gene"].to_numpy()[sec_idx],
            "source": g["gene"].to_numpy()[sec_idx],
            "kind": "secondary",
            "base": np.maximum(base[sec_idx] - rng.uniform(1.0, 3.0, len(sec_idx)), 1.5),
            "scale": 0.3,
        }
    )

    fill = g.index[g["gene_set"].eq("filler")].to_numpy()
    pair = rng.choice(fill, size=(N_MULTI - 1, 2), replace=False)
    names = g["gene"].to_numpy()
    multi = pd.DataFrame(
        {
            "symbol": [f"{a} /// {b}" for a, b in zip(names[pair[:, 0]], names[pair[:, 1]])],
            "source": "",
            "kind": "multi",
            "base": np.clip(rng.normal(7.0, 2.0, N_MULTI - 1), 2.5, 14.0),
            "scale": 0.0,
        }
    )
    # Trap: a bright multi-gene probe naming BRCA2 that goes UP; it must be dropped, not kept.
    brca2 = int(np.flatnonzero(names == "BRCA2")[0])
    trap = pd.DataFrame(
        {
            "symbol": [f"BRCA2 /// {names[rng.choice(np.setdiff1d(fill, pair.ravel()))]}"],
            "source": "BRCA2_TRAP",
            "kind": "multi",
            "base": [base[brca2] + 1.5],
            "scale": 0.0,
        }
    )
    control = pd.DataFrame(
        {
            "symbol": "",
            "source": "",
            "kind": "control",
            "base": rng.uniform(8.0, 12.0, len(AFFX)),
            "scale": 0.0,
        }
    )
    unannotated = pd.DataFrame(
        {
            "symbol": "",
            "source": "",
            "kind": "unannotated",
            "base": np.clip(rng.normal(6.0, 1.5, N_UNANNOTATED), 2.5, 14.0),
            "scale": 0.0,
        }
    )
    numbered = pd.concat([main, secondary, multi, trap, unannotated], ignore_index=True)
    numbered = numbered.iloc[rng.permutation(len(numbered))].reset_index(drop=True)
    suffix = numbered["kind"].map(
        {"main": "_at", "secondary": "_a_at", "multi": "_s_at", "unannotated": "_at"}
    )
    numbered.insert(0, "ID", [f"{1000001 + i}" for i in range(len(numbered))] + suffix)
    control.insert(0, "ID", AFFX)
    return pd.concat([numbered, control], ignore_index=True)


def array_values(
    genes: pd.DataFrame, probes: pd.DataFrame, samples: pd.DataFrame, seed: int = SEED
) -> pd.DataFrame:
    """MAS5-like intensities (NOT log2): 2**(base + patient + scale*effect + noise); a few NaN."""
    rng = _rng(seed, 5)
    g = genes[genes["in_array"]].reset_index(drop=True)
    eff = pd.DataFrame(effect_matrix(g, samples), index=g["gene"], columns=samples.index)
    trap_eff = effect_matrix(
        pd.DataFrame({c: [1.0 if c == "post_all" else 0.0] for c in COMPONENTS}), samples
    )
    eff.loc["BRCA2_TRAP"] = trap_eff[0]
    patients = samples["patient"].unique()
    pat_gene = pd.DataFrame(
        rng.normal(0.0, PATIENT_SD, (len(eff), len(patients))), index=eff.index, columns=patients
    )
    has_src = probes["source"].ne("").to_numpy()
    src = probes["source"].where(has_src, "BRCA2_TRAP")  # placeholder row, zeroed below
    pat_own = rng.normal(0.0, PATIENT_SD, (len(probes), len(patients)))
    pat = np.where(has_src[:, None], pat_gene.loc[src, patients].to_numpy(), pat_own)
    pat = pat[:, pd.Index(patients).get_indexer(samples["patient"])]
    scale = np.where(probes["source"].eq("BRCA2_TRAP"), 1.0, probes["scale"].to_numpy())
    effect = eff.loc[src].to_numpy() * np.where(has_src, scale, 0.0)[:, None]
    noise = rng.normal(0.0, ARRAY_NOISE_SD, (len(probes), len(samples)))
    log2 = probes["base"].to_numpy()[:, None] + pat + effect + noise
    values = pd.DataFrame(np.exp2(log2), index=probes["ID"], columns=samples.index)

    null_rows = rng.choice(
        np.flatnonzero(
            probes["kind"].eq("main") & probes["source"].isin(g["gene"][g["gene_set"].eq("filler")])
        ),
        N_NULL,
        replace=False,
    )
    null_cols = rng.integers(0, len(samples), N_NULL)
    arr = values.to_numpy()
    arr[null_rows, null_cols] = np.nan
    return pd.DataFrame(arr, index=values.index, columns=values.columns)


def annot_text(probes: pd.DataFrame) -> str:
    """GPL990001.annot in GEO's annotation format (header lines, then the platform table)."""
    cols = [
        ("ID", ""),
        ("Gene title", "Entrez Gene name"),
        ("Gene symbol", "Entrez Gene symbol"),
        ("Gene ID", "Entrez Gene identifier"),
        ("UniGene title", "Entrez UniGene name"),
        ("UniGene symbol", "Entrez UniGene symbol"),
        ("UniGene ID", "Entrez UniGene identifier"),
        ("Nucleotide Title", "Entrez Nucleotide title"),
        ("GI", "GenBank identifier"),
        ("GenBank Accession", "GenBank accession"),
        ("Platform_CLONEID", "CLONE_ID from Platform"),
        ("Platform_ORF", "ORF from Platform"),
        ("Platform_SPOTID", "SPOT_ID from Platform"),
        ("Chromosome location", "Entrez gene chromosome and location"),
        ("Chromosome annotation", "Entrez gene chromosome annotation"),
        ("GO:Function", "Gene Ontology Function term"),
        ("GO:Process", "Gene Ontology Process term"),
        ("GO:Component", "Gene Ontology Component term"),
        ("GO:Function ID", "Gene Ontology Function identifier"),
        ("GO:Process ID", "Gene Ontology Process identifier"),
        ("GO:Component ID", "Gene Ontology Component identifier"),
    ]
    title = probes["symbol"].str.replace(r"([^ /]+)", r"\1 (synthetic demo gene)", regex=True)
    table = pd.DataFrame({c: "" for c, _ in cols}, index=probes.index)
    table["ID"] = probes["ID"]
    table["Gene symbol"] = probes["symbol"]
    table["Gene title"] = title.where(probes["symbol"].ne(""), "")
    table["Platform_SPOTID"] = np.where(probes["kind"].eq("control"), "--Control", "")
    header = [
        "^Annotation",
        f"!Annotation_date = {DATE}",
        f"!Annotation_platform = {ARRAY_GPL}",
        "!Annotation_platform_title = [DEMO-2K] Synthetic Affymetrix-like demo array "
        "(prepost embedded demo; not a real platform)",
        "!Annotation_platform_organism = Homo sapiens",
        "!Annotation_series_count = 1",
        *(f"#{c} = {d}" for c, d in cols),
        "!platform_table_begin",
    ]
    body = table.to_csv(sep="\t", index=False, lineterminator="\n", quoting=csv.QUOTE_NONE)
    return "\n".join(header) + "\n" + body + "!platform_table_end\n"


# --------------------------------------------------------------------------- series matrices


def _series_header(
    gse: str,
    gpl: str,
    title: str,
    summary: list[str],
    design: str,
    stype: str,
    samples: pd.DataFrame,
    extra: list[str],
) -> list[str]:
    return [
        _qline("!Series_title", [title]),
        _qline("!Series_geo_accession", [gse]),
        _qline("!Series_status", [f"Public on {DATE}"]),
        _qline("!Series_submission_date", [DATE]),
        _qline("!Series_last_update_date", [DATE]),
        *(_qline("!Series_summary", [s]) for s in summary),
        _qline("!Series_overall_design", [design]),
        _qline("!Series_type", [stype]),
        _qline("!Series_contributor", ["prepost,,demo"]),
        _qline("!Series_sample_id", ["".join(f"{s} " for s in samples.index)]),
        _qline("!Series_contact_name", ["prepost,,demo"]),
        *extra,
        _qline("!Series_platform_id", [gpl]),
        _qline("!Series_platform_taxid", ["9606"]),
        _qline("!Series_sample_taxid", ["9606"]),
        "",
    ]


def _sample_lines(samples: pd.DataFrame, gpl: str, per_kind: list[tuple[str, object]]) -> list[str]:
    """The !Sample_* block; characteristics one line per key, cells "key: value" like GEO."""
    timepoint = samples["timepoint"].map(
        {"pre": "pre-treatment", "on": "on-treatment", "post": "post-treatment"}
    )
    source = samples["timepoint"].map(
        {
            "pre": "breast tumour, pre-treatment core biopsy",
            "on": "breast tumour, on-treatment core biopsy (after cycle 2)",
            "post": "breast tumour, post-treatment surgical specimen",
        }
    )
    n = len(samples)
    chars = [
        ("tissue", [TISSUE] * n),
        ("patient id", samples["patient"]),
        ("timepoint", timepoint),
        ("response", samples["response"]),
        ("treatment", [TREATMENT] * n),
    ]
    lines = [
        _qline("!Sample_title", samples["title"]),
        _qline("!Sample_geo_accession", samples.index),
        _qline("!Sample_status", [f"Public on {DATE}"] * n),
        _qline("!Sample_submission_date", [DATE] * n),
        _qline("!Sample_last_update_date", [DATE] * n),
    ]
    for key, value in per_kind:
        if key == "@characteristics":
            lines += [
                _qline("!Sample_characteristics_ch1", [f"{k}: {v}" for v in vals])
                for k, vals in chars
            ]
        elif key == "@source":
            lines.append(_qline("!Sample_source_name_ch1", source))
        else:
            lines.append(
                _qline(
                    key, value if isinstance(value, (list, pd.Series, pd.Index)) else [value] * n
                )
            )
    lines.append(_qline("!Sample_platform_id", [gpl] * n))
    return lines


def array_matrix_text(samples: pd.DataFrame, values: pd.DataFrame) -> str:
    """GSE990001_series_matrix.txt in GEO's layout, values as MAS5 signal with one decimal."""
    header = _series_header(
        ARRAY_GSE,
        ARRAY_GPL,
        "SYNTHETIC DEMO: paired pre/post neoadjuvant chemotherapy breast tumour expression (array)",
        [
            "Synthetic data written by prepost.demo for the prepost workflow's embedded demo. "
            "No patient, sample or measurement is real.",
            "Effects were planted for DNA repair, DNA damage response, proliferation, interferon "
            "and xenobiotic metabolism genes; see resources/demo/truth.tsv.",
        ],
        "12 patients with a pre-treatment core biopsy and a post-treatment surgical specimen "
        "(anthracycline-taxane neoadjuvant chemotherapy) and one patient (P13) with a "
        "pre-treatment biopsy only. Response: pathological complete response (pCR) or residual "
        "disease (RD).",
        "Expression profiling by array",
        samples,
        [],
    )
    kind = samples["timepoint"].map(
        {"pre": "pre-treatment biopsy", "post": "post-treatment residual tumour"}
    )
    rows = _sample_lines(
        samples,
        ARRAY_GPL,
        [
            ("!Sample_type", "RNA"),
            ("!Sample_channel_count", "1"),
            ("@source", None),
            ("!Sample_organism_ch1", "Homo sapiens"),
            ("@characteristics", None),
            (
                "!Sample_treatment_protocol_ch1",
                "Neoadjuvant anthracycline-taxane chemotherapy (synthetic).",
            ),
            ("!Sample_molecule_ch1", "total RNA"),
            ("!Sample_extract_protocol_ch1", "Not applicable: synthetic demo sample."),
            ("!Sample_label_ch1", "biotin"),
            ("!Sample_taxid_ch1", "9606"),
            ("!Sample_hyb_protocol", "Not applicable: synthetic demo sample."),
            ("!Sample_scan_protocol", "Not applicable: synthetic demo sample."),
            ("!Sample_description", list(samples["title"] + ": " + kind)),
            (
                "!Sample_data_processing",
                "MAS5 signal, scaled, not log-transformed (synthetic values).",
            ),
            ("!Sample_contact_name", "prepost,,demo"),
            ("!Sample_supplementary_file", "NONE"),
            ("!Sample_data_row_count", str(len(values))),
        ],
    )
    table = values.copy()
    table.index = '"' + table.index + '"'
    table.index.name = '"ID_REF"'
    table.columns = '"' + table.columns + '"'
    body = table.to_csv(
        sep="\t", float_format="%.1f", na_rep="null", lineterminator="\n", quoting=csv.QUOTE_NONE
    )
    return (
        "\n".join(header + rows + ["!series_matrix_table_begin"])
        + "\n"
        + body
        + "!series_matrix_table_end\n"
    )


def rnaseq_matrix_text(
    samples: pd.DataFrame,
    gse: str = RNASEQ_GSE,
    counts_file: str = COUNTS_FILE,
    title: str = "SYNTHETIC DEMO: paired pre/post neoadjuvant chemotherapy breast tumour RNA-seq",
    design: str = "10 patients with pre- and post-treatment tumour RNA-seq and one patient (P11) "
    "with a post-treatment sample only.",
) -> str:
    """GSE990002_series_matrix.txt (or another RNA-seq cohort's): sample headers and an empty
    table, as GEO does for RNA-seq."""
    stub = _stub(gse)
    header = _series_header(
        gse,
        RNASEQ_GPL,
        title,
        [
            "Synthetic data written by prepost.demo for the prepost workflow's embedded demo. "
            "No patient, sample or measurement is real.",
            f"Raw gene counts are in the supplementary file {counts_file} (one column per sample title).",
        ],
        design,
        "Expression profiling by high throughput sequencing",
        samples,
        [
            _qline(
                "!Series_supplementary_file",
                [f"{GEO_FTP}/series/{stub}/{gse}/suppl/{counts_file}"],
            )
        ],
    )
    rows = _sample_lines(
        samples,
        RNASEQ_GPL,
        [
            ("!Sample_type", "SRA"),
            ("!Sample_channel_count", "1"),
            ("@source", None),
            ("!Sample_organism_ch1", "Homo sapiens"),
            ("@characteristics", None),
            ("!Sample_molecule_ch1", "total RNA"),
            ("!Sample_extract_protocol_ch1", "Not applicable: synthetic demo sample."),
            ("!Sample_taxid_ch1", "9606"),
            ("!Sample_description", list(samples["title"])),
            ("!Sample_data_processing", "Reads aligned to GRCh38 (synthetic: no reads exist)."),
            (
                "!Sample_data_processing",
                "Gene counts: negative binomial draws from the planted model.",
            ),
            (
                "!Sample_data_processing",
                f"Supplementary_files_format_and_content: {counts_file}, raw counts",
            ),
            ("!Sample_contact_name", "prepost,,demo"),
            ("!Sample_instrument_model", "Illumina NovaSeq 6000"),
            ("!Sample_library_selection", "cDNA"),
            ("!Sample_library_source", "transcriptomic"),
            ("!Sample_library_strategy", "RNA-Seq"),
            ("!Sample_supplementary_file_1", "NONE"),
            ("!Sample_data_row_count", "0"),
        ],
    )
    table = [_qline('"ID_REF"', samples.index)]
    return (
        "\n".join(
            header + rows + ["!series_matrix_table_begin", *table, "!series_matrix_table_end"]
        )
        + "\n"
    )


# --------------------------------------------------------------------------- RNA-seq cohort


def rnaseq_counts(genes: pd.DataFrame, samples: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Negative binomial counts (gamma-Poisson), dispersion 0.1 + 1/mean; library 5-10 M.

    Returns genes (sorted) x sample titles (sorted), int64.
    """
    rng = _rng(seed, 6)
    g = genes[genes["in_rnaseq"]].reset_index(drop=True)
    n = len(g)
    abund = rng.normal(0.0, 2.6, n)
    curated = g["gene_set"].ne("filler").to_numpy()  # planted genes stay above count filters
    abund[curated] = rng.normal(1.5, 1.0, n)[curated]
    hk = g["gene_set"].eq("housekeeping").to_numpy()
    abund[hk] = rng.normal(4.5, 1.0, n)[hk]
    prop = np.exp2(abund) / np.exp2(abund).sum()
    lib = rng.uniform(5e6, 1e7, len(samples))
    patients = samples["patient"].unique()
    pat = rng.normal(0.0, PATIENT_SD, (n, len(patients)))[
        :, pd.Index(patients).get_indexer(samples["patient"])
    ]
    mu = np.outer(prop, lib) * np.exp2(pat + effect_matrix(g, samples))
    alpha = 0.1 + 1.0 / np.maximum(mu.mean(axis=1, keepdims=True), 1e-3)
    lam = rng.gamma(shape=1.0 / alpha, scale=mu * alpha)
    counts = rng.poisson(lam).astype(np.int64)
    df = pd.DataFrame(
        counts, index=pd.Index(g["gene"], name="gene"), columns=samples["title"].to_numpy()
    )
    return df.sort_index().reindex(columns=sorted(df.columns))


# --------------------------------------------------------------------------- timepoint cohort


def timepoint_design(seed: int = SEED) -> pd.DataFrame:
    """GSE990003: 14 patients (GSM9900201..): P01-P08 pre, on and post; P09-P10 pre and post;
    P11-P12 pre only; P13-P14 post only; half pCR (own random stream)."""
    rng = _rng(seed, 7)
    patients = [f"P{i:02d}" for i in range(1, 15)]
    response = dict(zip(patients, rng.permutation(["pCR", "RD"] * 7)))
    plan = {p: ["pre", "on", "post"] for p in patients[:8]}
    plan.update({p: ["pre", "post"] for p in patients[8:10]})
    plan.update({p: ["pre"] for p in patients[10:12]})
    plan.update({p: ["post"] for p in patients[12:]})
    rows = [(p, t) for t in ("pre", "on", "post") for p in rng.permutation(patients) if t in plan[p]]
    df = pd.DataFrame(rows, columns=["patient", "timepoint"])
    df["response"] = df["patient"].map(response)
    df["title"] = df["patient"] + "_" + df["timepoint"]
    df.insert(0, "sample", [f"GSM{9900201 + i}" for i in range(len(df))])
    df["gse"] = TP_GSE
    return df.set_index("sample")


def timepoint_effects(genes: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray:
    """Planted log2 effects in GSE990003: pre and post as the other cohorts (effect_matrix),
    on samples group_RD plus the on-treatment effect (ON_PLANTED)."""
    eff = effect_matrix(genes, samples)
    on = samples["timepoint"].eq("on").to_numpy()
    rd = samples["response"].eq("RD").to_numpy(float)
    on_all = genes["gene"].map(ON_PLANTED).fillna(0.0).to_numpy()
    eff[:, on] = np.outer(genes["group_RD"], rd[on]) + on_all[:, None]
    return eff


def timepoint_counts(genes: pd.DataFrame, samples: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Counts of GSE990003 from the RNA-seq cohort's model (rnaseq_counts) on its own stream."""
    rng = _rng(seed, 8)
    g = genes[genes["in_rnaseq"]].reset_index(drop=True)
    n = len(g)
    abund = rng.normal(0.0, 2.6, n)
    curated = g["gene_set"].ne("filler").to_numpy()
    abund[curated] = rng.normal(1.5, 1.0, n)[curated]
    hk = g["gene_set"].eq("housekeeping").to_numpy()
    abund[hk] = rng.normal(4.5, 1.0, n)[hk]
    prop = np.exp2(abund) / np.exp2(abund).sum()
    lib = rng.uniform(5e6, 1e7, len(samples))
    patients = samples["patient"].unique()
    pat = rng.normal(0.0, PATIENT_SD, (n, len(patients)))[
        :, pd.Index(patients).get_indexer(samples["patient"])
    ]
    mu = np.outer(prop, lib) * np.exp2(pat + timepoint_effects(g, samples))
    alpha = 0.1 + 1.0 / np.maximum(mu.mean(axis=1, keepdims=True), 1e-3)
    counts = rng.poisson(rng.gamma(shape=1.0 / alpha, scale=mu * alpha)).astype(np.int64)
    df = pd.DataFrame(counts, index=pd.Index(g["gene"], name="gene"), columns=samples["title"].to_numpy())
    return df.sort_index().reindex(columns=sorted(df.columns))


def timepoint_truth(genes: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Expected on_vs_pre, post_vs_on and post_vs_pre of every curated or planted gene of
    GSE990003: the mean within-patient difference over the patients with both timepoints."""
    g = genes[genes["in_rnaseq"] & genes["gene_set"].ne("filler")].reset_index(drop=True)
    rows = []
    for effect in TP_EFFECTS:
        alt, ref = effect.split("_vs_")
        per = samples.groupby("patient")["timepoint"].agg(set)
        both = per.index[per.map(lambda s: {ref, alt} <= s)]
        sub = samples[samples["patient"].isin(both)]
        eff = timepoint_effects(g, sub)
        diff = np.zeros(len(g))
        for p in both:
            a = np.flatnonzero((sub["patient"] == p).to_numpy() & (sub["timepoint"] == alt).to_numpy())[0]
            b = np.flatnonzero((sub["patient"] == p).to_numpy() & (sub["timepoint"] == ref).to_numpy())[0]
            diff += eff[:, a] - eff[:, b]
        rows.append(pd.DataFrame({"dataset": TP_GSE, "gene": g["gene"], "effect": effect,
                                  "log2_effect": np.round(diff / len(both), 6) + 0.0,
                                  "gene_set": g["gene_set"], "pairs": len(both)}))
    return pd.concat(rows, ignore_index=True).sort_values(["gene", "effect"], ignore_index=True)


TP_README = """
## GSE990003: ordered timepoints and unpaired patients

A third RNA-seq cohort (not in config/config.yaml; run it with
config/examples/demo_timepoints.yaml) with biopsies before (`pre-treatment`), during
(`on-treatment`, after cycle 2) and after (`post-treatment`) chemotherapy: P01-P08 have all
three, P09-P10 pre and post, P11-P12 pre only, P13-P14 post only (GSM9900201 onwards, own
random streams 7 and 8, so the other cohorts' files do not change). Pre and post samples carry
the planted effects of the other cohorts; on samples carry `group_RD` and the on-treatment
effects: proliferation genes -1.5 (below their -0.8 at surgery), interferon genes +1.0
(transient). `truth_timepoints.tsv` gives the expected on_vs_pre, post_vs_on and post_vs_pre
per gene (mean within-patient difference over the patients with both timepoints, column
`pairs`).
"""


# --------------------------------------------------------------------------- published table


def published_table(paths: dict[str, Path]) -> tuple[str, dict]:
    """The array cohort's post_vs_pre DE, by prepost's own parse -> collapse -> pair -> moderated
    t, as a topTable-like text (ID, logFC, CI.L, CI.R, AveExpr, P.Value, adj.P.Val) of the
    genes with adj.P.Val < PUBLISHED_ALPHA. Returns the text and facts for the README/config.

    The CI uses the t quantile on the moderated t's total df (as limma's confint); the table
    has no SE and no t column, so a reader must derive the SE from the CI.
    """
    from scipy import stats

    from prepost.prepare import dataset as prepare
    from prepost.de.fit import fit_contrast

    ds = {"kind": "geo_series_matrix", "accession": ARRAY_GSE, "pairing": ARRAY_PAIRING,
          "platform": {"accession": ARRAY_GPL, "file": "annot", "symbol_column": "Gene symbol"},
          "contrasts": ["post_vs_pre"]}
    files = {"series_matrix": str(paths["array_matrix"]), "platform": str(paths["platform_annot"])}
    prep = prepare.prepare_dataset("demo_array", ds, files)
    de = fit_contrast(prep.expression, prep.values, prep.sheet, "post_vs_pre", "demo_array")
    sig = de[de["padj"] < PUBLISHED_ALPHA].sort_values(["pvalue", "gene"])
    q = stats.t.ppf(0.975, sig["df_total"])  # each gene's own df, as limma's confint
    table = pd.DataFrame({
        "ID": sig["gene"], "logFC": sig["log2fc"], "CI.L": sig["log2fc"] - q * sig["lfc_se"],
        "CI.R": sig["log2fc"] + q * sig["lfc_se"], "AveExpr": sig["mean_expr"],
        "P.Value": sig["pvalue"], "adj.P.Val": sig["padj"],
    })
    text = table.to_csv(sep="\t", index=False, lineterminator="\n", float_format="%.6g")
    facts = {"n_pairs": int(sig["n_pairs"].max()) if len(sig) else 0, "n_genes": len(sig),
             "n_tested": int(de["pvalue"].notna().sum()),
             "df_total": float(de["df_total"].mode().iloc[0]),
             "df_other": sorted(float(x) for x in de["df_total"].dropna().unique()),
             "universe": "".join(f"{g}\n" for g in sorted(de["gene"].astype(str)))}
    return text, facts


# --------------------------------------------------------------------------- entry points


def write_demo(outdir: str | os.PathLike = "resources/demo", seed: int = SEED) -> dict[str, Path]:
    """Write the whole demo under ``outdir``; returns the written paths by role."""
    paths = demo_paths(outdir)
    genes = gene_universe(seed)
    a_samples, r_samples = array_design(seed), rnaseq_design(seed)
    designs = {ARRAY_GSE: a_samples, RNASEQ_GSE: r_samples}
    probes = array_probes(genes, seed)
    values = array_values(genes, probes, a_samples, seed)
    counts = rnaseq_counts(genes, r_samples, seed)
    t_samples = timepoint_design(seed)
    t_counts = timepoint_counts(genes, t_samples, seed)

    _write_gz(annot_text(probes), paths["platform_annot"])
    _write_gz(array_matrix_text(a_samples, values), paths["array_matrix"])
    _write_gz(rnaseq_matrix_text(r_samples), paths["rnaseq_matrix"])
    _write_gz(counts.to_csv(sep="\t", lineterminator="\n"), paths["rnaseq_counts"])
    _write_gz(
        rnaseq_matrix_text(
            t_samples, TP_GSE, TP_COUNTS_FILE,
            "SYNTHETIC DEMO: pre, on- and post-treatment breast tumour RNA-seq, partly paired",
            "8 patients with pre-, on- and post-treatment tumour RNA-seq, 2 with pre and post, "
            "2 with pre only and 2 with post only.",
        ),
        paths["timepoints_matrix"],
    )
    _write_gz(t_counts.to_csv(sep="\t", lineterminator="\n"), paths["timepoints_counts"])
    _write_text(
        timepoint_truth(genes, t_samples).to_csv(
            sep="\t", index=False, lineterminator="\n", float_format="%.6g"
        ),
        paths["timepoints_truth"],
    )
    pub_text, pub_facts = published_table(paths)
    _write_text(pub_text, paths["published"])
    _write_text(pub_facts.pop("universe"), paths["published_universe"])
    truth = truth_table(genes, designs)
    _write_text(
        truth.to_csv(sep="\t", index=False, lineterminator="\n", float_format="%.6g"),
        paths["truth"],
    )
    consts = {k: v for k, v in globals().items() if k.isupper()}
    _write_text(readme_text(genes, designs, probes, seed, pub_facts, consts, demo_paths("."))
                + TP_README, paths["readme"])
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python tools/prepost_demo.py", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("outdir", nargs="?", default="resources/demo", help="default: resources/demo")
    ap.add_argument("--seed", type=int, default=SEED, help=f"default: {SEED}")
    args = ap.parse_args(argv)
    for role, path in write_demo(args.outdir, args.seed).items():
        print(f"{role}\t{path}\t{path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
