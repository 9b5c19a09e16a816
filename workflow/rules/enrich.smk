rule genesets:
    """Bring the configured GMT collections into the cache through the download client and
    record their source and sha256."""
    input:
        [c["path"] for c in config["enrichment"]["collections"] if "path" in c],
    output:
        gmts=[
            f"{RESOURCES}/genesets/{c['name']}.gmt"
            for c in config["enrichment"]["collections"]
        ],
        provenance=f"{RESULTS}/genesets/collections.tsv",
    log:
        f"{LOGS}/genesets.log",
    benchmark:
        f"{RESULTS}/benchmarks/genesets.tsv"
    conda:
        "../../envs/enrich.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        collections=config["enrichment"]["collections"],
        outdir=lambda w, output: os.path.dirname(output.gmts[0]),
        offline=config["download"]["offline"],
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff"],
    script:
        "../scripts/genesets.py"


rule enrich:
    """gseapy prerank on the contrast's paired-model statistic (multilevel p, BH) and ORA of
    significant up/down genes against the tested genes."""
    input:
        table=f"{RESULTS}/{{ds}}/de/{{contrast}}.tsv",
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        gmts=rules.genesets.output.gmts,
        aliases=alias_table(),
    output:
        gsea=f"{RESULTS}/{{ds}}/enrich/{{contrast}}/gsea.tsv",
        ora=f"{RESULTS}/{{ds}}/enrich/{{contrast}}/ora.tsv",
        report=f"{RESULTS}/{{ds}}/enrich/{{contrast}}/genesets_found.tsv",
    log:
        f"{LOGS}/{{ds}}/enrich_{{contrast}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/enrich_{{contrast}}.tsv"
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
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
        gmts=rules.genesets.output.gmts,
        aliases=alias_table(),
    output:
        scores=f"{RESULTS}/{{ds}}/enrich/set_scores.tsv",
        tests=f"{RESULTS}/{{ds}}/enrich/set_tests.tsv",
    log:
        f"{LOGS}/{{ds}}/set_scores.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/set_scores.tsv"
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
        table=f"{RESULTS}/{{ds}}/de/{{contrast}}.tsv",
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        gmts=rules.genesets.output.gmts,
    output:
        dotplot=f"{RESULTS}/{{ds}}/enrich/{{contrast}}/gsea.dotplot.png",
        running=f"{RESULTS}/{{ds}}/enrich/{{contrast}}/gsea.running.png",
    log:
        f"{LOGS}/{{ds}}/enrich_plots_{{contrast}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/enrich_plots_{{contrast}}.tsv"
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
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
    output:
        slopes=f"{RESULTS}/{{ds}}/enrich/set_scores.slopes.png",
    log:
        f"{LOGS}/{{ds}}/set_slopes.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/set_slopes.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=lambda wc: f"{wc.ds}: gene-set scores",
        n_sets=8,
        method=config["enrichment"]["score_method"],
    script:
        "../scripts/set_slopes.py"
