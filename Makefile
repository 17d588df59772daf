# The README's two commands: `make repro` (set-up + the main job) and `make test` (set-up + tests).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro repro-dvc dry evidence evidence-files test benchmark bundle dvc.yaml

setup: $(VENV)/.installed

# torch first, pinned, so pip takes the local CPU wheel instead of a CUDA build.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 "setuptools>=77.0.3,<82"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test,tracking]"
	# marl-eval, for the test that loads our export in it: id-marl-eval 0.0.4 pins pandas==1.4.4
	# and neptune, which this environment cannot hold, and the modules the test imports need only
	# numpy and colorama, so it is installed without its declared dependencies.
	$(BIN)/python -m pip install --quiet --no-deps id-marl-eval==0.0.4 colorama==0.4.6
	touch $@

# dvc.yaml is generated from params.yaml (per-run stages and code dependencies).
dvc.yaml: setup
	python -m pipeline.design.dvc_stages

# The evidence instance (evidence/, a DVC project of its own: issue 28): runs at budgets where
# learning shows, planned in evidence.yaml, results committed in git. `make repro` never builds
# it; `make evidence` builds what changed there (STAGES="train-<run> ..." for some only). Its
# params.yaml, claims.yaml, checks.yaml and dvc.yaml are derived from the root files (make evidence-files).
evidence-files: setup
	python -m pipeline.design.evidence
	cd evidence && python -m pipeline.design.dvc_stages

STAGES ?=
evidence: evidence-files
	cd evidence && python -m pipeline.runtime.parallel_repro --jobs $(JOBS) $(STAGES)

# The fastest correct builder: pipeline/runtime/parallel_repro.py runs DVC's own plan, JOBS stages
# at once (default: the usable cores) on a Dask LocalCluster and records dvc.lock in batches: the
# same dvc.lock as `dvc repro` (tested). `make repro-dvc` is plain `dvc repro`. A build estimated at over an hour on this machine stops first and says
# what it would cost (pipeline/runtime/cost_gate.py): ACCEPT_COST=1 starts it.
JOBS ?= $(shell nproc)
ACCEPT_COST ?=
export HARNESS_ACCEPT_COST := $(ACCEPT_COST)
repro: dvc.yaml
	python -m pipeline.runtime.parallel_repro --jobs $(JOBS)

repro-dvc: dvc.yaml
	python -m pipeline.runtime.cost_gate
	dvc repro

# What `make repro` would run, and why (DVC's own `dvc repro --dry` stops on a fresh clone).
dry: dvc.yaml
	python -m pipeline.runtime.parallel_repro --dry

# A published bundle of figures, tables, report and locks, with a SHA-256 manifest.
BUNDLE ?= bundles/marl-repro-$(shell git rev-parse --short HEAD).tar.gz
bundle: setup
	python -m pipeline.report.bundle build $(BUNDLE)
	python -m pipeline.report.bundle verify $(BUNDLE)

test: setup
	python -m pytest

benchmark: setup
	python -m benchmarks.seed_batching
	python -m benchmarks.update_efficiency
	python -m benchmarks.recurrent_batching
	python -m benchmarks.env_throughput
	python -m benchmarks.paper_cost
