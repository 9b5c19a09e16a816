rule published_table:
    """Bring a published DE table (kind: published_de) into the cache through the download
    client: a local path is copied, a URL fetched with retries; sha256 checked when given.
    """
    input:
        published_input,
    output:
        table=P.published_table("{ds}"),
    log:
        P.log("{ds}", "published_table"),
    benchmark:
        P.benchmark("{ds}", "published_table")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        dataset=lambda wc: params_of(wc, "published_table"),
        settings=download_settings(),
    script:
        "../scripts/claims_published.py"


rule published_universe:
    """Bring a published table's assay gene list (universe:) into the cache through the download
    client, sha256 checked when given."""
    input:
        universe_input,
    output:
        universe=P.published_universe("{ds}"),
    log:
        P.log("{ds}", "published_universe"),
    benchmark:
        P.benchmark("{ds}", "published_universe")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        dataset=lambda wc: params_of(wc, "published_universe"),
        settings=download_settings(),
    script:
        "../scripts/claims_universe.py"


rule claims:
    """Each published finding in the claims catalogue, checked in every dataset, with its
    standardised effect (prepost.claims.effects) from the per-sample values or the published
    table; then, in the same job, the random-effects (DerSimonian-Laird) pool of each claim's
    effects across datasets (one per cohort) and a forest plot per claim (the pool reads only
    the claims table: a job of its own cost an interpreter start on the workflow's serial tail).
    With 2 threads (profiles/slurm) the forest plots are drawn by two forked workers; on a
    workstation it takes 1, and priority over the QC jobs left at that point, which run beside
    it instead of before it.
    """
    input:
        claims=config["claims"],
        tables=claims_inputs(),
        gsea=[P.enrich(ds, c, "gsea") for ds in EXPRESSION for c in contrasts_of(ds)],
        gmts=rules.genesets.output.gmts,
    output:
        table=report(
            P.claims(),
            caption="../report/claims.rst",
            category="Claims",
        ),
        meta=P.claims_meta(),
        forest=[P.forest(c) for c in CLAIM_IDS],
    log:
        P.log("", "claims"),
    benchmark:
        P.benchmark("", "claims")
    priority: 1
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        schema=os.path.join(WORKFLOW_DIR, "workflow/schemas/claims.schema.yaml"),
        tables=claims_tables(),
        treatments={ds: config["datasets"][ds].get("treatment", []) for ds in DATASETS},
        alpha=config["claims_settings"]["alpha"],
        adjust=config["claims_settings"]["adjust"],
        claim_ids=CLAIM_IDS,
        forest_dir=lambda w, output: os.path.dirname(output.forest[0]),
        cohorts={
            ds: config["datasets"][ds]["cohort"]
            for ds in DATASETS
            if "cohort" in config["datasets"][ds]
        },
        published=PUBLISHED,
    script:
        "../scripts/claims.py"
