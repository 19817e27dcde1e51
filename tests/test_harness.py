"""The harness's three ways to a server; the Docker one runs only where an engine answers."""
from __future__ import annotations

import psycopg
import pytest

from tests import harness


def test_testcontainers_image_has_pgtap_and_pg_cron():
    ok, why = harness.docker_available()
    if not ok:
        pytest.skip(f"testcontainers path not exercised: {why}")
    with harness._testcontainers_server() as admin:
        harness.prepare_server(admin)
        name = harness.create_migrated_database(admin, "dbench_docker")
        with psycopg.connect(harness.with_dbname(admin, name)) as conn:
            exts = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert "pgtap" in exts


def test_session_server_is_postgres_15_with_pg_cron(pg_admin):
    with psycopg.connect(pg_admin) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        cron_db = conn.execute("SHOW cron.database_name").fetchone()[0]
    assert version.startswith("15")
    assert "pg_cron" in preload
    with psycopg.connect(harness.with_dbname(pg_admin, cron_db)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'").fetchone()[0] == 1


def test_migrated_database_has_pgtap(dsn):
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'").fetchone()[0] == 1
