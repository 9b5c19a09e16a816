rule published_table:
    """Bring a published DE table (kind: published_de) into the cache through the download
    client: a local path is copied, a URL fetched with retries; sha256 checked when given.
    """
    input:
        published_input,
    output:
        table=f"{RESOURCES}/published/{{ds}}/table",
    log:
        f"{LOGS}/{{ds}}/published_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/published_table.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=500,
        runtime=30,
    params:
        dataset=dataset,
        name=lambda wc: wc.ds,
        offline=config["download"]["offline"],
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff"],
    script:
        "../scripts/claims_published.py"


rule claims:
    """Each published finding in the claims catalogue, checked in every dataset, with its
    standardised effect (prepost.meta) from the per-sample values or the published table.
    """
    input:
        claims=config["claims"],
        tables=claims_inputs(),
        gsea=[f for f in enrichment_targets() if f.endswith("gsea.tsv")],
    output:
        table=report(
            f"{RESULTS}/claims.tsv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        schema=str(Path(workflow.basedir) / "workflow/schemas/claims.schema.yaml"),
        tables=claims_tables(),
        treatments={ds: config["datasets"][ds].get("treatment", []) for ds in DATASETS},
        alpha=config["claims_settings"]["alpha"],
        adjust=config["claims_settings"]["adjust"],
    script:
        "../scripts/claims.py"


rule claims_meta:
    """Random-effects (DerSimonian-Laird) pool of each claim's standardised effects across
    datasets (one per cohort), and a forest plot per claim."""
    input:
        table=rules.claims.output.table,
    output:
        meta=f"{RESULTS}/claims_meta.tsv",
        forest=[f"{RESULTS}/claims/forest/{c}.png" for c in claim_ids()],
    log:
        f"{LOGS}/claims_meta.log",
    benchmark:
        f"{RESULTS}/benchmarks/claims_meta.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        claim_ids=claim_ids(),
        forest_dir=lambda w, output: os.path.dirname(output.forest[0]),
        alpha=config["claims_settings"]["alpha"],
        cohorts={
            ds: config["datasets"][ds]["cohort"]
            for ds in DATASETS
            if "cohort" in config["datasets"][ds]
        },
        published=published_datasets(),
    script:
        "../scripts/claims_meta.py"
