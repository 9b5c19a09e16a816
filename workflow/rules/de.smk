rule de:
    """Differential expression of one contrast: DESeq2's method for counts (prepost.de.nb, or
    pydeseq2 for designs with covariates), a patient-blocked moderated t (limma's empirical
    Bayes) for log2 arrays; the fit record names the engine and dispersion trend. With
    unwanted_factors k > 0, k svaseq surrogate variables (prepost.de.hidden) join the design.
    Also writes the per-gene model diagnostics and the hidden factors per sample, and draws the
    contrast's figures in the same job (one interpreter start per contrast instead of two):
    volcano and MA plots, paired slope plots (one line per patient, on the DE's size factors)
    of the genes of interest (default: every gene named in the claims; a param, so the fit
    reruns only when that gene list changes), the p-value histogram, the model diagnostic
    (dispersions vs mean for counts as DESeq2's plotDispEsts, residual SD vs mean for arrays as
    limma's plotSA) and PC1/PC2 coloured by each hidden factor (a note when unwanted_factors
    is 0).
    """
    input:
        **P.analysis("{ds}"),
    output:
        table=P.de_table("{ds}", "{contrast}"),
        fit=P.de_fit("{ds}", "{contrast}"),
        model=P.de_model("{ds}", "{contrast}"),
        factors=P.de_factors("{ds}", "{contrast}"),
        volcano=report(
            P.de_plot("{ds}", "{contrast}", "volcano"),
            caption="../report/volcano.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
        ma=P.de_plot("{ds}", "{contrast}", "ma"),
        slopes=P.de_plot("{ds}", "{contrast}", "slopes"),
        pvalues=report(
            P.de_plot("{ds}", "{contrast}", "pvalues"),
            caption="../report/pvalues.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
        model_plot=report(
            P.de_plot("{ds}", "{contrast}", "model"),
            caption="../report/model.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
        factors_plot=report(
            P.de_plot("{ds}", "{contrast}", "factors"),
            caption="../report/factors.rst",
            category="Differential expression",
            subcategory="{ds}",
        ),
    log:
        P.log("{ds}", "de_{contrast}"),
    benchmark:
        P.benchmark("{ds}", "de_{contrast}")
    priority: 1
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        covariates=lambda wc: config["datasets"][wc.ds].get("covariates", []),
        lfc_shrink=lambda wc: config["datasets"][wc.ds].get("lfc_shrink", "none"),
        unwanted_factors=lambda wc: config["datasets"][wc.ds].get("unwanted_factors", 0),
        unpaired=lambda wc: config["datasets"][wc.ds]["pairing"].get("unpaired", "drop"),
        definitions=lambda wc: declared_contrasts(wc.ds),
        genes=lambda wc: slope_genes(wc.ds),
        title=lambda wc: f"{wc.ds}: {wc.contrast}",
    script:
        "../scripts/de.py"


ruleorder: de_grouped > de


rule de_grouped:
    """The within-group contrasts (post_vs_pre_responder, post_vs_pre_non_responder) and the
    interaction, in one job: for counts they are three Wald tests of one fit of ~ patient +
    post:response (as one DESeq() call and three results() in R), made once here instead of
    three times; for arrays one interpreter start instead of three. The same files as the de
    rule, each contrast's figures included. Used for the datasets that configure all three as
    presets (GROUPED_DATASETS); otherwise the de rule makes each. Priority: this longest job
    first, then the de jobs, enrichment after (the shortest tail)."""
    input:
        **P.analysis("{ds}"),
    output:
        **grouped_outputs(),
    log:
        P.log("{ds}", "de_grouped"),
    benchmark:
        P.benchmark("{ds}", "de_grouped")
    wildcard_constraints:
        ds="|".join(GROUPED_DATASETS) or "^$",
    priority: 2
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        contrasts=list(GROUPED),
        covariates=lambda wc: config["datasets"][wc.ds].get("covariates", []),
        lfc_shrink=lambda wc: config["datasets"][wc.ds].get("lfc_shrink", "none"),
        unwanted_factors=lambda wc: config["datasets"][wc.ds].get("unwanted_factors", 0),
        unpaired=lambda wc: config["datasets"][wc.ds]["pairing"].get("unpaired", "drop"),
        definitions=lambda wc: declared_contrasts(wc.ds),
        genes=lambda wc: slope_genes(wc.ds),
        dataset=lambda wc: wc.ds,
        plots=list(DE_PLOTS),
    script:
        "../scripts/de_grouped.py"
