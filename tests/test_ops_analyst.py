"""The CLI as an analyst uses it (issue 17): years, search by name, numbers that explain themselves, typed JSON,
the embedded cluster over TCP, contradictory options, status, help texts."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import loader
from loader.cli import cli
from loader.cli.common import _json_value
from loader.localpg import LocalCluster

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, args, dsn, **kw):
    return runner.invoke(cli, [*args, "--dsn", dsn], catch_exceptions=False, **kw)


def seed(conn):
    """Five Oregon districts (Oak..., Pine...) with directory 2019-2022 and graduation 2018-2020, one Delaware
    district alone in its state; then compute_all_benchmarks()."""
    conn.execute(
        "INSERT INTO districts (leaid, name, state_fips, state_abbrev, city) VALUES "
        "('4100001', 'Oakridge School District', '41', 'OR', 'Oakridge'), "
        "('4100002', 'Oak Grove Schools', '41', 'OR', 'Milwaukie'), "
        "('4100003', 'Pine Valley SD', '41', 'OR', 'Pine'), "
        "('4100004', 'Lake Oswego SD', '41', 'OR', 'Lake Oswego'), "
        "('4100005', 'Portland Public Schools', '41', 'OR', 'Portland'), "
        "('1000001', 'Oakwood Academy', '10', 'DE', 'Dover')")
    conn.execute(
        "INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, "
        "                                   teachers_fte) "
        "SELECT l, y, 'ccd_directory', 1000 * i + 10 * (y - 2019), 100 + i, 50 + i, 50 + i "
        "  FROM unnest(ARRAY['4100001', '4100002', '4100003', '4100004', '4100005', '1000001']) WITH ORDINALITY u(l, i), "
        "       generate_series(2019, 2022) y")
    conn.execute(
        "INSERT INTO district_data_history (leaid, year, source, graduation_rate) "
        "SELECT l, y, 'edfacts_grad', 70 + 3 * i + (y - 2018) "
        "  FROM unnest(ARRAY['4100001', '4100002', '4100003', '4100004', '4100005', '1000001']) WITH ORDINALITY u(l, i), "
        "       generate_series(2018, 2020) y")
    conn.execute("SELECT compute_all_benchmarks()")


def rows_of(out: str, label: str) -> str:
    return " ".join(ln for ln in out.splitlines() if ln.strip().startswith(label))


# -- 3. which year is this? -----------------------------------------------------------------------------------

def test_show_gives_each_values_year_and_the_trends_years(runner, conn, dsn):
    seed(conn)
    out = invoke(runner, ["show", "4100003"], dsn).output
    grad = rows_of(out, "Graduation rate")
    assert "2020-21" in grad and "2018→2020" in grad, grad
    ratio = rows_of(out, "Students per teacher")
    assert "2022-23" in ratio and "2019→2022" in ratio, ratio
    data = json.loads(invoke(runner, ["show", "4100003", "--json"], dsn).output)
    g = next(m for m in data["metrics"] if m["metric"] == "graduation")
    assert (g["value_year"], g["trend_base_year"], g["trend_end_year"]) == (2020, 2018, 2020)
    absent = next(m for m in data["metrics"] if m["metric"] == "absenteeism")
    assert absent["value_year"] is None and absent["trend_base_year"] is None        # no absenteeism data


# -- 4. find a district by name -------------------------------------------------------------------------------

def test_districts_lists_matches_by_name_and_state(runner, conn, dsn):
    seed(conn)
    res = invoke(runner, ["districts", "--state", "OR", "--name", "oak"], dsn)
    assert res.exit_code == 0, res.output
    assert "4100001" in res.output and "4100002" in res.output and "Oakridge School District" in res.output
    assert "1000001" not in res.output and "4100003" not in res.output        # Delaware; no 'oak' in the name
    assert "1,030" in res.output and "2,030" in res.output                    # their 2022 enrollment
    data = json.loads(invoke(runner, ["districts", "--name", "OAK", "--json"], dsn).output)
    assert [d["leaid"] for d in data] == ["4100002", "4100001", "1000001"]     # by name, any case, every state
    assert data[0]["state_abbrev"] == "OR" and isinstance(data[0]["enrollment"], int)
    assert [d["leaid"] for d in json.loads(invoke(runner, ["districts", "--name", "lake oswego", "--json"],
                                                  dsn).output)] == ["4100004"]
    assert json.loads(invoke(runner, ["districts", "--name", "%", "--json"], dsn).output) == []  # literal %
    limited = invoke(runner, ["districts", "--name", "oak", "--limit", "1"], dsn).output
    assert "2 more" in limited
    bad = runner.invoke(cli, ["districts", "--state", "XX", "--dsn", dsn])
    assert bad.exit_code == 2 and "unknown state 'XX'" in bad.output


def test_show_given_a_name_suggests_the_matching_districts(runner, conn, dsn):
    seed(conn)
    res = runner.invoke(cli, ["show", "oak", "--dsn", dsn])
    assert res.exit_code == 2
    assert "4100001 Oakridge School District (OR)" in res.output and "1000001 Oakwood Academy (DE)" in res.output
    assert "district-benchmarks districts --name 'oak'" in res.output
    peers = runner.invoke(cli, ["peers", "portland", "--dsn", dsn])
    assert peers.exit_code == 2 and "4100005 Portland Public Schools" in peers.output


# -- 5. numbers that explain themselves -----------------------------------------------------------------------

def test_show_puts_the_rank_next_to_the_tier_units_on_differences_and_reasons_for_gaps(runner, conn, dsn):
    seed(conn)
    out = invoke(runner, ["show", "4100005"], dsn).output
    grad = rows_of(out, "Graduation rate")
    assert "well above · 1st of 5" in grad, grad        # the highest graduation rate of the five
    assert re.search(r"[+-]\d+\.\d\d pts", grad), grad   # the difference to the state in points
    assert "enrollment-weighted" in out and "tiers and ranks count each district once" in out
    absent = rows_of(out, "Chronic absenteeism")
    assert "—¹" in absent and "¹ no data loaded for this metric" in out

    lone = invoke(runner, ["show", "1000001"], dsn).output
    assert "fewer than 4 districts in the state have a value" in lone
    assert "1st of 1" in rows_of(lone, "Graduation rate")
    data = json.loads(invoke(runner, ["show", "1000001", "--json"], dsn).output)
    g = next(m for m in data["metrics"] if m["metric"] == "graduation")
    assert g["quartile_state"] is None and g["missing"]["quartile_state"].startswith("fewer than 4 districts")
    assert (g["state_rank"], g["state_count"], g["unit"], g["higher_is_better"]) == (1, 1, "percent", True)
    assert g["missing"]["vs_peers"] == "no peer group"


# -- 7. typed, conventional JSON ------------------------------------------------------------------------------

def test_json_numbers_are_numbers_and_timestamps_iso_8601(runner, conn, dsn):
    seed(conn)
    data = json.loads(invoke(runner, ["show", "4100005", "--json"], dsn).output)
    assert ISO.match(data["updated_at"]), data["updated_at"]
    g = next(m for m in data["metrics"] if m["metric"] == "graduation")
    for key in ("value", "state_avg", "national_avg", "vs_state", "trend_3yr"):
        assert isinstance(g[key], (int, float)) and not isinstance(g[key], bool), (key, g[key])
    assert isinstance(g["tier_rank"], int) and isinstance(g["value_year"], int)
    states = json.loads(invoke(runner, ["states", "--json"], dsn).output)
    oregon = next(s for s in states if s["abbrev"] == "OR")
    assert isinstance(oregon["avg_graduation_rate"], float) and isinstance(oregon["total_enrollment"], int)
    assert ISO.match(oregon["aggregates_updated_at"])
    st = json.loads(invoke(runner, ["status", "--json"], dsn).output)
    assert all(ISO.match(r["started_at"]) and ISO.match(r["completed_at"]) for r in st["runs"])
    assert isinstance(json.loads(invoke(runner, ["compute", "--json"], dsn).output)["duration_ms"], (int, float))


def test_ingest_and_run_print_their_outcome_as_json(runner, dsn):
    res = invoke(runner, ["ingest", "--sample", "--sources", "ccd_directory", "--years", "2022", "--json"], dsn)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)                         # progress goes to stderr, stdout is only JSON
    d = out["sources"]["ccd_directory"]
    assert d["slices"]["done"] > 0 and isinstance(d["rows_inserted"], int) and d["rows_inserted"] > 0
    assert isinstance(out["seconds"], float) and out["failed"] == []
    res = invoke(runner, ["run", "--sample", "--json"], dsn)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"migrate", "ingest", "compute", "states"}
    assert out["ingest"]["sources"]["ccd_directory"]["slices"]["skipped_already_done"] > 0
    assert out["compute"]["version"] == loader.SQL_VERSION
    assert isinstance(out["states"][0]["total_enrollment"], int)


def test_schedule_prints_json(runner, dsn):
    name = f"district-benchmarks-{psycopg.conninfo.conninfo_to_dict(dsn)['dbname']}"
    try:
        res = invoke(runner, ["schedule", "--cron", "0 6 * * *", "--name", name, "--json"], dsn)
        assert res.exit_code == 0, res.output
        info = json.loads(res.stdout)
        assert info["name"] == name and isinstance(info["job_id"], int) and info["schedule"] == "0 6 * * *"
    finally:
        invoke(runner, ["unschedule", "--name", name], dsn)


# -- 8. contradictions, status, version, help -----------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["compute", "--all", "--trends"], "--all runs every step; it cannot be combined with --trends"),
    (["compute", "--no-refresh-current", "--averages"], "--no-refresh-current applies to the full run"),
    (["ingest", "--sample", "--api-url", "http://example.invalid"], "--api-url has no effect with --sample"),
    (["ingest", "--from-dir", ".", "--api-url", "http://example.invalid"], "--api-url has no effect with"),
    (["ingest", "--cache-dir", "/tmp/x"], "--cache-dir is where --via csv keeps its downloads"),
])
def test_contradictory_options_are_usage_errors(runner, dsn, args, says):
    res = runner.invoke(cli, [*args, "--dsn", dsn])
    assert res.exit_code == 2, res.output
    assert says in res.output


def test_an_option_set_in_the_environment_is_not_a_contradiction(runner, dsn, tmp_path):
    res = runner.invoke(cli, ["ingest", "--sample", "--sources", "saipe", "--years", "2022", "--dsn", dsn],
                        env={"DISTRICT_BENCHMARKS_CACHE_DIR": str(tmp_path), "EDUCATIONDATA_API_URL": "http://x"})
    assert res.exit_code == 0, res.output


@pytest.fixture
def new_york(monkeypatch):
    """The process's local time zone is America/New_York for the test."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_status_shows_the_last_run_of_each_source_skipped_records_and_zones(runner, conn, dsn, new_york):
    conn.execute(
        "INSERT INTO data_refresh_logs (data_source, status, records_updated, records_failed, started_at, "
        "                               completed_at) VALUES "
        "('ccd_directory', 'failed', 0, 0, now() - interval '2 days', now() - interval '2 days'), "
        "('ccd_directory', 'success', 42, 7, now() - interval '1 day', now() - interval '1 day'), "
        "('saipe', 'skipped', 0, 0, now() - interval '3 days', now() - interval '3 days')")
    st = json.loads(invoke(runner, ["status", "--json"], dsn).output)
    assert [(r["data_source"], r["status"], r["records_skipped"]) for r in st["runs"]] == \
        [("ccd_directory", "success", 7), ("saipe", "skipped", 0)]          # one row per source, newest first
    out = invoke(runner, ["status"], dsn).output
    header = next(ln for ln in out.splitlines() if "source" in ln and "status" in ln)
    assert "skipped" in header and "failed" not in header
    assert "failed" not in out                        # the older failed run of ccd_directory is not listed
    assert re.search(r"\d\d:\d\d:\d\d (EST|EDT)", out), out


