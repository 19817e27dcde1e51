"""compute_all_benchmarks() under concurrency and failure, on the real server (two connections).

- Two runs at once queue on the run lock (LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE,
  taken inside the functions as their owner): the second waits (visible in pg_locks) until the first commits,
  then computes from the first's committed results and changes nothing.
- A single step alone (compute_state_averages()) queues behind a running computation in the same way.
- A role without grants cannot take the run lock, and an advisory lock (the run key before 1.1.5) no longer
  holds up a run; a caller's lock_timeout bounds the wait, and pg_locks names the holder.
- A run that fails in its last step leaves every value of the previous run in place, writes no log row,
  and raises the error to the caller; the same run succeeds once the fault is gone.
"""
from __future__ import annotations

import hashlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

FIXTURE = """
DELETE FROM district_data_history;
DELETE FROM districts;
INSERT INTO districts (leaid, state_fips) VALUES
    ('0100001', '01'), ('0100002', '01'), ('0100003', '01'), ('0100004', '01'), ('0200001', '02');
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte)
SELECT leaid, y, 'ccd_directory', 100 * n + y - 2019, 10 * n, n, 10
  FROM (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n),
       generate_series(2019, 2022) y;
INSERT INTO district_data_history (leaid, year, source, chronic_absenteeism_rate)
SELECT leaid, y, 'crdc_absenteeism', 5 * n + (y - 2020) FROM
       (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n),
       (VALUES (2020), (2022)) y(y);
"""

SNAPSHOT = "SELECT to_jsonb(d) - 'updated_at' FROM districts d ORDER BY leaid"
STATES = "SELECT to_jsonb(s) - 'updated_at' - 'aggregates_updated_at' FROM states s ORDER BY fips"


# the advisory key runs queued on before 1.1.5 (first 8 bytes of sha256('district-benchmarks:compute'))
OLD_RUN_KEY = int.from_bytes(hashlib.sha256(b"district-benchmarks:compute").digest()[:8], "big", signed=True)

RUN_LOCK_HOLDERS = """
    SELECT array_agg(pid ORDER BY pid) FROM pg_locks
     WHERE locktype = 'relation' AND relation = 'public._benchmarks_run_lock'::regclass AND granted
"""


def waiting_for_run_lock(conn: psycopg.Connection, pid: int) -> bool:
    """True when backend `pid` waits for the benchmarks' run lock."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'relation' "
        "AND relation = 'public._benchmarks_run_lock'::regclass AND NOT granted)",
        (pid,)).fetchone()[0]


def wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def run_in_thread(dsn: str, sql: str, pid_box: dict):
    """Run `sql` on a new autocommit connection in the calling thread; publish the backend pid first. The wait
    for a lock is bounded, so a lock the test does not expect fails the test instead of hanging it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '30s'")
        pid_box["pid"] = conn.info.backend_pid
        pid_box["ready"].set()
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def loaded(dsn, conn):
    conn.execute(FIXTURE)
    return dsn


def test_concurrent_runs_queue_and_the_second_sees_the_first(loaded, conn):
    first = psycopg.connect(loaded)            # a transaction held open: the lock stays taken until COMMIT
    try:
        summary_1 = first.execute("SELECT compute_all_benchmarks()").fetchone()[0]
        assert summary_1["districts_changed"] > 0 and summary_1["states_changed"] > 0

        box = {"ready": threading.Event()}
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(run_in_thread, loaded, "SELECT compute_all_benchmarks()", box)
            assert box["ready"].wait(10)
            assert wait_until(lambda: waiting_for_run_lock(conn, box["pid"])), \
                "the second run should wait for the first run's run lock"
            time.sleep(0.3)
            assert not second.done(), "the second run must not proceed while the first is uncommitted"
            # nothing of the first run is visible to others yet
            assert conn.execute("SELECT count(*) FROM districts WHERE swd_pct IS NOT NULL").fetchone()[0] == 0

            first.commit()
            summary_2 = second.result(timeout=30)
    finally:
        first.close()

    # the second run computed from the first's committed results: nothing left to change
    assert summary_2["districts_changed"] == 0
    assert summary_2["states_changed"] == 0
    assert summary_2["lock_wait_ms"] >= 300, "the summary reports the time spent queueing"
    assert conn.execute("SELECT count(*) FROM data_refresh_logs WHERE data_source = 'compute_benchmarks' "
                        "AND status = 'success'").fetchone()[0] == 2
    # and the stored values are the first run's, complete
    assert conn.execute("SELECT count(*) FROM districts WHERE swd_pct IS NULL OR absenteeism_vs_state IS NULL "
                        "OR student_teacher_ratio_quartile_state IS NULL AND state_fips = '01'").fetchone()[0] == 0


