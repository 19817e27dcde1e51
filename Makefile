# The README's two commands: `make demo` (the main job on the embedded database) and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: setup test test-sql test-py lint demo bench clean

setup:
	@.ci/setup.sh

# Every test: one throwaway PostgreSQL 15 (pgTAP + pg_cron) for both runners; pg_prove, then pytest, then the lint.
# All three always run; the target fails if any failed.
test: setup
	$(PY) -m tests.harness -- bash -c 'pg_prove --ext .sql -r db/tests; sql=$$?; \
	  $(abspath $(VENV))/bin/pytest $(PYTEST_ARGS); py=$$?; \
	  $(abspath $(VENV))/bin/ruff check loader tests bench; lint=$$?; \
	  echo "pg_prove exit $$sql, pytest exit $$py, ruff exit $$lint"; exit $$(( sql || py || lint ))'

test-sql: setup
	$(PY) -m tests.harness -- pg_prove --ext .sql -r db/tests

test-py: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check loader tests bench

# The main job on the embedded local database: migrate, ingest the bundled synthetic sample (offline),
# compute, print the states; then one district's profile. Set DATABASE_URL to use your own server.
DEMO_LEAID ?= 4100030
demo: setup
	$(VENV)/bin/district-benchmarks run --sample
	$(VENV)/bin/district-benchmarks show $(DEMO_LEAID)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
