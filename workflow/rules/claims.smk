rule claims:
    """Each published finding in the claims catalogue, checked in every dataset."""
    input:
        claims=config["claims"],
        tables=de_tables(),
        gsea=[f for f in enrichment_targets() if f.endswith("gsea.tsv")],
        set_tests=[f"{RESULTS}/{ds}/enrich/set_tests.tsv" for ds in DATASETS],
    output:
        table=report(
            f"{RESULTS}/claims.tsv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{LOGS}/claims.log",
    conda:
        "../../envs/prepost.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        schema=str(Path(workflow.basedir) / "workflow/schemas/claims.schema.yaml"),
        tables=claims_tables(),
        treatments={ds: config["datasets"][ds].get("treatment", []) for ds in DATASETS},
        alpha=config["claims_settings"]["alpha"],
        adjust=config["claims_settings"]["adjust"],
    script:
        "../scripts/claims.py"
