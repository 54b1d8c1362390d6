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
#
# On TEST_WORKERS processes (pytest-xdist), each test file whole on one of them: most tests
# wait on servers, peers and browsers, so two workers halve the time on two cores. The
# schemathesis contract test runs on its own afterwards: under xdist its operations are
# collected but only the first is run (checked: 1 of 28).
TEST_WORKERS ?= 2
test: $(VENV)/.installed machine
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/contract \
		--durations=20 $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest tests/contract $(PYTEST_ARGS) || status=$$?; \
	exit $$status

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
