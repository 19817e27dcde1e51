# The README's two commands: `make demo` (the main job on the embedded database) and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: setup test test-sql test-py demo bench clean

setup:
	@.ci/setup.sh

# Every test: one throwaway PostgreSQL 15 (pgTAP + pg_cron) for both runners; pg_prove, then pytest.
# Both always run; the target fails if either failed.
test: setup
	$(PY) -m tests.harness -- bash -c 'pg_prove --ext .sql -r db/tests; sql=$$?; \
	  $(abspath $(VENV))/bin/pytest $(PYTEST_ARGS); py=$$?; \
	  echo "pg_prove exit $$sql, pytest exit $$py"; exit $$(( sql || py ))'

test-sql: setup
	$(PY) -m tests.harness -- pg_prove --ext .sql -r db/tests

test-py: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The main job on the embedded local database: migrate, ingest the bundled synthetic sample (offline),
# compute, print the states; then one district's profile. Set DATABASE_URL to use your own server.
DEMO_LEAID ?= 4100030
demo: setup
	$(VENV)/bin/district-benchmarks run --from-dir loader/sample_data
	$(VENV)/bin/district-benchmarks show $(DEMO_LEAID)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
