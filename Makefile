# Thin wrappers. Every target creates .venv first when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_PORT ?= 5000

.PHONY: setup gpu-tensorflow repro test test-fast lint docs docs-serve serve ui report bench screenshots clean

# GPU=1 (make setup GPU=1): TensorFlow built with CUDA, with the CUDA libraries from PyPI
# (tensorflow[and-cuda]), instead of the default CPU-only build. The choice is remembered in
# $(GPU_MARK), so a reinstall after pyproject.toml changes keeps it; `make setup GPU=0` goes back.
GPU_MARK := $(VENV)/.gpu
TF_VERSION := $(shell sed -n 's/.*"tensorflow-cpu==\([0-9.]*\)".*/\1/p' pyproject.toml)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@if [ -f $(GPU_MARK) ]; then $(MAKE) --no-print-directory gpu-tensorflow; fi
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned dependencies (GPU=1: CUDA TensorFlow)
ifeq ($(GPU),1)
	@touch $(GPU_MARK)
	@$(MAKE) --no-print-directory gpu-tensorflow
else ifeq ($(GPU),0)
	@if [ -f $(GPU_MARK) ]; then rm $(GPU_MARK) && \
		$(BIN)/python -m pip uninstall --quiet -y tensorflow && \
		$(BIN)/python -m pip install --quiet "tensorflow-cpu==$(TF_VERSION)"; fi
endif

gpu-tensorflow:
	@if $(BIN)/python -m pip show tensorflow-cpu >/dev/null 2>&1; then \
		echo "replacing tensorflow-cpu $(TF_VERSION) with tensorflow[and-cuda] $(TF_VERSION)"; \
		$(BIN)/python -m pip uninstall --quiet -y tensorflow-cpu && \
		$(BIN)/python -m pip install --quiet "tensorflow[and-cuda]==$(TF_VERSION)"; fi
	@$(BIN)/python -c "import tensorflow as tf; print('TensorFlow', tf.__version__, \
		'built with CUDA:', tf.test.is_built_with_cuda(), '| GPUs:', \
		[d.name for d in tf.config.list_physical_devices('GPU')] or 'none visible')"

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
