"""Forward-only schema migrations plus idempotent re-installation of the SQL functions.

- db/migrations/NNNN_name.sql are applied once each, in name order, each in its own transaction, and
  recorded in schema_migrations with a SHA-256 of the file. An applied file that was edited since is
  refused (nothing is changed) — write a new migration instead.
- db/functions/*.sql are CREATE OR REPLACE files, re-applied on every run in one transaction, so a
  function change ships without a migration. Their checksums are kept in schema_functions so that the
  run can say what changed.
- A session advisory lock serialises concurrent migrators: the second waits, then finds nothing to do.
- The functions' schema is checked first: the compute functions are SECURITY DEFINER, so a schema in which roles
  other than its owner can CREATE is a privilege-escalation path. migrate refuses it (one line with the REVOKE
  that fixes it) unless allow_writable_schema, and then still warns.
- A migration that fails on a duplicate object or key (two databases of one cluster creating the same cluster-wide
  role at once) is rolled back and tried again: the second try sees what the other committed.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from . import SQL_VERSION, paths
from .errors import UserError

# pg_advisory_lock key: the first 8 bytes of sha256("district-benchmarks:migrate") as a signed bigint.
MIGRATE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"district-benchmarks:migrate").digest()[:8], "big", signed=True)

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_functions (
    file         text PRIMARY KEY,
    checksum     text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now()
);
"""


RACE_ATTEMPTS = 3
LOCK_WAIT = 300            # seconds to wait for another migrator of the same database


class MigrationError(UserError):
    """A migration cannot be applied; the message names the file."""


@dataclass
class MigrateResult:
    applied: list[str] = field(default_factory=list)
    functions_changed: list[str] = field(default_factory=list)
    functions_total: int = 0
    sql_version: str | None = None            # benchmarks_version() once installed
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.functions_changed)

    def summary(self) -> str:
        version = f" (SQL functions {self.sql_version})" if self.sql_version else ""
        if not self.changed:
            return (f"Nothing to do: schema is up to date and all {self.functions_total} "
                    f"function files are unchanged{version}.")
        parts = []
        if self.applied:
            parts.append(f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}")
        if self.functions_changed:
            parts.append(f"installed {len(self.functions_changed)} changed function file(s): "
                         f"{', '.join(self.functions_changed)}")
        return "; ".join(parts) + f"{version}."


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sql_files(directory: Path, required: bool = True) -> list[Path]:
    if not directory.is_dir():
        if not required:
            return []
        raise MigrationError(f"{directory} does not exist")
    return sorted(p for p in directory.iterdir() if p.suffix == ".sql")


