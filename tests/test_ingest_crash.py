"""Killing `district-benchmarks ingest` with SIGKILL mid-way, then running it again, ends with the same database
as an uninterrupted run: nothing lost, nothing doubled, finished slices not fetched again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import harness
from tests.fake_api import FakeApi
from tests.synthetic import World
from tests.test_ingest import ingest, snapshot

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--states", "DE,HI,OR", "--years", "2019-2022", "--concurrency", "2"]


def done_slices(dsn) -> set[tuple]:
    with psycopg.connect(dsn) as c:
        return set(c.execute("SELECT source, year, state_fips FROM ingest_slices WHERE status = 'done'"))


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_an_uninterrupted_run(dsn, pg_admin, migrated_template,
                                                                   http_server):
    api = FakeApi(page_size=40, world=World({10: 45, 15: 1, 41: 60}, seed=7), delay=0.1)
    with api.serve(http_server):
        proc = subprocess.Popen(
            [sys.executable, "-m", "loader", "ingest", "--dsn", dsn, "--api-url", api.base_url, *ARGS],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        try:
            deadline = time.monotonic() + 60
            while len(done_slices(dsn)) < 4:
                assert proc.poll() is None, "the ingest ended before it could be killed"
                assert time.monotonic() < deadline, "no slice landed within 60 s"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        landed_before = done_slices(dsn)
        with psycopg.connect(dsn) as c:
            total = c.execute("SELECT count(*) FROM ingest_slices").fetchone()[0]
            # the killed run left its trace: rows logged as running, shown by `status` as interrupted
            assert {s for s, in c.execute("SELECT DISTINCT status FROM data_refresh_logs")} == {"running"}
        shown = subprocess.run([sys.executable, "-m", "loader", "status", "--json", "--dsn", dsn], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert {r["status"] for r in json.loads(shown.stdout)["runs"]} == {"interrupted"}
        seen = len(api.log)

        api.delay = 0
        r = ingest(dsn, api, *ARGS)
        assert r.exit_code == 0, r.output
        all_slices = done_slices(dsn)
        assert landed_before < all_slices and total < len(all_slices)      # it really was killed mid-way
        refetched = {(p, q.get("fips")) for p, q in api.log[seen:]}
        for source, year, fips in landed_before:                          # finished slices were skipped
            assert not any(str(year) in p and q == str(int(fips)) and _route(source) in p for p, q in refetched)

        reference = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
        try:
            ref_dsn = harness.with_dbname(pg_admin, reference)
            r = ingest(ref_dsn, api, *ARGS)
            assert r.exit_code == 0, r.output
            ours, theirs = snapshot(dsn), snapshot(ref_dsn)
            assert len(theirs["history"]) > 1000
            assert ours == theirs
        finally:
            harness.drop_database(pg_admin, reference)


def _route(source: str) -> str:
    return {"ccd_directory": "ccd/directory", "ccd_finance": "ccd/finance", "edfacts_grad": "grad-rates",
            "edfacts_assess": "assessments", "crdc_absenteeism": "crdc/", "saipe": "saipe"}[source]
