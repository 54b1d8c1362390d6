# The two commands of the README's Quick start: `make serve` and `make test`.
# Both create a virtual environment in .venv on first use; nothing else to configure.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint typecheck unit machine lock

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/hearth serve $(ARGS)

# Everything: lint, types, unit, persistence (SQLite and PostgreSQL), integration with real
# aiortc peers, and the browser tests in Debian's Chromium.
test: $(VENV)/.installed machine
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --durations=20 $(PYTEST_ARGS)

# What a fresh machine lacks for the tests: Chromium, a running PostgreSQL.
machine:
	bash scripts/prepare-test-machine

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit

# requirements.lock: every runtime dependency pinned with hashes (pip-tools), from pyproject.toml.
# Run after changing dependencies; the Dockerfile and tests/deploy/test_wheel.py install from it.
lock: $(VENV)/.installed
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml
