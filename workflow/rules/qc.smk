rule qc:
    """Sample QC of a dataset and what the models use: PCA (top 500 variable genes, VST or
    log2) with patients' pre and post joined, scree plot, PC-field associations, correlation
    heatmap, distributions; robust-distance and correlation outliers, expressed sex, pair
    identity on germline-driven genes, foreign reads (prepost.qc); then qc.exclude applied to
    the sample sheet (samples_used.tsv, pairs_used.tsv; prepost.qc.exclude)."""
    input:
        **P.prepared("{ds}"),
        pairs=P.pairs("{ds}"),
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
        pair_distances=P.qc("{ds}", "pair_distances"),
        pc_associations=P.qc("{ds}", "pc_associations"),
        exclusions=P.qc("{ds}", "exclusions"),
        samples_used=P.analysis_samples("{ds}"),
        pairs_used=P.analysis_pairs("{ds}"),
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
        scree=P.qc("{ds}", "scree"),
        associations=report(
            P.qc("{ds}", "associations"),
            caption="../report/associations.rst",
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
    params:
        exclude=lambda wc: config["datasets"][wc.ds]
        .get("qc", {})
        .get("exclude", "none"),
        listed=lambda wc: config["datasets"][wc.ds].get("qc", {}).get("samples", []),
    script:
        "../scripts/qc.py"


rule qc_impact:
    """post_vs_pre with and without the samples QC flagged: the numbers of DE genes side by
    side (prepost.qc.impact); one row saying so when QC flagged nothing."""
    input:
        **P.prepared("{ds}"),
        samples_used=P.analysis_samples("{ds}"),
        pairs=P.pairs("{ds}"),
        samples_qc=P.qc("{ds}", "samples_qc"),
        fit=P.de_fit("{ds}", "post_vs_pre"),
    output:
        impact=P.qc("{ds}", "impact"),
    log:
        P.log("{ds}", "qc_impact"),
    benchmark:
        P.benchmark("{ds}", "qc_impact")
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        exclude=lambda wc: config["datasets"][wc.ds]
        .get("qc", {})
        .get("exclude", "none"),
        listed=lambda wc: config["datasets"][wc.ds].get("qc", {}).get("samples", []),
    script:
        "../scripts/qc_impact.py"


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
