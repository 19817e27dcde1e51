"""Running the benchmark functions: compute_all_benchmarks(), or single steps, and logging a failed run."""
from __future__ import annotations

from .db import connect
from .errors import UserError

STEP_FUNCTIONS = {  # single steps, in run order
    "averages": "compute_state_averages",
    "trends": "compute_district_trends",
    "deltas": "compute_deltas_quartiles",
}


def log_failure(conninfo: str, source: str, exc: BaseException) -> None:
    """Record a failed run in data_refresh_logs (the run's own transaction was rolled back with its log row)."""
    try:
        with connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO data_refresh_logs (data_source, status, error_message, completed_at) "
                "VALUES (%s, 'failed', %s, now())", (source, str(exc).strip()[:2000]))
    except Exception:  # noqa: BLE001 - the original error matters more than the log row
        pass


def run_compute(conninfo: str, steps: list[str] | None = None, refresh_current: bool = True) -> dict:
    """Run compute_all_benchmarks() (no steps) or the named steps in one transaction; return the summary
    (compute_all_benchmarks()'s jsonb, or {function: rows changed} for steps). A failure is logged, then raised."""
    with connect(conninfo) as conn:
        try:
            if not steps:
                summary = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh_current,)).fetchone()[0]
            else:
                summary = {}
                for step in steps:
                    fn = STEP_FUNCTIONS[step]
                    summary[fn] = conn.execute(f"SELECT {fn}()").fetchone()[0]
            conn.commit()
        except Exception as exc:
            conn.rollback()
            log_failure(conninfo, "compute_benchmarks", exc)
            raise
    return summary


def require_compute_function(conn) -> None:
    """UserError unless compute_all_benchmarks() is installed."""
    exists = conn.execute("SELECT to_regprocedure('public.compute_all_benchmarks(boolean)') IS NOT NULL").fetchone()[0]
    if not exists:
        raise UserError("compute_all_benchmarks() is not installed in this database; install the benchmark "
                        "functions (district-benchmarks migrate) and run it again")
