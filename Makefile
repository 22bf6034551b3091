# The two commands of README.md. Both create .venv when it is missing and are quick on a second
# run: each install step leaves a stamp in .venv and reruns only when its inputs change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.guidezoo-core
ALL_STAMP := $(VENV)/.guidezoo-all

.PHONY: demo test lint

demo: $(CORE_STAMP)
	$(BIN)/zoo demo

test: lint
	$(BIN)/python -m pytest

lint: $(ALL_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

# torch comes first (mmcv's ops compile against it), then compiled mmcv, then the mmseg extra,
# which finds mmcv 2.1.0 already installed instead of trying to build PyPI's sdist.
$(ALL_STAMP): pyproject.toml tools/install_mmcv.sh | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	PYTHON=$(BIN)/python bash tools/install_mmcv.sh
	$(BIN)/python -m pip install -e '.[mmseg,dev]'
	touch $@ $(CORE_STAMP)