def test_a_single_step_queues_behind_a_running_computation(loaded, conn):
    first = psycopg.connect(loaded)
    try:
        first.execute("SELECT compute_all_benchmarks()")
        box = {"ready": threading.Event()}
        with ThreadPoolExecutor(1) as pool:
            step = pool.submit(run_in_thread, loaded, "SELECT compute_state_averages()", box)
            assert box["ready"].wait(10)
            assert wait_until(lambda: waiting_for_run_lock(conn, box["pid"]))
            assert not step.done()
            first.commit()
            assert step.result(timeout=30) == 0, "after the run committed, the averages are already right"
    finally:
        first.close()


def test_a_failure_in_the_last_step_leaves_the_previous_values(loaded, conn):
    conn.execute("SELECT compute_all_benchmarks()")
    districts_before = conn.execute(SNAPSHOT).fetchall()
    states_before = conn.execute(STATES).fetchall()
    logs_before = conn.execute("SELECT count(*) FROM data_refresh_logs").fetchone()[0]

    # new data that changes every step's results ...
    conn.execute("UPDATE district_data_history SET enrollment = enrollment * 3, spec_ed_students = spec_ed_students + 7 "
                 "WHERE year = 2022")
    # ... and a fault in the last step: the deltas/tiers update is refused
    conn.execute("""
        CREATE FUNCTION refuse_tiers() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.swd_pct_vs_state IS DISTINCT FROM OLD.swd_pct_vs_state THEN
                RAISE EXCEPTION 'injected failure in compute_deltas_quartiles';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_tiers BEFORE UPDATE ON districts FOR EACH ROW EXECUTE FUNCTION refuse_tiers();
    """)

    with psycopg.connect(loaded, autocommit=True) as other:
        with pytest.raises(psycopg.errors.RaiseException, match="injected failure"):
            other.execute("SELECT compute_all_benchmarks()")
        # the connection is usable afterwards and the lock was released with the transaction
        with other.transaction():
            other.execute("LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE NOWAIT")

    assert conn.execute(SNAPSHOT).fetchall() == districts_before, \
        "current values, trends and deltas of the failed run must all be rolled back"
    assert conn.execute(STATES).fetchall() == states_before
    assert conn.execute("SELECT count(*) FROM data_refresh_logs").fetchone()[0] == logs_before, \
        "a failed run leaves no log row (its transaction rolled back)"

    conn.execute("DROP TRIGGER refuse_tiers ON districts")
    summary = conn.execute("SELECT compute_all_benchmarks()").fetchone()[0]
    assert summary["steps"]["current_values"]["rows_changed"] == 5
    assert summary["steps"]["deltas_quartiles"]["rows_changed"] > 0
    assert conn.execute(SNAPSHOT).fetchall() != districts_before


@pytest.fixture
def no_grants_role(conn):
    """A role with no grants at all, dropped afterwards (roles are cluster-wide)."""
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {role} NOLOGIN")
    yield role
    conn.execute(f"DROP ROLE {role}")


def test_a_role_without_grants_cannot_hold_up_a_run(loaded, conn, no_grants_role):
    with psycopg.connect(loaded, autocommit=True) as attacker:
        attacker.execute(f"SET ROLE {no_grants_role}")
        # the attack on 1.1.4: any role may take any advisory key, and runs waited for this one forever
        attacker.execute("SELECT pg_advisory_lock(%s)", (OLD_RUN_KEY,))
        # the run lock itself is refused in every mode that would make a run wait
        for mode in ("ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                     "ACCESS EXCLUSIVE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), attacker.transaction():
                attacker.execute(f"LOCK TABLE public._benchmarks_run_lock IN {mode} MODE")

        with psycopg.connect(loaded, autocommit=True) as operator:
            operator.execute("SET lock_timeout = '5s'")
            operator.execute("SET ROLE district_benchmarks_operator")
            summary = operator.execute("SELECT compute_all_benchmarks()").fetchone()[0]
    assert summary["districts_changed"] > 0
    assert summary["lock_wait_ms"] < 5000


def test_lock_timeout_bounds_the_wait_and_pg_locks_names_the_holder(loaded, conn):
    with psycopg.connect(loaded) as holder:      # held the way the loader's landing transactions hold it
        holder.execute("LOCK TABLE public._benchmarks_run_lock IN ROW EXCLUSIVE MODE")
        with psycopg.connect(loaded, autocommit=True) as cli:
            cli.execute("SET lock_timeout = '300ms'")
            started = time.monotonic()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                cli.execute("SELECT compute_all_benchmarks()")
            assert time.monotonic() - started < 5
            assert cli.execute(RUN_LOCK_HOLDERS).fetchone()[0] == [holder.info.backend_pid]
        holder.rollback()
    assert conn.execute("SELECT count(*) FROM data_refresh_logs").fetchone()[0] == 0
