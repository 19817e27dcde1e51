"""Running the benchmark functions: compute_all_benchmarks(), or single steps, and logging a failed run."""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from . import locks
from .db import connect
from .errors import UserError

STEP_FUNCTIONS = {  # single steps, in run order
    "averages": "compute_state_averages",
    "trends": "compute_district_trends",
    "deltas": "compute_deltas_quartiles",
}


def _log_start(conn, steps: list[str]) -> int | None:
    """A 'running' row for the run, committed at once (conn is autocommit), so a run that is killed leaves a trace;
    None when this role may not write the log (the run itself logs what it can)."""
    try:
        return conn.execute(
            "INSERT INTO data_refresh_logs (data_source, status, details) VALUES ('compute_benchmarks', 'running', "
            "jsonb_build_object('pid', pg_backend_pid(), 'steps', %s::text[])) RETURNING id", (steps,)).fetchone()[0]
    except psycopg.errors.InsufficientPrivilege:
        return None


def _log_failure(conn, log_id: int | None, exc: BaseException) -> None:
    """The run's row becomes 'failed' with the error (its own transaction was rolled back with its log row)."""
    if log_id is None:
        return
    try:
        conn.execute("UPDATE data_refresh_logs SET status = 'failed', error_message = %s, completed_at = now() "
                     "WHERE id = %s", (str(exc).strip()[:2000], log_id))
    except psycopg.Error:           # the original error matters more than the log row
        pass


DEFAULT_LOCK_WAIT = 600.0      # seconds a CLI run waits for a run in progress before it names the holder


def run_compute(conninfo: str, steps: list[str] | None = None, refresh_current: bool = True,
                lock_wait: float | None = DEFAULT_LOCK_WAIT) -> dict:
    """Run compute_all_benchmarks() (no steps) or the named steps in one transaction; return the summary
    (compute_all_benchmarks()'s jsonb, or {function: rows changed} for steps).

    - Waits at most lock_wait seconds (None: as long as it takes) for a run or a landing in progress, then raises
      a UserError naming who holds the run lock.
    - A transaction chosen as a deadlock victim is rolled back whole and run once more.
    - The run is logged as 'running' when it starts. compute_all_benchmarks() writes its own log row, so on
      success the 'running' row is deleted in the run's transaction; single steps turn it into 'success' with
      their summary. A failure marks it 'failed' and is raised."""
    with connect(conninfo, autocommit=True) as conn:
        log_id = _log_start(conn, list(steps or []))
        try:
            for attempt in (1, 2):
                try:
                    return _compute_once(conn, steps, refresh_current, lock_wait, log_id)
                except psycopg.errors.DeadlockDetected:
                    if attempt == 2:
                        raise
        except psycopg.errors.LockNotAvailable as exc:
            err = UserError(f"another benchmark run or a landing ingest holds the run lock: "
                            f"{locks.holders(conn, locks.RUN_LOCK)}; waited {lock_wait:g} s (--lock-wait)")
            _log_failure(conn, log_id, err)
            raise err from exc
        except Exception as exc:
            _log_failure(conn, log_id, exc)
            raise
    raise AssertionError("unreachable")


def _compute_once(conn, steps: list[str] | None, refresh_current: bool, lock_wait: float | None,
                  log_id: int | None) -> dict:
    with conn.transaction():
        locks.set_lock_timeout(conn, lock_wait, local=True)
        if not steps:
            summary = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh_current,)).fetchone()[0]
            if log_id is not None:
                conn.execute("DELETE FROM data_refresh_logs WHERE id = %s", (log_id,))
        else:
            summary = {}
            for step in steps:
                fn = STEP_FUNCTIONS[step]
                summary[fn] = conn.execute(f"SELECT {fn}()").fetchone()[0]
            if log_id is not None:
                conn.execute("UPDATE data_refresh_logs SET status = 'success', completed_at = now(), "
                             "records_updated = %s, details = %s WHERE id = %s",
                             (sum(summary.values()), Jsonb(summary), log_id))
    return summary


def require_compute_function(conn) -> None:
    """UserError unless compute_all_benchmarks() is installed."""
    exists = conn.execute("SELECT to_regprocedure('public.compute_all_benchmarks(boolean)') IS NOT NULL").fetchone()[0]
    if not exists:
        raise UserError("compute_all_benchmarks() is not installed in this database; install the benchmark "
                        "functions (district-benchmarks migrate) and run it again")
