# One de job per dataset (every contrast): one rule per list of contrasts (CONTRAST_GROUPS).
for i, (contrasts, datasets) in enumerate(CONTRAST_GROUPS):

    rule:
        """Differential expression of every contrast of a dataset: DESeq2's method for counts
        (prepost.de.nb, or pydeseq2 for designs with covariates), a patient-blocked moderated t
        (limma's empirical Bayes) for log2 arrays; each fit record names the engine and
        dispersion trend. With unwanted_factors k > 0, k svaseq surrogate variables
        (prepost.de.hidden) join the design. The within-group and interaction presets are
        three Wald tests of one count fit of ~ patient + post:response, made once (as one
        DESeq() and three results() in R). Also writes the per-gene model diagnostics and the
        hidden factors per sample, and draws each contrast's figures in the same job: volcano
        and MA plots, paired slope plots (one line per patient, on the DE's size factors) of
        the genes of interest (default: every gene named in the claims; a param, so the fit
        reruns only when that gene list changes), the p-value histogram, the model diagnostic
        (dispersions vs mean for counts as DESeq2's plotDispEsts, residual SD vs mean for
        arrays as limma's plotSA) and PC1/PC2 coloured by each hidden factor (a note when
        unwanted_factors is 0). One job per dataset (prepost.de.job): a contrast's fit and
        figures take about a second on the demo, a job's start and imports as long; with 2
        threads (DATASET_JOB_THREADS) the contrasts run side by side in two forked workers
        (prepost.parallel).
        """
        name:
            "de" if i == 0 else f"de_{i + 1}"
        input:
            **P.analysis("{ds}"),
        output:
            **de_outputs(contrasts),
        log:
            P.log("{ds}", "de"),
        benchmark:
            P.benchmark("{ds}", "de")
        wildcard_constraints:
            ds="|".join(datasets),
        priority: 1
        conda:
            "../../envs/analysis.yaml"
        threads: DATASET_JOB_THREADS
        resources:
            mem_mb=4000,
            runtime=120,
        params:
            contrasts=list(contrasts),
            covariates=lambda wc: config["datasets"][wc.ds].get("covariates", []),
            lfc_shrink=lambda wc: config["datasets"][wc.ds].get("lfc_shrink", "none"),
            unwanted_factors=lambda wc: config["datasets"][wc.ds].get(
                "unwanted_factors", 0
            ),
            unpaired=lambda wc: config["datasets"][wc.ds]["pairing"].get(
                "unpaired", "drop"
            ),
            definitions=lambda wc: declared_contrasts(wc.ds),
            genes=lambda wc: slope_genes(wc.ds),
            dataset=lambda wc: wc.ds,
        script:
            "../scripts/de.py"
