rule de:
    """Differential expression of one contrast: DESeq2's method for counts (prepost.de.nb, or
    pydeseq2 for designs with covariates), a patient-blocked moderated t (limma's empirical
    Bayes) for log2 arrays; the fit record names the engine and dispersion trend.
    """
    input:
        **P.analysis("{ds}"),
    output:
        table=P.de_table("{ds}", "{contrast}"),
        fit=P.de_fit("{ds}", "{contrast}"),
    log:
        P.log("{ds}", "de_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "de_{contrast}")
    conda:
        "../../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        covariates=lambda wc: config["datasets"][wc.ds].get("covariates", []),
        lfc_shrink=lambda wc: config["datasets"][wc.ds].get("lfc_shrink", "none"),
    script:
        "../scripts/de.py"


rule de_plots:
    """Volcano and MA plots of a contrast, and paired slope plots (one line per patient, on the
    DE's size factors) for the genes of interest (default: every gene named in the claims).
    """
    input:
        **P.analysis("{ds}"),
        table=rules.de.output.table,
        claims=config["claims"],
    output:
        volcano=report(
            P.de_plot("{ds}", "{contrast}", "volcano"),
            caption="../report/volcano.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
        ma=P.de_plot("{ds}", "{contrast}", "ma"),
        slopes=P.de_plot("{ds}", "{contrast}", "slopes"),
    log:
        P.log("{ds}", "de_plots_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "de_plots_{contrast}")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        genes_of_interest=lambda wc: config["datasets"][wc.ds].get(
            "genes_of_interest", []
        ),
        covariates=lambda wc: config["datasets"][wc.ds].get("covariates", []),
        title=lambda wc: f"{wc.ds}: {wc.contrast}",
    script:
        "../scripts/de_plots.py"
