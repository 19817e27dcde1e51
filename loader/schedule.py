"""pg_cron scheduling of `SELECT compute_all_benchmarks()`.

pg_cron keeps its jobs in one database per cluster (`cron.database_name`), which need not be the database
that holds the benchmarks. We therefore connect to the cron database and use
`cron.schedule_in_database(...)`, naming the benchmarks database; this works in both layouts.
Jobs are identified by name (pg_cron upserts by job name and user), so scheduling is idempotent.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from .db import DatabaseError, connect
from .errors import UserError

JOB_NAME = "district-benchmarks"
CLEANUP_SUFFIX = "-cleanup"
COMMAND = "SELECT compute_all_benchmarks()"


_FIELD = re.compile(r"[0-9A-Za-z*/,\-]+")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly", "@reboot"}


def check_schedule(cron_expr: str, name: str) -> None:
    """UserError unless cron_expr is five cron fields (or a @macro, or 'N seconds') and name is a usable job name."""
    fields = cron_expr.split()
    ok = ((len(fields) == 5 and all(_FIELD.fullmatch(f) for f in fields))
          or (len(fields) == 1 and fields[0].lower() in _MACROS)
          or (len(fields) == 2 and fields[0].isascii() and fields[0].isdigit() and 1 <= int(fields[0]) <= 59
              and fields[1] in ("second", "seconds")))
    if not ok:
        raise UserError(f"{cron_expr!r} is not a cron schedule: five fields (minute hour day month weekday, e.g. "
                        f"'0 6 * * *'), a macro such as @daily, or 'N seconds'", option="--cron")
    if not name.strip() or not name.isprintable() or len(name) > 60:
        raise UserError("the job name must be 1-60 printable characters", option="--name")


class CronUnavailable(DatabaseError):
    """pg_cron is not installed, not preloaded, or not created in its database."""


@dataclass
class CronTarget:
    """Where pg_cron lives, and which database the job must run in."""

    cron_conninfo: str
    cron_database: str
    target_database: str


def locate(conninfo: str) -> CronTarget:
    """Find pg_cron's database from the benchmarks connection; one clear error if it is not usable."""
    with connect(conninfo, autocommit=True) as conn:
        target = conn.execute("SELECT current_database()").fetchone()[0]
        try:
            cron_db = conn.execute("SHOW cron.database_name").fetchone()[0]
        except psycopg.errors.UndefinedObject as exc:
            raise CronUnavailable(
                "pg_cron is not loaded on this server: install it (Debian: postgresql-15-cron), add "
                "shared_preload_libraries = 'pg_cron' and cron.database_name = '<db>' to postgresql.conf, "
                "restart, and run CREATE EXTENSION pg_cron in that database") from exc
    params = conninfo_to_dict(conninfo) if conninfo else {}
    params["dbname"] = cron_db
    cron_conninfo = make_conninfo(**params)
    with connect(cron_conninfo, autocommit=True) as cconn:
        if not cconn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_cron'").fetchone():
            raise CronUnavailable(
                f"pg_cron is preloaded but the extension is not created: run CREATE EXTENSION pg_cron "
                f"in database {cron_db!r}")
    return CronTarget(cron_conninfo, cron_db, target)


def schedule(conninfo: str, cron_expr: str, name: str = JOB_NAME, keep_days: int | None = 30) -> dict:
    """Create or update the job (and, with keep_days, a daily job trimming its run history). Refuses a database
    that is not migrated: the job would fail every night."""
    check_schedule(cron_expr, name)
    t = locate(conninfo)
    with connect(conninfo, autocommit=True) as conn:
        if not conn.execute("SELECT to_regprocedure('public.compute_all_benchmarks(boolean)') IS NOT NULL"
                            ).fetchone()[0]:
            raise UserError("compute_all_benchmarks() is not installed in this database; run "
                            "`district-benchmarks migrate` before scheduling it")
    with connect(t.cron_conninfo, autocommit=True) as conn:
        try:
            job_id = conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                (name, cron_expr, COMMAND, t.target_database)).fetchone()[0]
        except psycopg.errors.InvalidParameterValue as exc:
            raise DatabaseError(f"invalid cron schedule {cron_expr!r}: {exc.diag.message_primary}") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                "not allowed to schedule in pg_cron: a superuser must GRANT EXECUTE ON FUNCTION "
                "cron.schedule_in_database(text,text,text,text,text,boolean) TO this role "
                "(and USAGE ON SCHEMA cron)") from exc
        cleanup_id = None
        if keep_days:
            # Deletes only this job's history, so other pg_cron users keep theirs.
            cleanup_sql = sql.SQL(
                "DELETE FROM cron.job_run_details WHERE jobid IN "
                "(SELECT jobid FROM cron.job WHERE jobname = {name}) "
                "AND end_time < now() - make_interval(days => {days})"
            ).format(name=sql.Literal(name), days=sql.Literal(int(keep_days))).as_string(conn)
            cleanup_id = conn.execute(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                (name + CLEANUP_SUFFIX, "17 3 * * *", cleanup_sql, t.cron_database)).fetchone()[0]
        else:
            _unschedule_one(conn, name + CLEANUP_SUFFIX)
    return {"job_id": job_id, "cleanup_job_id": cleanup_id, "schedule": cron_expr,
            "database": t.target_database, "cron_database": t.cron_database}


def _unschedule_one(conn, name: str) -> bool:
    row = conn.execute("SELECT jobid FROM cron.job WHERE jobname = %s AND username = current_user",
                       (name,)).fetchone()
    if row:
        conn.execute("SELECT cron.unschedule(%s::bigint)", (row[0],))
    return bool(row)


def unschedule(conninfo: str, name: str = JOB_NAME) -> bool:
    """Remove the job and its cleanup job; False (quietly) when there was none."""
    t = locate(conninfo)
    with connect(t.cron_conninfo, autocommit=True) as conn:
        removed = _unschedule_one(conn, name)
        _unschedule_one(conn, name + CLEANUP_SUFFIX)
    return removed


def jobs(conninfo: str, name: str = JOB_NAME, runs: int = 5) -> list[dict]:
    """The project's jobs with their last runs from cron.job_run_details."""
    t = locate(conninfo)
    with connect(t.cron_conninfo, autocommit=True) as conn:
        conn.row_factory = dict_row
        found = conn.execute(
            "SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job "
            "WHERE jobname IN (%s, %s) ORDER BY jobname", (name, name + CLEANUP_SUFFIX)).fetchall()
        for job in found:
            job["runs"] = conn.execute(
                "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details "
                "WHERE jobid = %s ORDER BY start_time DESC NULLS LAST LIMIT %s", (job["jobid"], runs)).fetchall()
    return found
