# Thin wrappers. Every target creates .venv first when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_PORT ?= 5000

.PHONY: setup repro test test-fast lint docs docs-serve serve ui report bench screenshots clean

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

lint: $(STAMP)  ## ruff: lint and import order (pyproject.toml [tool.ruff]); CI runs it first
	$(BIN)/ruff check .

docs: $(STAMP)  ## the documentation site into site/ (mkdocs.yml), built --strict as CI builds it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)  ## the documentation site on http://127.0.0.1:8001, rebuilt on every edit
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# docs/screenshots.py copies two of test-artifacts/*.png into docs/images/ and fails if one is
# missing or older than this run (a skipped test). The MLflow test needs TEXTRNN_DATA_MIRROR.
screenshots: $(STAMP)  ## docs/images/*.png from the browser tests (web page, MLflow compare view)
	@mkdir -p test-artifacts && touch test-artifacts/.screenshots-started
	TEXTRNN_DATA_MIRROR="$(TEXTRNN_DATA_MIRROR)" $(BIN)/python -m pytest -q \
		tests/service/test_browser_serving.py tests/team/test_browser_mlflow.py
	$(BIN)/python docs/screenshots.py --since test-artifacts/.screenshots-started

serve: $(STAMP)  ## HTTP API + web page on http://127.0.0.1:8000 with the champion models
	$(BIN)/textrnn serve

ui: $(STAMP)  ## MLflow UI on http://127.0.0.1:$(UI_PORT) over params.yaml's tracking store
	$(BIN)/textrnn ui --port $(UI_PORT)

report: $(STAMP)  ## reports/compare.md + reports/plots*/index.html: workspace vs previous commit
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/textrnn report

clean:  ## remove caches (keeps data/, models/ and .venv)
	rm -rf .pytest_cache .ruff_cache

bench: $(STAMP)  ## every benchmark side by side with the naive way, one table (after make repro)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run_all.py