def migrate(conn: psycopg.Connection, migrations: Path | None = None, functions: Path | None = None,
            echo=lambda msg: None, allow_writable_schema: bool = False) -> MigrateResult:
    """Apply pending migrations and reinstall functions on `conn` (which must be in autocommit mode)."""
    packaged = functions is None
    migrations = migrations or paths.migrations_dir()
    functions = functions or paths.functions_dir()
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection: each migration is its own transaction")
    result = MigrateResult()
    # The project's objects live in schema public (the functions name them public.*): whatever the role's
    # search_path, migrations create them there.
    conn.execute("SET search_path = public")
    try:
        writable = writable_schema_warnings(conn)
        if writable and not allow_writable_schema:
            raise MigrationError(writable[0].replace("fix it with", "nothing was installed; fix it with", 1)
                                 + " (or pass --allow-writable-schema to install all the same)")
        result.warnings += writable
        _lock(conn)
        try:
            with conn.transaction():
                conn.execute(BOOKKEEPING)
            _apply_migrations(conn, _sql_files(migrations), result, echo)
            _install_functions(conn, _sql_files(functions, required=False), result, echo)
            if conn.execute("SELECT to_regprocedure('benchmarks_version()') IS NOT NULL").fetchone()[0]:
                result.sql_version = conn.execute("SELECT benchmarks_version()").fetchone()[0]
            if packaged and result.sql_version not in (None, SQL_VERSION):
                result.warnings.append(f"the installed SQL functions are version {result.sql_version}, but this "
                                       f"package ships {SQL_VERSION}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
    finally:
        conn.execute("RESET search_path")
    return result


def _lock(conn: psycopg.Connection) -> None:
    """Serialise migrators of this database: wait up to LOCK_WAIT seconds for another one."""
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{LOCK_WAIT * 1000:.0f}ms",))
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(f"another migrate has held this database's migration lock for {LOCK_WAIT:g} s; "
                             f"nothing was changed") from None
    finally:
        conn.execute("RESET lock_timeout")


def _apply_migrations(conn, files: list[Path], result: MigrateResult, echo) -> None:
    applied = dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())
    on_disk = {p.name: p for p in files}
    # Refuse before changing anything: edited files, and a database that is ahead of this code.
    edited = [n for n, c in applied.items() if n in on_disk and _checksum(on_disk[n]) != c]
    if edited:
        raise MigrationError(
            f"migration {edited[0]} was edited after it was applied (checksum differs); "
            f"restore it and put the change in a new migration. Nothing was changed.")
    unknown = sorted(set(applied) - set(on_disk))
    if unknown:
        raise MigrationError(
            f"the database has migration {unknown[0]} that is not in {files[0].parent if files else 'db/migrations'}"
            f" — this code is older than the database. Nothing was changed.")
    for path in files:
        if path.name in applied:
            continue
        echo(f"applying {path.name}")
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                                 (path.name, _checksum(path)))
                break
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject) as exc:
                if attempt == RACE_ATTEMPTS:
                    raise MigrationError(f"migration {path.name} failed and was rolled back: "
                                         f"{str(exc).strip().splitlines()[0]}") from exc
                time.sleep(0.2 * attempt)       # another database's migrator created the same role: try again
            except psycopg.Error as exc:
                raise MigrationError(f"migration {path.name} failed and was rolled back: "
                                     f"{str(exc).strip().splitlines()[0]}") from exc
        result.applied.append(path.name)


def _install_functions(conn, files: list[Path], result: MigrateResult, echo) -> None:
    known = dict(conn.execute("SELECT file, checksum FROM schema_functions").fetchall())
    result.functions_total = len(files)
    with conn.transaction():
        for path in files:
            try:
                conn.execute(path.read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                raise MigrationError(f"function file {path.name} failed; no function was changed: "
                                     f"{str(exc).strip().splitlines()[0]}") from exc
            checksum = _checksum(path)
            if known.get(path.name) != checksum:
                echo(f"installed {path.name}")
                result.functions_changed.append(path.name)
                conn.execute(
                    "INSERT INTO schema_functions (file, checksum) VALUES (%s, %s) "
                    "ON CONFLICT (file) DO UPDATE SET checksum = EXCLUDED.checksum, installed_at = now()",
                    (path.name, checksum))
        gone = sorted(set(known) - {p.name for p in files})
        if gone:
            conn.execute("DELETE FROM schema_functions WHERE file = ANY(%s)", (gone,))


WRITABLE_SCHEMA = """
SELECT n.nspname, string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                             ', ' ORDER BY a.grantee)
  FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE n.nspname = 'public' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner
 GROUP BY n.nspname
"""


def writable_schema_warnings(conn: psycopg.Connection) -> list[str]:
    """One warning when roles other than its owner may CREATE in the schema holding the functions."""
    row = conn.execute(WRITABLE_SCHEMA).fetchone()
    if not row:
        return []
    schema, grantees = row
    return [f"roles other than its owner can CREATE in schema {schema} ({grantees}): with the SECURITY DEFINER "
            f"benchmark functions that is a privilege-escalation path; fix it with: REVOKE CREATE ON SCHEMA "
            f"{schema} FROM {grantees};"]
