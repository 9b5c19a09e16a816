rule lane_qc:
    """NanoString lane QC of a nanostring dataset's RCC files: imaging, binding density,
    positive-control linearity and limit of detection (thresholds in prepost.qc.lanes).
    """
    input:
        rcc=lambda wc: rcc_files(config["datasets"][wc.ds]),
    output:
        lanes=P.lanes("{ds}"),
    log:
        P.log("{ds}", "lane_qc"),
    benchmark:
        P.benchmark("{ds}", "lane_qc")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=lambda wc: config["datasets"][wc.ds].get("rcc", {}).get("lane_qc", {}),
    script:
        "../scripts/lane_qc.py"
