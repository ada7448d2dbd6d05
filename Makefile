# Sluice: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit bench lint format typecheck check clean

# Test processes in parallel: e2e tests mostly wait (group joins, idle checks), so more than
# the cores; each has its own broker, and every test its own schema and app id.
TEST_WORKERS ?= 8

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Sluice needs Python 3.11 or newer: run make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install Sluice with its development tools

run: $(STAMP) ## run Sluice: dev broker (unless KAFKA_BOOTSTRAP_SERVERS), SQLite file (unless DATABASE_URL), a worker serving the API
	$(BIN)/sluice run

test: $(STAMP) ## run the whole suite in parallel (starts its own brokers; PostgreSQL from DATABASE_URL, the local server, or a throwaway one)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test-unit: $(STAMP) ## run the unit tests only (seconds: no broker, no database)
	$(BIN)/python -m pytest -m unit

bench: $(STAMP) ## import 1,000,000 users end to end, export them in each format (compare with COPY), and 200,000 through the input topic beside HTTP
	$(BIN)/python -m tests.bench.bench_import
	$(BIN)/python -m tests.bench.bench_export
	$(BIN)/python -m tests.bench.bench_upstream

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check streams api tests
	$(BIN)/ruff format --check streams api tests

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix streams api tests
	$(BIN)/ruff format streams api tests

typecheck: $(STAMP) ## mypy on streams/ and api/
	$(BIN)/mypy

check: lint typecheck test ## lint + typecheck + tests

clean: ## remove the virtualenv, local state and caches
	rm -rf $(VENV) .sluice sluice.db sluice.db-* .pytest_cache .mypy_cache .ruff_cache
