#!/usr/bin/env bash
# Snakemake runs this once in the freshly created conda env of envs/<name>.yaml (--sdm conda;
# also --conda-create-envs-only): it installs the workflow's own package, prepost, which the
# rules' scripts import. Snakemake runs a copy of this file from .snakemake/conda/, so the
# checkout is found through PREPOST_WORKFLOW_DIR, set by workflow/rules/common.smk.
# (A relative `pip: -e ..` in the env file cannot work: Snakemake copies the env file to
# .snakemake/conda/ and conda runs pip from there.)
set -euo pipefail
src="${PREPOST_WORKFLOW_DIR:-}"
if [ -z "$src" ] || [ ! -f "$src/pyproject.toml" ] || [ ! -d "$src/src/prepost" ]; then
    echo "prepost post-deploy: PREPOST_WORKFLOW_DIR='$src' is not a prepost checkout" \
        "(pyproject.toml and src/prepost expected). Run Snakemake on a local checkout of the" \
        "workflow (a clone, or a module whose snakefile is a local path)." >&2
    exit 1
fi
# editable: the env runs the checkout's code, also after the checkout is updated
python -m pip install --no-deps --no-input --quiet -e "$src"
