# prepost: paired pre-/post-treatment tumour expression.
# `snakemake --cores all` runs the default config (the embedded demo, no network needed).
# The config file comes from profiles/default (configfile: config/config.yaml), so that
# `--configfile my.yaml` replaces it instead of being merged into the demo's datasets.


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/de.smk"
include: "workflow/rules/enrich.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/lanes.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
