# prepost: paired pre-/post-treatment tumour expression.
# The workflow is workflow/Snakefile (the catalog's standard layout, what snakedeploy deploys);
# this file lets `snakemake` and `snakemake -s Snakefile` run it from the clone's root as before.


include: "workflow/Snakefile"


rule default:
    """Everything `rule all` asks for (an included file's default target does not count)."""
    default_target: True
    input:
        rules.all.input,
