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

    shown = cli("show", "4100030", "--json", "--dsn", empty_dsn)
    profile = json.loads(shown.stdout)
    assert profile["state_abbrev"] == "OR" and len(profile["metrics"]) == 8


def test_run_reports_bad_options_in_one_line(empty_dsn):
    res = cli("run", "--years", "20x5", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert res.returncode == 2 and "--years" in res.stderr and "Traceback" not in res.stderr
    res = cli("run", "--states", "ZZ", "--from-dir", str(SAMPLE), "--dsn", empty_dsn)
    assert res.returncode != 0 and "ZZ" in res.stderr and "Traceback" not in res.stderr
