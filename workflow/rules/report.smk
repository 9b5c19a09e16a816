def report_layout():
    """Result paths the HTML report reads, per dataset (see prepost.report)."""
    datasets = {}
    for ds in expression_datasets():
        qc_dir = f"{RESULTS}/{ds}/qc"
        plots = {
            "PCA": f"{qc_dir}/pca.png",
            "Sample correlation": f"{qc_dir}/correlation.png",
            "Distribution": f"{qc_dir}/distribution.png",
        }
        if ds in count_datasets():
            plots["Library size"] = f"{qc_dir}/library_size.png"
        datasets[ds] = {
            "samples": f"{RESULTS}/{ds}/samples.tsv",
            "pairs": f"{RESULTS}/{ds}/pairs.tsv",
            "summary": f"{RESULTS}/{ds}/prepare.json",
            "manifest": (
                f"{RESOURCES}/geo/{ds}/manifest.tsv" if ds in GEO_DATASETS else None
            ),
            "qc": {
                "samples_qc": f"{qc_dir}/samples_qc.tsv",
                "pair_identity": f"{qc_dir}/pair_identity.tsv",
                "plots": plots,
            },
            "contrasts": {
                c: {
                    "table": f"{RESULTS}/{ds}/de/{c}.tsv",
                    "volcano": f"{RESULTS}/{ds}/de/{c}.volcano.png",
                    "ma": f"{RESULTS}/{ds}/de/{c}.ma.png",
                    "slopes": f"{RESULTS}/{ds}/de/{c}.slopes.png",
                    "gsea": f"{RESULTS}/{ds}/enrich/{c}/gsea.tsv",
                    "dotplot": f"{RESULTS}/{ds}/enrich/{c}/gsea.dotplot.png",
                }
                for c in contrasts_of(ds)
            },
            "set_slopes": f"{RESULTS}/{ds}/enrich/set_scores.slopes.png",
        }
    return {"datasets": datasets, "claims": f"{RESULTS}/claims.tsv"}


def report_inputs():
    """Every file of report_layout(), flattened (the rule's inputs)."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, str):
            found.append(x)

    walk(report_layout())
    return sorted(set(found))


rule report:
    """One self-contained HTML report (images inlined, no external files): datasets and
    pairing, QC, DE, enrichment, claims, provenance and a methods paragraph."""
    input:
        report_inputs(),
    output:
        html=report(
            f"{RESULTS}/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        f"{LOGS}/report.log",
    conda:
        "../../envs/prepost.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        layout=report_layout(),
        config=config,
    script:
        "../scripts/report.py"
