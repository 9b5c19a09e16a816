rule gene_map:
    """Bring one configured gene identifier map into the cache through the download client
    (a path is copied, a URL fetched; sha256 checked when given) and check that it parses.
    """
    input:
        lambda wc: [
            m["path"]
            for m in gene_maps_of(wc.ds)[int(wc.i) : int(wc.i) + 1]
            if "path" in m
        ],
    output:
        P.gene_map("{ds}", "{i}"),
    log:
        P.log("{ds}", "gene_map{i}"),
    benchmark:
        P.benchmark("{ds}", "gene_map{i}")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        source=lambda wc: gene_maps_of(wc.ds)[int(wc.i)],
        settings=download_settings(),
    script:
        "../scripts/gene_map.py"


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
