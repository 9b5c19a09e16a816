rule report:
    """One self-contained HTML report (images inlined, no external files): datasets and
    pairing, QC, DE, enrichment, claims, provenance and a methods paragraph. Runs last and
    alone: its threads encode the plots side by side."""
    input:
        report_inputs(),
    output:
        html=report(
            P.report(),
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        P.log("", "report"),
    benchmark:
        P.benchmark("", "report")
    conda:
        "../../envs/report.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        layout=report_layout(),
        config=config,
        snakemake_version=SNAKEMAKE_VERSION,
    script:
        "../scripts/report.py"
