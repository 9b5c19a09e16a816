"""README.md of resources/demo, written from the same parameters as the data (prepost_demo)."""

from __future__ import annotations

import pandas as pd


def readme_text(
    genes: pd.DataFrame, designs: dict[str, pd.DataFrame], probes: pd.DataFrame, seed: int,
    published: dict | None, c: dict, paths: dict,
) -> str:
    """README.md for resources/demo, written from the same parameters as the data: ``c`` the
    generator's constants by name, ``paths`` its output paths relative to the demo folder."""
    pub = published or {"n_pairs": 0, "n_tested": 0, "df_total": 0.0, "df_other": [], "n_genes": 0}
    rand = genes[genes["gene_set"].eq("random_planted")]
    up = ", ".join(rand["gene"][rand["post_all"] > 0])
    down = ", ".join(rand["gene"][rand["post_all"] < 0])
    trap = probes.loc[probes["source"].eq("BRCA2_TRAP"), ["ID", "symbol"]].iloc[0]

    def cohort(d: pd.DataFrame) -> str:
        pairs = d.groupby("patient")["timepoint"].nunique()
        paired = d[d["patient"].isin(pairs.index[pairs == 2])].drop_duplicates("patient")
        pcr = ", ".join(sorted(paired["patient"][paired["response"].eq("pCR")]))
        rd = ", ".join(sorted(paired["patient"][paired["response"].eq("RD")]))
        single = d[d["patient"].isin(pairs.index[pairs == 1])].iloc[0]
        return (
            f"{d.index[0]}..{d.index[-1]} ({len(d)} samples); pCR: {pcr}; RD: {rd}; "
            f"unpaired: {single['title']} ({single.name}, {single['response']})"
        )

    n_multi_probe = probes[probes["kind"].eq("secondary")]["source"].nunique()
    sets = "\n".join(f"| {s} | {len(v)} | {', '.join(v)} |" for s, v in c['GENE_SETS'].items())
    rel = {k: v.as_posix() for k, v in paths.items()}
    return f"""# Embedded demo data (SYNTHETIC)

Everything in this folder is **synthetic**: written by `tools/prepost_demo.py` (seed {seed}); no patient,
sample or measurement is real. Accessions GSE990001, GSE990002, GPL990001, GPL990002 and the
sample ids GSM99000nn / GSM99001nn are made up (GEO has none of them). Regenerate, byte for byte, with

    make demo-data                    # python tools/prepost_demo.py resources/demo (this folder)

`tests/test_demo.py` checks that the committed files are exactly what the generator writes, so
edit `tools/prepost_demo.py` (and `tools/prepost_demo_readme.py`), never the files here.

## Files (GEO's own formats, in GEO's FTP layout under `geo/`)

| file | what |
|---|---|
| `{rel['array_matrix']}` | array series matrix: `!Series_*` / `!Sample_*` header lines (quoted cells, one `!Sample_characteristics_ch1` line per key), then `!series_matrix_table_begin`, `"ID_REF"` + GSM ids, one row per probe, a few `null` cells, `!series_matrix_table_end`. Values are MAS5-like signal, **not log2** (GEO2R's rule says log2-transform). |
| `{rel['platform_annot']}` | platform annotation like GEO's `.annot.gz`: `^Annotation`, `!Annotation_*`, `#column = description` lines, table between `!platform_table_begin` / `!platform_table_end`; symbol column `Gene symbol`. `Gene ID` is left empty (no Entrez ids are claimed). |
| `{rel['rnaseq_matrix']}` | RNA-seq series matrix: sample header lines and an empty table (header line only), as GEO writes for sequencing series. `!Series_supplementary_file` names the count table. |
| `{rel['rnaseq_counts']}` | raw counts, tab-separated: first column `gene`, then one column per sample **title** (e.g. `P01_pre`), columns in title order (not GSM order). |
| `truth.tsv` | planted truth, one row per dataset x gene x contrast (below). |
| `{rel['published']}` | a "published" DE table (below), not a GEO file. |
| `README.md` | this file (also generated). |

All `.gz` files are gzip with mtime 0 and no stored file name, so reruns are byte-identical.

## Samples

Characteristics (ch1) of every sample: `tissue: {c['TISSUE']}`, `patient id: Pnn`,
`timepoint: pre-treatment|post-treatment`, `response: pCR|RD`, `treatment: {c['TREATMENT']}`.
Titles are `Pnn_pre` / `Pnn_post`. GSM order is all pre samples, then the post samples in a
shuffled patient order, so pairing must go by patient id, never by column position.

- GSE990001 (array, platform GPL990001): {cohort(designs[c['ARRAY_GSE']])}
- GSE990002 (RNA-seq, counts): {cohort(designs[c['RNASEQ_GSE']])}

## Genes and probes

{int(genes['in_array'].sum())} genes per cohort ({int((genes['in_array'] & genes['in_rnaseq']).sum())} shared; {c['N_RNASEQ_SWAP']} DEMOnnnn fillers differ). Curated sets use real HGNC symbols:

| gene_set | n | genes |
|---|---|---|
{sets}

Other genes are `DEMOnnnn` fillers. GPL990001 has {len(probes)} probes: one main `_at` probe per
gene; {n_multi_probe} genes have 1-2 extra `_a_at` probes that are 1-3 log2 units dimmer and
carry only 30% of the gene's effect (the highest-mean probe is the right one; it is not always the
first ID); {int(probes['kind'].eq('multi').sum())} `_s_at` probes annotated with two genes
(`A /// B`); {int(probes['symbol'].eq('').sum())} probes with no symbol (AFFX controls and a few
unannotated). Trap: probe `{trap['ID']}` (`{trap['symbol']}`) is brighter than BRCA2's own probe
and goes **up** by 1 post-treatment; a collapse rule that keeps multi-gene probes turns the
BRCA2 finding around.

Array model, per probe and sample (log2): gene mean (curated U(6.5, 11), housekeeping U(11, 13.5),
fillers N(7, 2) clipped to [2.5, 14]) + patient effect N(0, {c['PATIENT_SD']}) per gene and patient
(shared by the pair) + planted effect + noise N(0, {c['ARRAY_NOISE_SD']}); written as 2^value.
RNA-seq model: mean = library size (U(5, 10) million) x gene proportion x 2^(patient effect
N(0, {c['PATIENT_SD']}) + planted effect); counts gamma-Poisson (negative binomial) with dispersion
0.1 + 1/mean.

## Planted effects (log2; same in both cohorts)

| genes | planted | component |
|---|---|---|
| BRCA2, ATM, FANCA, PARP1, BRCA1 | -1.0 in every post-treatment sample | post_all |
| RAD51 | -0.8 post-treatment | post_all |
| GADD45A, XPC, PPM1D, FAS, CDKN1A, MDM2 | +1.0 post-treatment | post_all |
| proliferation set | -0.8 post-treatment | post_all |
| interferon_irds set | +1.0 post-treatment in RD patients only (0 in pCR) | post_RD |
| xenobiotic_metabolism set | +1.0 in RD patients at both timepoints | group_RD |
| PALB2, ERCC1 | -1.0 in pre-treatment samples of pCR patients | pre_pCR |
| {c['N_RANDOM_PLANTED']} random fillers (`random_planted`) | +1.0 post: {up}; -1.0 post: {down} | post_all |

Everything else (other DNA repair and radiation DDR genes, housekeeping, breast markers, all other
fillers) is null.

## truth.tsv

Columns: `dataset` (GSE accession), `gene`, `effect`, `log2_effect` (expected value), `gene_set`.
Rows for every curated gene (nulls included, as 0) and every random planted gene, with effects:

- `post_vs_pre`: mean paired post - pre difference over the complete pairs (half of them RD, so
  RD-only components count half: ISGs +0.5, PALB2/ERCC1 +0.5);
- `post_vs_pre_RD`, `post_vs_pre_pCR`: the same within non-responders (RD) / responders (pCR);
- `RD_vs_pCR_pre`, `RD_vs_pCR_post`: non-responders minus responders at one timepoint.

The array truth is at gene level (main probe); secondary probes show 30% of it.

## published/{c['PUBLISHED_FILE']}

A stand-in for a paper's supplementary DE table, so the `published_de` dataset kind runs in the
demo. It is GSE990001's own post_vs_pre result from prepost (parse, probe collapse, pairing,
patient-blocked moderated t: {pub['n_pairs']} pairs, {pub['n_tested']} genes tested), laid out
like limma's `topTable(confint=TRUE)`: `ID`, `logFC`, `CI.L`, `CI.R` (95%, t quantile on
each gene's total df: {pub['df_total']:g}, or
{', '.join(f"{x:g}" for x in pub['df_other'] if x != pub['df_total'])} for genes with a missing value), `AveExpr`, `P.Value`, `adj.P.Val`, and cut to the
{pub['n_genes']} genes with `adj.P.Val` < {c['PUBLISHED_ALPHA']} (no SE, no t column). It holds
the same patients as GSE990001, so the meta-analysis counts that cohort once.
"""
