rule download:
    """Fetch a dataset's GEO files (series matrix, platform annotation, supplementary counts)
    with retries, checksums and a manifest; offline mode uses only the cache."""
    output:
        manifest=f"{RESOURCES}/geo/{{ds}}/manifest.tsv",
    log:
        f"{LOGS}/{{ds}}/download.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/download.tsv"
    retries: 1
    conda:
        "../../envs/download.yaml"
    resources:
        mem_mb=500,
        runtime=60,
    params:
        entries=download_entries,
        base_url=base_url(),
        offline=config["download"]["offline"],
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff"],
    script:
        "../scripts/download.py"
