# recoup-runs: the front door. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RECOUP := $(VENV)/bin/recoup
STAMP := $(VENV)/.installed-stamp
PORT ?= 8787

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format emulator sync models report status demo bench clean maintain

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the pinned dependencies

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP) ## run the whole test suite (as CI does)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests not marked slow, in under a minute
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check, format check, the mypy type check and the import layers
	$(PY) -m ruff check pipelines tools tests
	$(PY) -m ruff format --check pipelines tools tests
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: $(STAMP) ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix pipelines tools tests
	$(PY) -m ruff format pipelines tools tests

emulator: $(STAMP) ## serve the Recoup API emulator on 127.0.0.1:8787 (PORT=... to change)
	$(RECOUP) emulator --port $(PORT)

sync: $(STAMP) ## one sync of every configured account into RECOUP_DB (see README)
	$(RECOUP) sync

models: $(STAMP) ## rebuild the SQL models of sql/ in RECOUP_DB
	$(RECOUP) models

report: $(STAMP) ## write the cost report into RECOUP_REPORTS_DIR (default reports/)
	$(RECOUP) report

status: $(STAMP) ## per account: last good sync, failures, gaps, details backlog
	$(RECOUP) status

demo: $(STAMP) ## zero-config, in demo/: emulator, two syncs, the report
	$(RECOUP) demo

bench: $(STAMP) ## benchmark against the machine's limit and dlt's rest_api (QUICK=1: small)
	QUICK=$(QUICK) $(PY) -m tools.bench

clean: ## remove the venv, local data and reports
	rm -rf $(VENV) data reports demo bench-data .pytest_cache .mypy_cache

maintain: $(STAMP) ## RECOUP_LAKE only: merge small files, expire old snapshots, delete unused files
	$(RECOUP) maintain
