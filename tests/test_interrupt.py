"""Ctrl-C and SIGTERM stop `district-benchmarks ingest` in a real subprocess, against the fake API with responses
that do not come: the first signal starts nothing new, abandons what is in flight and lands nothing half-done;
a second exits at once; the terminal's cursor is shown again; the slices that landed stay, and a rerun resumes."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from loader.report import run_status
from tests.fake_api import FakeApi
from tests.synthetic import World
from tests.test_ingest import ingest

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--states", "DE,HI,OR", "--years", "2019-2022", "--concurrency", "4", "--timeout", "120", "--deadline", "300"]
HIDE, SHOW = b"\x1b[?25l", b"\x1b[?25h"

pytestmark = pytest.mark.slow


@pytest.fixture
def api(http_server):
    """ccd_directory answers at once; ccd_finance's requests get no answer for minutes (until released)."""
    fake = FakeApi(page_size=40, world=World({10: 45, 15: 1, 41: 60}, seed=7))
    fake.fault("stall", "ccd/finance", seconds=600, times=10_000)
    with fake.serve(http_server):
        yield fake
        fake.release.set()


def start(dsn, api, **kw) -> subprocess.Popen:
    """The ingest in its own process group (a terminal's Ctrl-C signals the whole foreground group)."""
    return subprocess.Popen([sys.executable, "-m", "loader", "ingest", "--dsn", dsn, "--api-url", api.base_url,
                             *ARGS], cwd=REPO, start_new_session=True, env=dict(os.environ), **kw)


def rows(dsn, query):
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute(query).fetchall()


