# Two commands on a fresh machine: `make serve` runs the intake server, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format bench-cli clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || \
		$(BIN)/python -m pip install --quiet --no-deps -e .
	@# Byte-code up front: leadctl starts ~2x slower where PYTHONDONTWRITEBYTECODE stops caching.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib leadctl intake >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the locked dependencies and leadctl itself

serve: install  ## run the intake server on 127.0.0.1:8000 (./leads.db, mail as .eml files in ./mail)
	$(BIN)/leadctl serve

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
