rule qc:
    """Sample QC of a dataset: PCA (top 500 variable genes, VST or log2) with patients' pre and
    post joined, sample correlation heatmap, per-sample distributions, pre/post pair-identity
    check and outlier flags (rules in prepost.qc)."""
    input:
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
    output:
        samples_qc=report(
            f"{RESULTS}/{{ds}}/qc/samples_qc.tsv",
            caption="../report/samples_qc.rst",
            category="QC",
            subcategory="{ds}",
        ),
        pair_identity=report(
            f"{RESULTS}/{{ds}}/qc/pair_identity.tsv",
            caption="../report/pair_identity.rst",
            category="QC",
            subcategory="{ds}",
        ),
        pca=report(
            f"{RESULTS}/{{ds}}/qc/pca.png",
            caption="../report/pca.rst",
            category="QC",
            subcategory="{ds}",
        ),
        correlation=report(
            f"{RESULTS}/{{ds}}/qc/correlation.png",
            caption="../report/correlation.rst",
            category="QC",
            subcategory="{ds}",
        ),
        distribution=report(
            f"{RESULTS}/{{ds}}/qc/distribution.png",
            caption="../report/distribution.rst",
            category="QC",
            subcategory="{ds}",
        ),
    log:
        f"{LOGS}/{{ds}}/qc.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/qc.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        title=lambda wc: wc.ds,
    script:
        "../scripts/qc.py"


rule qc_library_size:
    """Library size (total counts) per sample of a count dataset."""
    input:
        expression=f"{RESULTS}/{{ds}}/expression.parquet",
        samples=f"{RESULTS}/{{ds}}/samples.tsv",
        summary=f"{RESULTS}/{{ds}}/prepare.json",
    output:
        library_size=report(
            f"{RESULTS}/{{ds}}/qc/library_size.png",
            caption="../report/library_size.rst",
            category="QC",
            subcategory="{ds}",
        ),
    log:
        f"{LOGS}/{{ds}}/qc_library_size.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{ds}}/qc_library_size.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=lambda wc: wc.ds,
    script:
        "../scripts/qc_library_size.py"
