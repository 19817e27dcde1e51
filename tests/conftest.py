"""Shared fixtures: one PostgreSQL server per pytest session (see tests/harness.py), fresh databases per test."""
from __future__ import annotations

import psycopg
import pytest

from tests import harness
from tests.fake_api import http_server  # noqa: F401 - the fake API server fixture, for every test module


@pytest.fixture(scope="session")
def pg_admin():
    """Admin conninfo (superuser, dbname=postgres) of the session's server."""
    with harness.server() as admin:
        harness.prepare_server(admin)
        yield admin


@pytest.fixture(scope="session")
def migrated_template(pg_admin):
    """A migrated database used as CREATE DATABASE template, so each test gets a copy in milliseconds."""
    name = harness.create_migrated_database(pg_admin, "dbench_tmpl")
    yield name
    harness.drop_database(pg_admin, name)


@pytest.fixture
def empty_dsn(pg_admin):
    """Conninfo of a brand-new, empty database (nothing migrated)."""
    name = harness.create_database(pg_admin, "dbench_empty")
    yield harness.with_dbname(pg_admin, name)
    harness.drop_database(pg_admin, name)


@pytest.fixture
def dsn(pg_admin, migrated_template):
    """Conninfo of a fresh, migrated database."""
    name = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
    yield harness.with_dbname(pg_admin, name)
    harness.drop_database(pg_admin, name)


@pytest.fixture
def conn(dsn):
    """An autocommit connection to a fresh, migrated database."""
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def sample_dsn(pg_admin, migrated_template):
    """Conninfo of a database holding the bundled sample (`run --sample`), computed; shared by the tests that only
    read it (the report pages)."""
    from click.testing import CliRunner

    from loader.cli import cli

    name = harness.create_database(pg_admin, "dbench_sample", template=migrated_template)
    dsn = harness.with_dbname(pg_admin, name)
    res = CliRunner().invoke(cli, ["run", "--sample", "--dsn", dsn], catch_exceptions=False)
    assert res.exit_code == 0, res.output[-2000:]
    yield dsn
    harness.drop_database(pg_admin, name)
