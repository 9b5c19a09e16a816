# prepost: paired pre-/post-treatment tumour expression.
# The workflow is workflow/Snakefile (the catalog's standard layout, what snakedeploy deploys);
# this file lets `snakemake` and `snakemake -s Snakefile` run it from the clone's root as before.
# Included as Snakemake includes a main Snakefile, so that its `rule all` stays the default
# target (the `include:` directive keeps an included file's default target out).

workflow.include("workflow/Snakefile", overwrite_default_target=True)
