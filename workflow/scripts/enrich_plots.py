"""Snakemake glue: GSEA dot plot and running-score plots of one contrast."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from prepost import io, plots  # noqa: E402
from prepost.enrich.run import load_sets  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    gsea = io.read_tsv(inp.gsea)
    de = io.read_tsv(inp.table)
    genes = pd.read_parquet(inp.expression).index
    sets, _ = load_sets(dict(zip(p.names, inp.gmts)), genes, p.alias_table)  # as prerank
    top = gsea.sort_values(["padj", "pvalue", "set"]).head(p.running_n)["set"].tolist()
    log.info("dotplot %s", plots.gsea_dotplot(gsea, out.dotplot, p.title, top_n=p.top_n))
    summary = plots.running_score_plot(de, sets, top, out.running, p.title, gsea=gsea)
    log.info("running %s", {k: v for k, v in summary.items() if k != "leading_edge"})
