"""The one way tests obtain a PostgreSQL 15 server with pgTAP and pg_cron.

1. DISTRICT_BENCHMARKS_TEST_DSN is set -> use that server (the role must be able to CREATE DATABASE;
   pg_cron must be preloaded there for the scheduling tests).
2. else a Docker engine answers -> testcontainers runs tests/docker/Dockerfile (postgres:15 + pgTAP + pg_cron).
3. else a throwaway local cluster from the system's initdb/pg_ctl (as the `postgres` OS user when root),
   on a private socket directory, removed afterwards.

Each run gets a fresh database, migrated by the same code `district-benchmarks migrate` runs, with pgTAP
installed. `python -m tests.harness -- CMD...` runs CMD with PG* variables pointing at that database and
DISTRICT_BENCHMARKS_TEST_DSN at the server, so pg_prove and pytest share one server per run.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from loader.localpg import LocalCluster
from loader.migrate import migrate

ENV_DSN = "DISTRICT_BENCHMARKS_TEST_DSN"
DOCKERFILE_DIR = Path(__file__).parent / "docker"


def docker_available() -> tuple[bool, str]:
    """(True, '') when a Docker engine answers, else (False, why)."""
    try:
        import docker  # installed with testcontainers
    except ImportError:
        return False, "the docker Python package is not installed"
    try:
        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine here
        return False, f"no Docker engine answers ({type(exc).__name__})"
    return True, ""


@contextlib.contextmanager
def _testcontainers_server():
    from testcontainers.core.image import DockerImage
    from testcontainers.postgres import PostgresContainer

    with DockerImage(path=str(DOCKERFILE_DIR), tag="district-benchmarks-test-pg:15") as image:
        with PostgresContainer(str(image), username="postgres", password="postgres", dbname="postgres",
                               driver=None) as pg:
            yield make_conninfo(host=pg.get_container_host_ip(), port=pg.get_exposed_port(5432),
                                user="postgres", password="postgres", dbname="postgres")


@contextlib.contextmanager
def _local_server():
    root = Path(tempfile.mkdtemp(prefix="dbench-test-"))
    os.chmod(root, 0o755)
    cluster = LocalCluster(root / "pg", cron_database="postgres", fast_unsafe=True)
    try:
        cluster.init()
        cluster.start()
        yield cluster.conninfo("postgres")
    finally:
        cluster.destroy()
        with contextlib.suppress(OSError):
            root.rmdir()


@contextlib.contextmanager
def server(log=lambda m: print(m, file=sys.stderr)):
    """Yield an admin conninfo (dbname=postgres, superuser) for a PostgreSQL 15 server."""
    if os.environ.get(ENV_DSN):
        log(f"harness: using the server in ${ENV_DSN}")
        yield make_conninfo(os.environ[ENV_DSN])
        return
    ok, why = docker_available()
    if ok:
        log("harness: starting PostgreSQL 15 + pgTAP + pg_cron with testcontainers")
        with _testcontainers_server() as dsn:
            yield dsn
        return
    log(f"harness: testcontainers skipped: {why}; using a throwaway local cluster (initdb/pg_ctl)")
    with _local_server() as dsn:
        yield dsn


def with_dbname(conninfo: str, dbname: str) -> str:
    params = conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return make_conninfo(**params)


def prepare_server(admin: str) -> None:
    """Server-wide setup: pg_cron in its own database (when it is preloaded)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        if "pg_cron" in preload:
            cron_db = conn.execute("SHOW cron.database_name").fetchone()[0]
            with psycopg.connect(with_dbname(admin, cron_db), autocommit=True) as cconn:
                cconn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")


def create_database(admin: str, prefix: str = "dbench", template: str | None = None) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_migrated_database(admin: str, prefix: str = "dbench") -> str:
    """A fresh database migrated by the production migrate() code, with pgTAP available."""
    name = create_database(admin, prefix)
    with psycopg.connect(with_dbname(admin, name), autocommit=True) as conn:
        migrate(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    return name


def pg_env(conninfo: str) -> dict[str, str]:
    """libpq PG* variables equivalent to `conninfo` (for pg_prove and psql)."""
    mapping = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
    return {env: str(v) for k, env in mapping.items() if (v := conninfo_to_dict(conninfo).get(k))}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.harness -- CMD [ARGS...]", file=sys.stderr)
        return 2
    with server() as admin:
        prepare_server(admin)
        name = create_migrated_database(admin, "dbench_run")
        env = dict(os.environ, **pg_env(with_dbname(admin, name)), **{ENV_DSN: admin})
        print(f"harness: database {name} ready", file=sys.stderr)
        try:
            return subprocess.call(argv, env=env)
        finally:
            drop_database(admin, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