def test_version_prints_the_package_and_the_sql_version(runner):
    out = runner.invoke(cli, ["--version"]).output
    assert loader.__version__ in out and loader.SQL_VERSION in out


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


def test_every_help_has_an_example_and_the_command_list_is_not_cut_off(runner):
    for path, cmd in [(("district-benchmarks",), cli), *_commands(cli)]:
        assert re.search(r"Examples?:", cmd.help or ""), f"{' '.join(path)} has no example"
    for group in (["--help"], ["db", "--help"]):
        out = runner.invoke(cli, group, terminal_width=80).output
        listing = out[out.index("Commands:"):]
        assert "..." not in listing, listing
        assert all(len(ln) <= 80 for ln in listing.splitlines()), listing


# -- 6. the embedded cluster over TCP --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_db_start_port_lets_a_bi_tool_connect_over_tcp_with_a_password():
    base = Path(tempfile.mkdtemp(prefix="dbench-tcp-"))
    os.chmod(base, 0o755)  # the postgres OS user must reach it when the tests run as root
    home = base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["DISTRICT_BENCHMARKS_HOME"] = str(home)
    port = _free_port()

    def cli_run(*args):
        return subprocess.run([sys.executable, "-m", "loader", *args], env=env, capture_output=True, text=True,
                              timeout=180)

    tcp = f"host=127.0.0.1 port={port} dbname=district_benchmarks connect_timeout=5"
    try:
        assert cli_run("migrate").returncode == 0
        socket_only = json.loads(cli_run("db", "status", "--json").stdout)
        assert socket_only["state"] == "running" and socket_only["tcp_port"] is None
        refused = cli_run("db", "start", "--port", str(port))        # running socket-only: say so, change nothing
        assert refused.returncode == 1 and "stop it first" in refused.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(tcp + " user=postgres")
        assert cli_run("db", "stop").returncode == 0

        started = cli_run("db", "start", "--port", str(port))
        assert started.returncode == 0, started.stderr
        assert f"port={port}" in started.stdout and "district_benchmarks_bi" in started.stdout
        st = json.loads(cli_run("db", "status", "--json").stdout)
        assert st["tcp_port"] == port and st["tcp_user"] == "district_benchmarks_bi"
        password = Path(st["password_file"]).read_text().strip()
        assert oct(Path(st["password_file"]).stat().st_mode & 0o777) == "0o600"
        with psycopg.connect(tcp + " user=district_benchmarks_bi", password=password) as conn:
            assert conn.execute("SELECT count(*) FROM district_benchmarks").fetchone()[0] == 0   # may read
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM districts")                                            # not write
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(tcp + " user=postgres", password="")     # the superuser has no password: no TCP login
        assert cli_run("migrate").returncode == 0                    # the tool itself still uses the socket

        assert cli_run("db", "stop").returncode == 0
        assert cli_run("db", "start").returncode == 0                # by default: socket-only again
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(tcp + " user=district_benchmarks_bi", password=password)
    finally:
        LocalCluster(home).destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_timestamps_keep_their_offset_in_json():
    aware = dt.datetime(2024, 5, 1, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    assert _json_value(aware) == "2024-05-01T06:00:00-04:00"
    assert _json_value(Decimal("12.50")) == 12.5 and _json_value(Decimal("1234")) == 1234
    assert _json_value(Decimal("NaN")) is None
