# Thin wrappers. Every target creates .venv first when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup repro test test-fast serve ui bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned dependencies

repro: $(STAMP)  ## run the whole pipeline (reads $$TEXTRNN_DATA_MIRROR when set)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)  ## the full test suite (what CI runs)
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## skip the slow tests
	$(BIN)/python -m pytest -m "not slow"

clean:  ## remove caches (keeps data/, models/ and .venv)
	rm -rf .pytest_cache .ruff_cache
