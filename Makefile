# Two commands on a fresh machine: `make serve` runs the intake server, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench-cli clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# setuptools 70.1 and later build the editable wheel themselves: older ones (Python 3.11's
	@# venv has 65) needed the `wheel` package and printed ~30 lines of "invalid command
	@# 'bdist_wheel'" before a fallback install worked.
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=70.1"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	@# Without the advice setuptools prints on every editable install (a warning, not an error).
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@# Byte-code up front: leadctl starts ~2x slower where PYTHONDONTWRITEBYTECODE stops caching.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib leadctl intake >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the locked dependencies and leadctl itself

serve: install  ## run the intake server on $(HOST):$(PORT), e.g. make serve HOST=0.0.0.0 PORT=8080
	$(BIN)/leadctl serve --host $(HOST) --port $(PORT)

test: install  ## run the whole test suite
	$(BIN)/pytest

lint: install  ## ruff (lint and format check) and mypy on both packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy leadctl intake

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
