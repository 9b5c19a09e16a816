rule download:
    """Fetch one GEO file of a dataset (series matrix, family SOFT, platform annotation,
    supplementary or NCBI-generated counts and their gene annotation) with retries and checks;
    offline mode uses only the cache. One job per file, so a deleted cached file is fetched
    again, alone."""
    output:
        file=update(P.geo_file("{ds}", "{file}")),
        record=P.download_record("{ds}", "{file}"),
    log:
        P.log("{ds}", "download.{file}"),
    benchmark:
        P.benchmark("{ds}", "download.{file}")
    retries: 1
    conda:
        "../../envs/download.yaml"
    resources:
        mem_mb=500,
        runtime=60,
    params:
        relpath=lambda wc: GEO_FILES[wc.ds][wc.file],
        base_url=lambda wc: geo_base_url(GEO_FILES[wc.ds][wc.file]),
        settings=download_settings(),
    script:
        "../scripts/download.py"


rule download_manifest:
    """A dataset's manifest (file, url, bytes, sha256, date, status), after checking that every
    cached file is still the one downloaded."""
    input:
        files=lambda wc: geo_files(wc.ds),
        records=lambda wc: [P.download_record(wc.ds, f) for f in GEO_FILES[wc.ds]],
    output:
        manifest=P.manifest("{ds}"),
    log:
        P.log("{ds}", "download_manifest"),
    benchmark:
        P.benchmark("{ds}", "download_manifest")
    conda:
        "../../envs/download.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    script:
        "../scripts/download_manifest.py"
