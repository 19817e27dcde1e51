"""The locks that keep runs apart, and naming whoever holds one.

Both are locks on empty tables that only the tables' owner may lock (no role has privileges on them), so no
other role can take them and stall the nightly run, as anyone can with an advisory lock:
- public._benchmarks_run_lock: a benchmark run holds it in SHARE ROW EXCLUSIVE mode inside the SQL functions
  (runs queue); each landing transaction of the loader takes it first in ROW EXCLUSIVE mode, so a landing and a
  run never wait for each other in the middle (no deadlock): whoever locks it first goes first.
- public._benchmarks_ingest_lock: an ingest holds it in EXCLUSIVE mode for its whole run (one ingest at a time).
"""
from __future__ import annotations

import psycopg

from .errors import UserError

RUN_LOCK = "public._benchmarks_run_lock"
INGEST_LOCK = "public._benchmarks_ingest_lock"

HOLDERS = """
SELECT a.pid, coalesce(a.usename, '?') AS usename, coalesce(nullif(a.application_name, ''), '?') AS application,
       coalesce(a.xact_start, a.backend_start) AS since
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.relation = to_regclass(%s) AND l.granted AND l.pid <> pg_backend_pid()
 ORDER BY since
"""


def holders(conn: psycopg.Connection, table: str) -> str:
    """Who holds a lock on `table`, as a person reads it: 'pid 123 (user etl, application psql, since …)'."""
    rows = conn.execute(HOLDERS, (table,)).fetchall()
    if not rows:
        return "a session that has finished since"
    return "; ".join(f"pid {pid} (user {user}, application {app}, since {since:%Y-%m-%d %H:%M:%S %Z})"
                     for pid, user, app, since in rows)


def set_lock_timeout(conn: psycopg.Connection, seconds: float | None, local: bool = False) -> None:
    """Bound the waits for locks of this session (local: of the current transaction); None: no bound."""
    value = "0" if seconds is None else f"{max(1, int(seconds * 1000))}ms"
    conn.execute("SELECT set_config('lock_timeout', %s, %s)", (value, local))


def take_ingest_lock(conninfo_connect, wait: float) -> psycopg.Connection:
    """A connection holding the ingest lock in an open transaction (close it to release the lock). Waits up to
    `wait` seconds for another ingest, then names it."""
    conn = conninfo_connect()
    try:
        set_lock_timeout(conn, wait, local=True)
        conn.execute(f"LOCK TABLE {INGEST_LOCK} IN EXCLUSIVE MODE")
        set_lock_timeout(conn, None, local=True)
        return conn
    except psycopg.errors.LockNotAvailable:
        conn.rollback()
        who = holders(conn, INGEST_LOCK)
        conn.close()
        raise UserError(f"another ingest is running against this database: {who}; waited {wait:g} s") from None
    except psycopg.errors.UndefinedTable:
        conn.close()
        raise UserError("the database has no ingest lock table; run `district-benchmarks migrate` first") from None
    except psycopg.errors.InsufficientPrivilege:
        conn.close()
        raise UserError(f"this role may not take the ingest lock: run the ingest as the owner of the tables, or "
                        f"GRANT UPDATE ON {INGEST_LOCK}, {RUN_LOCK} and the tables it writes to this role") from None
    except BaseException:
        conn.close()
        raise


def can_take_run_lock(conn: psycopg.Connection) -> bool:
    """True when this role may lock the run lock table (the owner, or a role granted a write privilege on it)."""
    return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL AND has_table_privilege(%s, 'INSERT,UPDATE,DELETE')",
                             (RUN_LOCK, RUN_LOCK)).fetchone()[0])
