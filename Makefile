# The README's two commands: `make repro` (set-up + the main job) and `make test` (set-up + tests).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test benchmark dvc.yaml

setup: $(VENV)/.installed

# torch first, pinned, so pip takes the local CPU wheel instead of a CUDA build.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 "setuptools>=77.0.3,<82"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $@

# dvc.yaml is generated from params.yaml (per-run stages and code dependencies).
dvc.yaml: setup
	python -m pipeline.dvc_stages

repro: dvc.yaml
	dvc repro

test: setup
	python -m pytest

benchmark: setup
	python -m benchmarks.seed_batching
	python -m benchmarks.update_efficiency
	python -m benchmarks.recurrent_batching
	python -m benchmarks.env_throughput
	python -m benchmarks.paper_cost
