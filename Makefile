# Credit-scoring pipeline. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
# Stages call `python`; this puts the project's interpreter first.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export OMP_WAIT_POLICY ?= PASSIVE
export GX_ANALYTICS_ENABLED := false
export MPLBACKEND := Agg

.PHONY: help setup browser lock run repro metrics test test-fast lint format mlflow-ui figures bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --compile-bytecode: the packages' bytecode is written once here, so no stage or test process
# compiles mlflow, sklearn or great-expectations from source (where PYTHONDONTWRITEBYTECODE is
# set, as on the machines this was measured on, every process would).
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed ## create .venv and install the locked dependencies and the package

# The reviewer report's test renders it in Debian's chromium; installed only when missing.
CHROMIUM := /usr/bin/chromium
browser: ## install Debian's chromium for the report's browser test (no-op when present)
	@if [ ! -x $(CHROMIUM) ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi

lock: | $(BIN)/python ## re-resolve requirements.lock from pyproject.toml (after changing a dependency)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

run: setup ## set up and run the whole pipeline on the default data (dvc repro), then show the metrics
	$(BIN)/dvc repro
	$(BIN)/scoring summary

repro: setup ## rerun the stages whose inputs changed
	$(BIN)/dvc repro

metrics: setup ## show the headline metrics by split
	$(BIN)/scoring summary

# pytest-xdist workers (one per core of the 2-core CI machine); tests sharing a pipeline
# fixture stay on one worker (tests/conftest.py). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: setup browser ## set up and run every test, the slow end-to-end ones included
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: setup browser ## run the tests not marked slow
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

lint: setup ## ruff (lint + format check), mypy and the import contracts (lint-imports)
	$(BIN)/ruff check src tests pipelines benchmarks
	$(BIN)/ruff format --check src tests pipelines benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests pipelines benchmarks
	$(BIN)/ruff format src tests pipelines benchmarks

mlflow-ui: setup ## open the MLflow UI on the local store (http://127.0.0.1:5000); prints the runs page
	@$(BIN)/python -c 'from scoring.config import load_params; from scoring.tracking import runs_page_url; \
	print("runs of this project:", runs_page_url("http://127.0.0.1:5000", load_params().export.experiment_name))'
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port 5000

# The results files README and docs quote, each from its benchmark, then the quoted figures
# rewritten from them and checked (benchmarks/figures.py lists the jobs and their times).
FIGURES ?= quick
figures: run ## regenerate the results files the docs quote and rewrite their figures (about 35 min; FIGURES=all about 3 h)
	$(BIN)/python benchmarks/figures.py --set $(FIGURES)

bench: figures ## the same as figures

clean: ## remove pipeline outputs (keeps .venv and the DVC cache)
	rm -rf data/prepared data/validated data/split data/scores data/truth models/pd_model models/*.json models/*.ubj reports/*
