rule genesets:
    """Bring the configured GMT collections into the cache through the download client and
    record their source and sha256."""
    input:
        [c["path"] for c in config["enrichment"]["collections"] if "path" in c],
    output:
        gmts=[P.gmt(c["name"]) for c in config["enrichment"]["collections"]],
        provenance=P.collections(),
    log:
        P.log("", "genesets"),
    benchmark:
        P.benchmark("", "genesets")
    conda:
        "../../envs/enrich.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        collections=config["enrichment"]["collections"],
        outdir=lambda w, output: os.path.dirname(output.gmts[0]),
        settings=download_settings(),
    script:
        "../scripts/genesets.py"


rule enrich:
    """gseapy prerank on the contrast's paired-model statistic (multilevel p, BH) and ORA of
    significant up/down genes against the tested genes."""
    input:
        table=rules.de.output.table,
        expression=P.expression("{ds}"),
        gmts=rules.genesets.output.gmts,
        aliases=alias_table(),
    output:
        gsea=P.enrich("{ds}", "{contrast}", "gsea"),
        ora=P.enrich("{ds}", "{contrast}", "ora"),
        report=P.enrich("{ds}", "{contrast}", "genesets_found"),
        record=P.enrich_record("{ds}", "{contrast}"),
    log:
        P.log("{ds}", "enrich_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "enrich_{contrast}")
    conda:
        "../../envs/enrich.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        names=[c["name"] for c in config["enrichment"]["collections"]],
        settings=config["enrichment"],
    script:
        "../scripts/enrich.py"


rule set_scores:
    """Per-sample gene-set scores and their paired change per patient (all, and by response)."""
    input:
        **P.analysis("{ds}"),
        gmts=rules.genesets.output.gmts,
        aliases=alias_table(),
    output:
        scores=P.set_scores("{ds}"),
        tests=P.set_tests("{ds}"),
    log:
        P.log("{ds}", "set_scores"),
    benchmark:
        P.benchmark("{ds}", "set_scores")
    conda:
        "../../envs/enrich.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        names=[c["name"] for c in config["enrichment"]["collections"]],
        settings=config["enrichment"],
    script:
        "../scripts/set_scores.py"


rule enrich_plots:
    """GSEA dot plot and running enrichment-score plots (top sets by padj) of one contrast."""
    input:
        gsea=rules.enrich.output.gsea,
        table=rules.de.output.table,
        expression=P.expression("{ds}"),
        gmts=rules.genesets.output.gmts,
    output:
        dotplot=P.gsea_plot("{ds}", "{contrast}", "dotplot"),
        running=P.gsea_plot("{ds}", "{contrast}", "running"),
    log:
        P.log("{ds}", "enrich_plots_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "enrich_plots_{contrast}")
    conda:
        "../../envs/enrich.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        names=[c["name"] for c in config["enrichment"]["collections"]],
        title=lambda wc: f"{wc.ds}: {wc.contrast}",
        alias_table=config["enrichment"].get("alias_table", ""),
        top_n=20,
        running_n=6,
    script:
        "../scripts/enrich_plots.py"


rule set_slopes:
    """Paired slope plots of per-sample set scores (sets with the smallest paired-t p)."""
    input:
        scores=rules.set_scores.output.scores,
        tests=rules.set_scores.output.tests,
        samples=P.analysis_samples("{ds}"),
    output:
        slopes=P.set_slopes("{ds}"),
    log:
        P.log("{ds}", "set_slopes"),
    benchmark:
        P.benchmark("{ds}", "set_slopes")
    conda:
        "../../envs/enrich.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=lambda wc: f"{wc.ds}: gene-set scores",
        n_sets=8,
        method=config["enrichment"]["score_method"],
    script:
        "../scripts/set_slopes.py"
