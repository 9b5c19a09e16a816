rule prepare:
    """Parse the series matrix / count table, map probes to genes, log2 when needed, pair the
    samples by patient and check the design before any model runs."""
    input:
        unpack(prepare_input),
    output:
        expression=P.expression("{ds}"),
        samples=P.samples("{ds}"),
        pairs=P.pairs("{ds}"),
        summary=P.summary("{ds}"),
    log:
        P.log("{ds}", "prepare"),
    benchmark:
        P.benchmark("{ds}", "prepare")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        dataset=lambda wc: params_of(wc, "prepare"),
    script:
        "../scripts/prepare.py"
