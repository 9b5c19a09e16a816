rule de:
    """Paired differential expression: pydeseq2 ~ patient + timepoint for counts, a
    patient-blocked moderated t (limma's empirical Bayes) for log2 arrays."""
    input:
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
    output:
        table=f"{RESULTS}/{{ds}}/de/{{contrast}}.tsv",
    log:
        f"{LOGS}/{{ds}}/de_{{contrast}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/de_{{contrast}}.tsv"
    conda:
        "../../envs/prepost.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        contrast=lambda wc: wc.contrast,
    script:
        "../scripts/de.py"
