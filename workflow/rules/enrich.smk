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


# One enrich job per dataset (all its contrasts, then the set scores): one rule per list of
# contrasts (CONTRAST_GROUPS).
for i, (contrasts, datasets) in enumerate(CONTRAST_GROUPS):

    rule:
        """gseapy prerank on each contrast's paired-model statistic (multilevel p, BH) and ORA
        of significant up/down genes against the tested genes, with the GSEA dot plot and
        running-score plots of the top sets; then per-sample gene-set scores, their paired
        change per patient (all, and by response) and the slope plots of the sets with the
        smallest paired-t p. One job per dataset (prepost.enrich.job): a contrast's enrichment
        computes for about a second, its own job's start and imports cost more; with 2
        threads (DATASET_JOB_THREADS) the contrasts run side by side in two forked workers
        (prepost.parallel).
        """
        name:
            "enrich" if i == 0 else f"enrich_{i + 1}"
        input:
            **P.analysis("{ds}"),
            tables=[P.de_table("{ds}", c) for c in contrasts],
            gmts=rules.genesets.output.gmts,
            aliases=alias_table(),
        output:
            **enrich_outputs(contrasts),
        log:
            P.log("{ds}", "enrich"),
        benchmark:
            P.benchmark("{ds}", "enrich")
        wildcard_constraints:
            ds="|".join(datasets),
        conda:
            "../../envs/enrich.yaml"
        threads: DATASET_JOB_THREADS
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            contrasts=list(contrasts),
            names=[c["name"] for c in config["enrichment"]["collections"]],
            settings=config["enrichment"],
            dataset=lambda wc: wc.ds,
            top_n=20,
            running_n=6,
            n_sets=8,
        script:
            "../scripts/enrich.py"