def wait_until(proc, condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"the ingest ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.05)


def directory_landed_and_finance_in_flight(dsn, api):
    return lambda: (len(api.requests_for("ccd/finance")) >= 2
                    and rows(dsn, "SELECT count(*) FROM ingest_slices WHERE source = 'ccd_directory'")[0][0] == 12)


def test_ctrl_c_stops_at_once_keeps_what_landed_and_a_rerun_resumes(dsn, api):
    proc = start(dsn, api, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(proc, directory_landed_and_finance_in_flight(dsn, api), "slow request in flight")
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 130, err
    assert took < 5, f"{took:.1f} s after Ctrl-C"          # the stalled responses are not waited for
    assert "SIGINT: stopping" in err
    assert "interrupted: the 12 slice(s) landed by this run are kept" in err
    # landed slices stay landed; nothing abandoned is recorded as failed; no log row is left running
    assert rows(dsn, "SELECT status, count(*) FROM ingest_slices GROUP BY 1") == [("done", 12)]
    logs = dict(rows(dsn, "SELECT data_source, status || ': ' || coalesce(error_message, '') FROM data_refresh_logs"))
    assert logs.pop("ccd_directory") == "success: "
    assert logs and all(v.startswith("failed: interrupted") for v in logs.values()), logs
    with psycopg.connect(dsn) as conn:                           # `status` calls them interrupted, not failed
        shown = {r["data_source"]: r["status"] for r in run_status(conn)["runs"]}
    assert shown.pop("ccd_directory") == "success" and set(shown.values()) == {"interrupted"}, shown

    api.faults.clear()
    api.release.set()
    seen = len(api.log)
    r = ingest(dsn, api, *ARGS)
    assert r.exit_code == 0, r.output
    assert "12 already done" in r.output
    assert not [p for p, _ in api.log[seen:] if "ccd/directory" in p]       # the landed slices are not refetched
    assert rows(dsn, "SELECT DISTINCT status FROM ingest_slices") == [("done",)]


class BlockedBatch:
    """Makes a batch wait to commit: the 2020 directory slices are held back by the fake API until the slices
    before them landed and a lock on district_data_history is taken; then they arrive, and their batch waits for
    the lock. Calling the object says whether a batch is waiting (it takes the steps as they become due)."""

    def __init__(self, dsn, api):
        self.dsn, self.api = dsn, api
        api.faults.clear()
        api.release.clear()
        api.fault("stall", "ccd/directory/2020", seconds=600, times=10_000)
        self.blocker = psycopg.connect(dsn)
        self.before: set | None = None

    def __call__(self) -> bool:
        if self.before is None:
            if rows(self.dsn, "SELECT count(*) FROM ingest_slices")[0][0] < 6:      # 2022 and 2021 landed
                return False
            self.blocker.execute("LOCK TABLE district_data_history IN EXCLUSIVE MODE")   # waits for a landing
            self.before = set(rows(self.dsn, "SELECT source, year, state_fips FROM ingest_slices"))
            self.api.release.set()
        return rows(self.dsn, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND datname = current_database()")[0][0] > 0

    def release(self) -> None:
        self.blocker.rollback()                  # the waiting statement may run now, but its transaction was
        self.blocker.close()                     # never committed: the server rolls it back
        time.sleep(0.5)

    def assert_nothing_half_landed(self) -> None:
        assert set(rows(self.dsn, "SELECT source, year, state_fips FROM ingest_slices")) == self.before
        assert rows(self.dsn, """
            SELECT count(*) FROM district_data_history h JOIN districts d USING (leaid)
             WHERE NOT EXISTS (SELECT 1 FROM ingest_slices s WHERE s.source = h.source AND s.year = h.year
                                  AND s.state_fips = d.state_fips)""") == [(0,)]


def test_a_second_ctrl_c_exits_at_once_and_a_cut_batch_leaves_no_trace(dsn, api):
    """A batch that cannot commit keeps the first Ctrl-C waiting (it would land whole); the second exits without
    waiting, and the database rolls the cut batch back: only whole batches ever land."""
    blocked = BlockedBatch(dsn, api)
    proc = start(dsn, api, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(proc, blocked, "batch waiting for the lock")
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None                                # still waiting for the batch to commit
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        blocked.release()
    assert proc.returncode == 130, err.decode()
    assert took < 2, f"{took:.1f} s after the second Ctrl-C"
    blocked.assert_nothing_half_landed()


def run_on_a_terminal(dsn, api, signals: list[int], condition) -> tuple[int, bytes]:
    """The ingest with stdout and stderr on a pseudo-terminal (so it draws progress bars); the signals are sent
    to its process group once `condition()` holds, a second apart. -> (exit status, all it wrote)."""
    master, slave = pty.openpty()
    proc = start(dsn, api, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = bytearray()

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:                                   # the terminal closed: the process is gone
                    return
                if not chunk:
                    return
                out.extend(chunk)
    try:
        deadline = time.monotonic() + 60
        while not condition():
            assert proc.poll() is None and time.monotonic() < deadline, out.decode(errors="replace")[-2000:]
            drain(0.05)
        for sig in signals:
            os.killpg(proc.pid, sig)
            drain(1.0)
        proc.wait(timeout=20)
        drain(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, bytes(out)


def test_sigterm_on_a_terminal_stops_cleanly_and_shows_the_cursor(dsn, api):
    status, out = run_on_a_terminal(dsn, api, [signal.SIGTERM], directory_landed_and_finance_in_flight(dsn, api))
    assert status == 143, out.decode(errors="replace")[-2000:]
    assert HIDE in out                                            # the bars were drawn, hiding the cursor
    assert out.rfind(SHOW) > out.rfind(HIDE)                      # and it is shown again
    assert b"SIGTERM: stopping" in out
    assert rows(dsn, "SELECT count(*) FROM data_refresh_logs WHERE status = 'running'") == [(0,)]


def test_a_second_signal_on_a_terminal_shows_the_cursor_too(dsn, api):
    blocked = BlockedBatch(dsn, api)
    try:
        status, out = run_on_a_terminal(dsn, api, [signal.SIGINT, signal.SIGINT], blocked)
    finally:
        blocked.release()
    assert status == 130, out.decode(errors="replace")[-2000:]
    assert HIDE in out and out.rfind(SHOW) > out.rfind(HIDE)
    blocked.assert_nothing_half_landed()
