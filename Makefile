# Two commands for a newcomer: `make demo` and `make test`. Both run the idempotent setup first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# tests run in parallel workers (pytest-xdist; groups in tests/conftest.py), one per core
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: setup demo test lint fmt clean

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) tests

lint: setup
	$(BIN)/ruff check src scripts tests
	$(BIN)/ruff format --check src scripts tests
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

fmt: setup
	$(BIN)/snakefmt Snakefile workflow
	$(BIN)/ruff format src scripts tests

clean:
	rm -rf results logs benchmarks .snakemake
