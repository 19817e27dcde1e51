"""`run`, the main job, on the bundled sample — the README's demo path — in a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys

import psycopg

from loader import paths

SAMPLE = paths.REPO_ROOT / "loader" / "sample_data"


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "loader", *args], capture_output=True, text=True, timeout=timeout)


def test_run_on_an_empty_database_migrates_ingests_and_computes(empty_dsn):
    first = cli("run", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "States" in first.stdout and "OR" in first.stdout
    with psycopg.connect(empty_dsn) as conn:
        n, with_tier = conn.execute(
            "SELECT count(*), count(graduation_quartile_state) FROM districts").fetchone()
        logs = conn.execute("SELECT data_source FROM data_refresh_logs WHERE status = 'success'").fetchall()
    assert n > 200 and with_tier > 200
    assert ("compute_benchmarks",) in logs and ("ccd_directory",) in logs

    again = cli("run", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to do" in again.stdout
    assert "districts_changed 0" in again.stdout  # nothing new: nothing rewritten

    sample = cli("run", "--sample", "--dsn", empty_dsn)        # the bundled sample, no path needed
    assert sample.returncode == 0 and "Nothing to do" in sample.stdout, sample.stderr[-2000:]
    assert "already done" in sample.stderr

    shown = cli("show", "4100030", "--json", "--dsn", empty_dsn)
    profile = json.loads(shown.stdout)
    assert profile["state_abbrev"] == "OR" and len(profile["metrics"]) == 8


def test_run_reports_bad_options_in_one_line(empty_dsn):
    res = cli("run", "--years", "20x5", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert res.returncode == 2 and "--years" in res.stderr and "Traceback" not in res.stderr
    res = cli("run", "--states", "ZZ", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert res.returncode != 0 and "ZZ" in res.stderr and "Traceback" not in res.stderr


def _env_without_db_settings():
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}


def test_own_postgres_via_database_url_and_pg_variables(dsn):
    """The README's 'point the tool at your own PostgreSQL': DATABASE_URL, then libpq's PG* variables."""
    from psycopg.conninfo import conninfo_to_dict

    env = _env_without_db_settings()
    env["DISTRICT_BENCHMARKS_HOME"] = "/nonexistent/never-used"  # the embedded cluster must not be touched
    by_url = subprocess.run([sys.executable, "-m", "loader", "migrate"], env={**env, "DATABASE_URL": dsn},
                            capture_output=True, text=True, timeout=120)
    assert by_url.returncode == 0 and by_url.stdout.startswith("Nothing to do"), by_url.stderr
    parts = conninfo_to_dict(dsn)
    pg = {"PGHOST": parts["host"], "PGPORT": str(parts["port"]), "PGUSER": parts["user"], "PGDATABASE": parts["dbname"]}
    by_pg = subprocess.run([sys.executable, "-m", "loader", "status", "--json"], env={**env, **pg},
                           capture_output=True, text=True, timeout=120)
    assert by_pg.returncode == 0, by_pg.stderr
    assert json.loads(by_pg.stdout)["districts"] == 0
