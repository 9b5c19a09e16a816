rule qc:
    """Sample QC of a dataset: PCA (top 500 variable genes, VST or log2) with patients' pre and
    post joined, sample correlation heatmap, per-sample distributions, pre/post pair-identity
    check and outlier flags (rules in prepost.qc.samples)."""
    input:
        **P.prepared("{ds}"),
    output:
        samples_qc=report(
            P.qc("{ds}", "samples_qc"),
            caption="../report/samples_qc.rst",
            category="QC",
            subcategory="{ds}",
        ),
        pair_identity=report(
            P.qc("{ds}", "pair_identity"),
            caption="../report/pair_identity.rst",
            category="QC",
            subcategory="{ds}",
        ),
        pca=report(
            P.qc("{ds}", "pca"),
            caption="../report/pca.rst",
            category="QC",
            subcategory="{ds}",
        ),
        correlation=report(
            P.qc("{ds}", "correlation"),
            caption="../report/correlation.rst",
            category="QC",
            subcategory="{ds}",
        ),
        distribution=report(
            P.qc("{ds}", "distribution"),
            caption="../report/distribution.rst",
            category="QC",
            subcategory="{ds}",
        ),
    log:
        P.log("{ds}", "qc"),
    benchmark:
        P.benchmark("{ds}", "qc")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/qc.py"


rule qc_library_size:
    """Library size (total counts) per sample of a count dataset."""
    input:
        **P.prepared("{ds}"),
    output:
        library_size=report(
            P.qc("{ds}", "library_size"),
            caption="../report/library_size.rst",
            category="QC",
            subcategory="{ds}",
        ),
    log:
        P.log("{ds}", "qc_library_size"),
    benchmark:
        P.benchmark("{ds}", "qc_library_size")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/qc_library_size.py"
