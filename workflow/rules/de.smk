rule de:
    """Differential expression of one contrast: DESeq2's method for counts (prepost.de.nb, or
    pydeseq2 for designs with covariates), a patient-blocked moderated t (limma's empirical
    Bayes) for log2 arrays."""
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
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        contrast=lambda wc: wc.contrast,
        covariates=lambda wc: dataset(wc).get("covariates", []),
        lfc_shrink=lambda wc: dataset(wc).get("lfc_shrink", "none"),
    script:
        "../scripts/de.py"


rule de_plots:
    """Volcano and MA plots of a contrast, and paired slope plots (one line per patient) for
    the genes of interest (default: every gene named in the claims)."""
    input:
        table=f"{RESULTS}/{{ds}}/de/{{contrast}}.tsv",
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
        claims=config["claims"],
    output:
        volcano=report(
            f"{RESULTS}/{{ds}}/de/{{contrast}}.volcano.png",
            caption="../report/volcano.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
        ma=f"{RESULTS}/{{ds}}/de/{{contrast}}.ma.png",
        slopes=f"{RESULTS}/{{ds}}/de/{{contrast}}.slopes.png",
    log:
        f"{LOGS}/{{ds}}/de_plots_{{contrast}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/de_plots_{{contrast}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dataset=dataset,
        title=lambda wc: f"{wc.ds}: {wc.contrast}",
    script:
        "../scripts/de_plots.py"
