# prepost: `make run` runs the demo workflow, `make test` runs the tests.
# Both create .venv with the pinned dependencies (requirements.txt) on first use.
SHELL := /bin/bash
# Python 3.11, 3.12 or 3.13 (only 3.11 is tested here): the first of them found, else python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run bytecode test test-fast test-slurm lint fmt dryrun report clean demo-data setup bench-de bench-de-real bench-enrich check-pins conda-envs

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "prepost needs Python 3.11, 3.12 or 3.13, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Does every pin of requirements.txt install on Python 3.11, 3.12 and 3.13? (asks the package
# index for wheels of each; pure-Python source-only packages are listed, they build anywhere)
check-pins: $(STAMP)
	$(BIN)/python tools/check_pins.py 3.11 3.12 3.13

# Create the rules' conda environments without running a job (then copy .snakemake/conda or
# share --conda-prefix with an offline cluster node); needs conda and network here.
conda-envs: $(STAMP)
	$(BIN)/snakemake --sdm conda --conda-create-envs-only --cores 1

# Bytecode of src/: pip compiles what it installs, but an editable install leaves src/ to be
# compiled on import, and nothing is written when PYTHONDONTWRITEBYTECODE is set, so every job
# compiled prepost again (0.1-0.2 s a job). 0.05 s when up to date; an edit is still picked up
# (Python checks the source's mtime).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src

run: bytecode
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Real SLURM test (root; installs slurm-wlm + munge, one-node cluster on 127.0.0.1).
test-slurm: $(STAMP)
	PREPOST_PYTHON=$(abspath $(BIN)/python) bash tests/slurm/run_slurm_test.sh

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/Snakefile workflow/rules

fmt: $(STAMP)
	$(BIN)/snakefmt Snakefile workflow/Snakefile workflow/rules

dryrun: $(STAMP)
	$(BIN)/snakemake -n

report: $(STAMP)
	$(BIN)/snakemake --report results/snakemake-report.html

demo-data: $(STAMP)
	$(BIN)/python tools/prepost_demo.py resources/demo

clean:
	rm -rf results .snakemake

# Paired DE speed/accuracy against R DESeq2 and limma, and against BENCH_REF (before/after ratios;
# needs R with DESeq2, limma; glmGamPoi for its methods; see benchmarks/de/README.md)
bench-de: $(STAMP)
	$(BIN)/python benchmarks/de/run.py --ref $(BENCH_REF) $(BENCH_ARGS)

# nb against R DESeq2 on the whole of real GSE91061 (needs ../shared/data and R with DESeq2)
bench-de-real: $(STAMP)
	$(BIN)/python benchmarks/de/gse91061.py $(BENCH_ARGS)

# gseapy prerank against an independent permutation reference (benchmarks/enrich/README.md)
bench-enrich: $(STAMP)
	$(BIN)/python benchmarks/enrich/bench_prerank.py $(BENCH_ARGS)

.PHONY: bench-scale bench-dag bench-report bench-demo

# The commit the speed benchmarks compare against (before/after ratios in the same run): main
# before issue 19's changes. `make bench-scale BENCH_REF=<commit>` for another.
BENCH_REF ?= 3f723e1

# Whole workflow on generated 20,000-gene cohorts: wall time, per-rule time and peak RSS, and
# head/ref ratios against BENCH_REF (benchmarks/scale/README.md)
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale/run.py --ref $(BENCH_REF) $(BENCH_ARGS)

# The HTML report at 16 x 200 samples: size, plots linked, Chromium open time (needs `make bench-scale BENCH_ARGS="--scenarios s200"` first)
bench-report: $(STAMP)
	$(BIN)/python benchmarks/scale/report_scale.py $(BENCH_ARGS)

# The demo end to end, HEAD against BENCH_REF, alternating runs (BENCH_ARGS="--repeat 3")
bench-demo: $(STAMP)
	$(BIN)/python benchmarks/scale/demo.py --ref $(BENCH_REF) $(BENCH_ARGS)

# Snakemake overhead: dry run and --dag of 16 datasets (target < 5 s), against BENCH_REF
bench-dag: $(STAMP)
	$(BIN)/python benchmarks/scale/run.py --dag --ref $(BENCH_REF) $(BENCH_ARGS)

.PHONY: bench-qc
# QC rules against simulated truth: detection and false-flag rates (benchmarks/qc/rates.py)
bench-qc: $(STAMP)
	$(BIN)/python benchmarks/qc/rates.py $(BENCH_ARGS)
