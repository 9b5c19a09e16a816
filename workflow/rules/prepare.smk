rule prepare:
    """Parse the series matrix / count table, map probes to genes, log2 when needed, pair the
    samples by patient and check the design before any model runs."""
    input:
        unpack(prepare_input),
    output:
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        pairs=f"{RESULTS}/{{ds}}/pairs.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
    log:
        f"{LOGS}/{{ds}}/prepare.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/prepare.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        name=lambda wc: wc.ds,
        dataset=dataset,
        files=prepare_files,
    script:
        "../scripts/prepare.py"
