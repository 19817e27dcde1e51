"""A real pg_cron run: schedule the job every minute and watch it succeed (pg_cron has minute granularity)."""
from __future__ import annotations

import time

import psycopg
import pytest
from click.testing import CliRunner

from loader.cli import cli


@pytest.mark.slow
def test_scheduled_job_really_runs_compute_all_benchmarks(dsn, pg_admin):
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    name = f"district-benchmarks-{dbname}"
    res = CliRunner().invoke(cli, ["schedule", "--cron", "* * * * *", "--name", name, "--dsn", dsn])
    assert res.exit_code == 0, res.output
    try:
        deadline = time.monotonic() + 150
        run = None
        while time.monotonic() < deadline:
            with psycopg.connect(pg_admin) as c:
                run = c.execute(
                    "SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                    "WHERE j.jobname = %s AND d.status IN ('succeeded', 'failed') ORDER BY d.start_time DESC LIMIT 1",
                    (name,)).fetchone()
            if run:
                break
            time.sleep(2)
        assert run is not None, "pg_cron did not run the job within 150 s"
        assert run[0] == "succeeded", run
        with psycopg.connect(dsn) as c:
            logged = c.execute("SELECT status FROM data_refresh_logs WHERE data_source = 'compute_benchmarks'").fetchall()
        assert logged and logged[0][0] == "success"
    finally:
        CliRunner().invoke(cli, ["unschedule", "--name", name, "--dsn", dsn])
