rule claims:
    """Each published finding in the claims catalogue, checked in every dataset."""
    input:
        claims=config["claims"],
        tables=de_tables(),
    output:
        table=f"{RESULTS}/claims.tsv",
    log:
        f"{LOGS}/claims.log",
    conda:
        "../../envs/prepost.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        schema=str(Path(workflow.basedir) / "workflow/schemas/claims.schema.yaml"),
        tables={
            ds: {c: f"{RESULTS}/{ds}/de/{c}.tsv" for c in contrasts_of(ds)}
            for ds in DATASETS
        },
        alpha=config.get("claims_settings", {}).get("alpha", 0.05),
        adjust=config.get("claims_settings", {}).get("adjust", "claims"),
    script:
        "../scripts/claims.py"
