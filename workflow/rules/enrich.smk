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
    significant up/down genes against the tested genes; the GSEA dot plot and running-score
    plots of the top sets are drawn in the same job (the tables are already in memory: one
    interpreter start and gseapy import fewer per contrast)."""
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
        dotplot=P.gsea_plot("{ds}", "{contrast}", "dotplot"),
        running=P.gsea_plot("{ds}", "{contrast}", "running"),
    log:
        P.log("{ds}", "enrich_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "enrich_{contrast}")
    conda:
        "../../envs/enrich.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        names=[c["name"] for c in config["enrichment"]["collections"]],
        settings=config["enrichment"],
        title=lambda wc: f"{wc.ds}: {wc.contrast}",
        top_n=20,
        running_n=6,
    script:
        "../scripts/enrich.py"


rule set_scores:
    """Per-sample gene-set scores and their paired change per patient (all, and by response),
    and paired slope plots of the sets with the smallest paired-t p (same job)."""
    input:
        **P.analysis("{ds}"),
        gmts=rules.genesets.output.gmts,
        aliases=alias_table(),
    output:
        scores=P.set_scores("{ds}"),
        tests=P.set_tests("{ds}"),
        slopes=P.set_slopes("{ds}"),
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
        title=lambda wc: f"{wc.ds}: gene-set scores",
        n_sets=8,
    script:
        "../scripts/set_scores.py"
