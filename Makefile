# Two commands for a newcomer: `make demo` and `make test`. Both run the idempotent setup first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
PYTEST_ARGS ?=

.PHONY: setup demo test lint fmt clean

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests

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
