"""`migrate`: applies once, is idempotent (catalog unchanged), refuses edited files, serialises racers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from loader import paths
from loader.migrate import MigrationError, migrate

CATALOG_SNAPSHOT = """
SELECT 'col' AS kind, table_name || '.' || column_name || ':' || data_type || ':' ||
       coalesce(character_maximum_length::text, '') || ':' || coalesce(numeric_precision::text, '') || ',' ||
       coalesce(numeric_scale::text, '') || ':' || is_nullable || ':' || coalesce(column_default, '') AS item
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'con', conrelid::regclass || '.' || conname || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'idx', indexrelid::regclass || ':' || pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid::regclass::text NOT LIKE 'pg_%' AND
       indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
UNION ALL
SELECT 'fn', p.oid::regprocedure || ':' || md5(p.prosrc) || ':' || coalesce(array_to_string(p.proconfig, ','), '')
       || ':' || coalesce(array_to_string(p.proacl, ','), '') || ':' || p.provolatile::text || ':' || p.prosecdef::text
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'view', c.oid::regclass || ':' || md5(pg_get_viewdef(c.oid))
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'acl', c.oid::regclass || ':' || coalesce(array_to_string(c.relacl, ','), '')
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm')
ORDER BY 1, 2
"""

SPEC_TABLES = {"states", "districts", "district_data_history", "data_refresh_logs"}


def snapshot(conninfo: str) -> list[tuple]:
    with psycopg.connect(conninfo) as c:
        return c.execute(CATALOG_SNAPSHOT).fetchall()


def test_fresh_database_gets_every_spec_table(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        result = migrate(conn)
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert result.applied and result.applied == sorted(result.applied)
    assert SPEC_TABLES <= tables


def test_second_migrate_changes_nothing_and_says_so(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        migrate(conn)
    before = snapshot(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        again = migrate(conn)
    assert not again.changed
    assert "Nothing to do" in again.summary()
    assert snapshot(empty_dsn) == before
    assert len(before) > 100  # the snapshot really sees the schema


def test_a_schema_others_can_create_in_is_refused_unless_allowed(empty_dsn):
    """Definer functions in a schema any role can CREATE in are a privilege-escalation path: migrate refuses (one
    line with the fix, nothing installed) unless told to go ahead, and then still warns; once revoked, all is
    quiet."""
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "loader", "migrate", "--dsn", empty_dsn, *args],
                              capture_output=True, text=True, timeout=120)

    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        with pytest.raises(MigrationError, match="REVOKE CREATE ON SCHEMA public FROM PUBLIC"):
            migrate(conn)
        assert conn.execute("SELECT to_regclass('public.districts')").fetchone()[0] is None
        refused = cli()
        assert refused.returncode == 1 and "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        allowed = cli("--allow-writable-schema")
        assert allowed.returncode == 0 and "warning: roles other than its owner can CREATE" in allowed.stderr
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        assert [w for w in migrate(conn).warnings if "CREATE" in w] == []


def test_a_role_created_concurrently_by_another_database_is_tolerated(empty_dsn, pg_admin, tmp_path):
    """Two databases of one cluster migrating at once both create the same cluster-wide role: the one that loses
    the race sees a duplicate key in pg_authid, and tries the migration again instead of failing."""
    role = f"dbench_race_{uuid.uuid4().hex[:8]}"
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_role.sql").write_text(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} NOLOGIN; END IF; END $$;")
    other = psycopg.connect(pg_admin)
    try:
        other.execute(f"CREATE ROLE {role} NOLOGIN")          # not committed yet: the other migrator's role
        box = {}

        def run():
            try:
                with psycopg.connect(empty_dsn, autocommit=True) as conn:
                    box["result"] = migrate(conn, tmp_path / "migrations", tmp_path / "functions")
            except Exception as exc:  # noqa: BLE001 - reported below
                box["error"] = exc

        t = threading.Thread(target=run)
        t.start()
        with psycopg.connect(pg_admin, autocommit=True) as watch:      # wait until it blocks on the role's key
            for _ in range(200):
                if watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND query LIKE %s", (f"%{role}%",)).fetchone()[0]:
                    break
                threading.Event().wait(0.05)
        other.commit()
        t.join(60)
        assert "error" not in box, box.get("error")
        assert box["result"].applied == ["0001_role.sql"]
    finally:
        other.rollback()
        other.autocommit = True
        other.execute(f"DROP ROLE IF EXISTS {role}")
        other.close()


def _copy_db_dir(tmp_path: Path) -> Path:
    dst = tmp_path / "db"
    shutil.copytree(paths.db_dir(), dst)
    return dst


def test_edited_applied_migration_is_refused_and_nothing_changes(empty_dsn, tmp_path):
    db = _copy_db_dir(tmp_path)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        migrate(conn, db / "migrations", db / "functions")
    first = sorted((db / "migrations").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    (db / "migrations" / "9999_new.sql").write_text("CREATE TABLE should_not_exist (x int);")
    before = snapshot(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=first.name):
            migrate(conn, db / "migrations", db / "functions")
    assert snapshot(empty_dsn) == before


def test_failing_migration_rolls_back_and_names_the_file(empty_dsn, tmp_path):
    db = _copy_db_dir(tmp_path)
    (db / "migrations" / "9999_broken.sql").write_text("CREATE TABLE half_done (x int); SELECT 1/0;")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match="9999_broken.sql"):
            migrate(conn, db / "migrations", db / "functions")
        assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE name = '9999_broken.sql'").fetchone()[0] == 0


def test_concurrent_migrators_apply_the_schema_once(empty_dsn):
    results, errors = [], []

    def run():
        try:
            with psycopg.connect(empty_dsn, autocommit=True) as conn:
                results.append(migrate(conn))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    applied = [r.applied for r in results]
    assert sorted(map(bool, applied)) == [False, True]  # one applied everything, the other found nothing
    with psycopg.connect(empty_dsn) as conn:
        n = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert n == len(list(paths.migrations_dir().glob("*.sql")))


def test_two_cli_processes_at_once(empty_dsn):
    cmd = [sys.executable, "-m", "loader", "migrate", "--dsn", empty_dsn]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted(o[0].strip().split(" ")[0] for o in outs)
    assert said == ["Nothing", "applied"], outs


def test_edited_migration_cli_message_is_one_line(empty_dsn, tmp_path, monkeypatch):
    db = _copy_db_dir(tmp_path)
    monkeypatch.setenv("DISTRICT_BENCHMARKS_DB_DIR", str(db))
    cmd = [sys.executable, "-m", "loader", "migrate", "--dsn", empty_dsn]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    target = db / "migrations" / "0002_seed_states.sql"
    target.write_text(target.read_text().replace("Alabama", "Alabamaa"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**__import__("os").environ})
    assert proc.returncode == 1
    assert "0002_seed_states.sql" in proc.stderr and "Traceback" not in proc.stderr


def test_upgrading_an_old_database_equals_a_fresh_install(pg_admin, tmp_path):
    """pgai-style: a database built by an older release (first migrations only, no functions) and then
    migrated by this release has the same catalog as a database installed fresh by this release."""
    from tests import harness

    old = _copy_db_dir(tmp_path)
    for path in sorted((old / "migrations").glob("*.sql"))[3:]:
        path.unlink()
    for path in (old / "functions").glob("*.sql"):
        path.unlink()
    upgraded = harness.create_database(pg_admin, "dbench_upg")
    fresh = harness.create_database(pg_admin, "dbench_fresh")
    try:
        up_dsn, fresh_dsn = harness.with_dbname(pg_admin, upgraded), harness.with_dbname(pg_admin, fresh)
        with psycopg.connect(up_dsn, autocommit=True) as conn:
            migrate(conn, old / "migrations", old / "functions")
            conn.execute("INSERT INTO districts (leaid, name, state_fips) VALUES ('0100001', 'Kept', '01')")
            migrate(conn)
            assert conn.execute("SELECT name FROM districts").fetchone()[0] == "Kept"  # data survives
        with psycopg.connect(fresh_dsn, autocommit=True) as conn:
            migrate(conn)
        assert snapshot(up_dsn) == snapshot(fresh_dsn)
    finally:
        harness.drop_database(pg_admin, upgraded)
        harness.drop_database(pg_admin, fresh)
