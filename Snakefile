# prepost: paired pre-/post-treatment tumour expression.
# `snakemake --cores all` runs the default config (the embedded demo, no network needed).


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/de.smk"
include: "workflow/rules/claims.smk"


rule all:
    input:
        all_targets(),
    default_target: True
