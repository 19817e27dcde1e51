"""The run lock as operators meet it: a CLI run waits a bounded time and names who holds the lock; a benchmark run
and an ingest landing side by side never fail (no deadlock); a run that is in progress is logged as running."""
from __future__ import annotations

import threading
import time

import psycopg
from click.testing import CliRunner

from loader.cli import cli
from loader.compute import run_compute
from tests.fake_api import FakeApi
from tests.synthetic import World


def test_a_cli_run_waits_a_bounded_time_and_names_the_holder(dsn):
    with psycopg.connect(dsn, application_name="dbench-holder") as holder:
        holder.execute("LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE")
        t0 = time.monotonic()
        res = CliRunner().invoke(cli, ["compute", "--lock-wait", "1", "--dsn", dsn])
        waited = time.monotonic() - t0
        pid = holder.info.backend_pid
    assert res.exit_code == 1, res.output
    assert f"pid {pid}" in res.output and "dbench-holder" in res.output and "--lock-wait" in res.output
    assert waited < 10
    with psycopg.connect(dsn) as c:     # the attempt is logged as failed, not left running
        assert c.execute("SELECT status FROM data_refresh_logs").fetchall() == [("failed",)]


def test_a_run_in_progress_is_logged_as_running_and_then_replaced_by_its_result(dsn):
    box = {}
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE")
        t = threading.Thread(target=lambda: box.setdefault("summary", run_compute(dsn)))
        t.start()
        with psycopg.connect(dsn, autocommit=True) as c:
            for _ in range(200):
                running = c.execute("SELECT count(*) FROM data_refresh_logs WHERE status = 'running'").fetchone()[0]
                if running:
                    break
                time.sleep(0.02)
        assert running == 1
    t.join(60)
    assert box["summary"]["version"]
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT status FROM data_refresh_logs").fetchall() == [("success",)]


def test_benchmark_runs_beside_an_ingest_never_fail(dsn, http_server):
    """Three compute loops against an ingest landing one slice per transaction, for a bounded time: before the
    landing took the run lock first, this deadlocked now and then."""
    api = FakeApi(page_size=200, world=World({10: 45, 15: 1, 41: 120, 44: 40}, seed=11))
    errors: list[BaseException] = []
    stop = threading.Event()
    runs = [0]

    def compute_loop():
        while not stop.is_set():
            try:
                run_compute(dsn, lock_wait=60)
                runs[0] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)
                return

    with api.serve(http_server):
        loops = [threading.Thread(target=compute_loop) for _ in range(3)]
        for t in loops:
            t.start()
        try:
            deadline = time.monotonic() + 20
            rounds = 0
            while time.monotonic() < deadline and not errors:
                res = CliRunner().invoke(cli, ["ingest", "--states", "DE,HI,OR,RI", "--years", "2019-2022",
                                               "--concurrency", "8", "--batch-slices", "1", "--refresh",
                                               "--api-url", api.base_url, "--dsn", dsn])
                assert res.exit_code == 0, res.output[-2000:]
                rounds += 1
        finally:
            stop.set()
            for t in loops:
                t.join(120)
    assert not errors, errors[0]
    assert rounds >= 1 and runs[0] >= 3


def test_landing_takes_the_run_lock_before_it_writes(dsn, http_server):
    """A landing transaction queues behind a benchmark run on the run lock before it touches a row, so the two
    can never hold rows the other needs (the deadlock's cause)."""
    api = FakeApi(page_size=200, world=World({10: 45}, seed=3))
    box = {}
    with api.serve(http_server), psycopg.connect(dsn) as run:
        run.execute("LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE")   # a run in progress
        t = threading.Thread(target=lambda: box.setdefault("res", CliRunner().invoke(
            cli, ["ingest", "--states", "DE", "--years", "2021", "--sources", "ccd_directory",
                  "--api-url", api.base_url, "--dsn", dsn])))
        t.start()
        with psycopg.connect(dsn, autocommit=True) as watch:
            waiting = False
            for _ in range(300):
                waiting = watch.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND NOT granted "
                    "AND relation = 'public._benchmarks_run_lock'::regclass)").fetchone()[0]
                if waiting:
                    break
                time.sleep(0.05)
            landed = watch.execute("SELECT count(*) FROM district_data_history").fetchone()[0]
        assert waiting and landed == 0
        run.rollback()                                   # the run ends; the landing goes on
        t.join(60)
    assert box["res"].exit_code == 0, box["res"].output
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT count(*) FROM district_data_history").fetchone()[0] > 0
