"""Running the benchmark functions: compute_all_benchmarks(), or single steps, and logging a failed run."""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

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


def run_compute(conninfo: str, steps: list[str] | None = None, refresh_current: bool = True) -> dict:
    """Run compute_all_benchmarks() (no steps) or the named steps in one transaction; return the summary
    (compute_all_benchmarks()'s jsonb, or {function: rows changed} for steps).

    The run is logged as 'running' when it starts. compute_all_benchmarks() writes its own log row, so on success
    the 'running' row is deleted in the run's transaction; single steps turn it into 'success' with their
    summary. A failure marks it 'failed' and is raised."""
    with connect(conninfo, autocommit=True) as conn:
        log_id = _log_start(conn, list(steps or []))
        try:
            with conn.transaction():
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
        except Exception as exc:
            _log_failure(conn, log_id, exc)
            raise
    return summary


def require_compute_function(conn) -> None:
    """UserError unless compute_all_benchmarks() is installed."""
    exists = conn.execute("SELECT to_regprocedure('public.compute_all_benchmarks(boolean)') IS NOT NULL").fetchone()[0]
    if not exists:
        raise UserError("compute_all_benchmarks() is not installed in this database; install the benchmark "
                        "functions (district-benchmarks migrate) and run it again")
