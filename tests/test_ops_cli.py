"""Operations CLI: show, peers, states, status, schedule/unschedule/jobs, and the one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from loader import paths
from loader.cli import cli
from loader.localpg import LocalCluster


@pytest.fixture
def runner():
    return CliRunner()


def seed_profile(conn):
    conn.execute("UPDATE states SET avg_chronic_absenteeism_rate = 12.50, avg_graduation_rate = 88.00, "
                 "total_districts = 1, total_enrollment = 1234 WHERE fips = '06'")
    conn.execute("UPDATE states SET avg_chronic_absenteeism_rate = 15.00 WHERE fips = '00'")
    conn.execute(
        "INSERT INTO districts (leaid, name, state_fips, state_abbrev, city, enrollment, chronic_absenteeism_rate, "
        " absenteeism_vs_state, absenteeism_quartile_state, absenteeism_trend_3yr, graduation_rate_total, "
        " graduation_trend_3yr) VALUES ('0600001', 'Sunny Unified', '06', 'CA', 'Fresno', 1234, 20.00, 7.50, "
        " 'well_above', 2.25, 91.00, -1.00)")


def invoke(runner, args, dsn):
    return runner.invoke(cli, [*args, "--dsn", dsn], catch_exceptions=False)


def test_show_profile_for_a_person(runner, conn, dsn):
    seed_profile(conn)
    res = invoke(runner, ["show", "0600001"], dsn)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Sunny Unified" in out and "Fresno" in out
    line = " ".join(ln for ln in out.splitlines() if ln.strip().startswith("Chronic absenteeism"))
    for cell in ("20.00%", "12.50%", "15.00%", "+7.50 pts", "well above", "▲ +2.25 pts"):
        assert cell in line, (cell, line)
    grad = " ".join(ln for ln in out.splitlines() if ln.strip().startswith("Graduation rate"))
    assert "▼ -1.00 pts" in grad


def test_show_accepts_leaid_without_leading_zero_and_json(runner, conn, dsn):
    seed_profile(conn)
    res = invoke(runner, ["show", "600001", "--json"], dsn)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["leaid"] == "0600001"
    absent = next(m for m in data["metrics"] if m["metric"] == "absenteeism")
    assert absent["value"] == 20.0 and absent["quartile_state"] == "well_above"
    assert len(data["metrics"]) == 8


def test_show_unknown_and_malformed_leaid_are_one_line_errors(runner, dsn):
    res = runner.invoke(cli, ["show", "0699999", "--dsn", dsn])
    assert res.exit_code == 1 and "no district with LEAID 0699999" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli, ["show", "CA-123", "--dsn", dsn])
    assert res.exit_code == 2 and "LEAID must be up to 7 digits" in res.output


def seed_peers(conn):
    """45 eligible Oregon districts that differ in size and child poverty (all with math proficiency and
    absenteeism), one without a poverty rate, and their peer groups computed."""
    conn.execute(
        "INSERT INTO districts (leaid, name, state_fips, state_abbrev, enrollment, children_poverty_percent, ell_pct, "
        "                       swd_pct, math_proficiency_pct, chronic_absenteeism_rate) "
        "SELECT '41' || lpad(i::text, 5, '0'), 'District ' || i, '41', 'OR', 100 * i, 5 + (i % 9) * 2.5, "
        "       (i % 4) * 3, 10 + (i % 5), 30 + i, 20 - (i % 7) FROM generate_series(1, 45) i")
    conn.execute("INSERT INTO districts (leaid, name, state_fips, state_abbrev, enrollment, ell_pct, swd_pct) "
                 "VALUES ('4100099', 'No Poverty Data', '41', 'OR', 500, 1, 12)")
    conn.execute("SELECT compute_peer_groups()")


def test_show_adds_the_peer_average_and_the_difference(runner, conn, dsn):
    seed_peers(conn)
    out = invoke(runner, ["show", "4100010"], dsn).output
    header = " ".join(ln for ln in out.splitlines() if "metric" in ln)
    assert "peer avg" in header and "vs peers" in header
    math = " ".join(ln for ln in out.splitlines() if ln.strip().startswith("Math proficiency"))
    vs = conn.execute("SELECT math_proficiency_vs_peers FROM districts WHERE leaid = '4100010'").fetchone()[0]
    assert vs is not None and f"{vs:+.2f}" in math and f"{40 - vs:.2f}" in math   # value 40, peer avg = 40 - vs
    assert "the 40 districts most like it" in out and "district-benchmarks peers 4100010" in out

    data = json.loads(invoke(runner, ["show", "4100010", "--json"], dsn).output)
    assert data["peer_count"] == 40
    m = next(r for r in data["metrics"] if r["metric"] == "math_proficiency")
    assert m["vs_peers"] == float(vs) and m["peer_avg"] == float(40 - vs)
    grad = next(r for r in data["metrics"] if r["metric"] == "graduation")
    assert grad["vs_peers"] is None and grad["peer_avg"] is None                  # no graduation rates at all

    lone = invoke(runner, ["show", "4100099"], dsn).output
    assert "no peer group" in lone


def test_peers_lists_the_group_nearest_first(runner, conn, dsn):
    seed_peers(conn)
    res = invoke(runner, ["peers", "4100010"], dsn)
    assert res.exit_code == 0, res.output
    expected = conn.execute("SELECT p.peer_leaid, d.name, p.distance FROM district_peers p "
                            "JOIN districts d ON d.leaid = p.peer_leaid WHERE p.leaid = '4100010' "
                            "ORDER BY p.peer_rank").fetchall()
    assert len(expected) == 40
    assert "District 10" in res.output and "its 40 peers, nearest first" in res.output
    rows = [[c.strip() for c in ln.split("│")] for ln in res.output.splitlines() if ln.split("│")[0].strip().isdigit()]
    assert [r[1] for r in rows] == [e[0] for e in expected]                      # LEAIDs in rank order
    assert rows[0][2:4] == [expected[0][1], "OR"] and rows[0][-1] == f"{expected[0][2]:.3f}"

    data = json.loads(invoke(runner, ["peers", "4100010", "--json"], dsn).output)
    assert data["leaid"] == "4100010" and data["missing"] == []
    assert [p["rank"] for p in data["peers"]] == list(range(1, 41))
    assert [p["leaid"] for p in data["peers"]] == [e[0] for e in expected]
    top = data["peers"][0]
    assert set(top) == {"rank", "leaid", "name", "state_abbrev", "enrollment", "children_poverty_percent",
                        "ell_pct", "swd_pct", "distance"}
    assert top["state_abbrev"] == "OR" and abs(top["distance"] - expected[0][2]) < 1e-12


def test_peers_of_an_ineligible_or_unknown_district(runner, conn, dsn):
    seed_peers(conn)
    res = invoke(runner, ["peers", "4100099"], dsn)
    assert res.exit_code == 0 and "no peer group: missing child poverty" in res.output
    data = json.loads(invoke(runner, ["peers", "4100099", "--json"], dsn).output)
    assert data["peers"] == [] and data["missing"] == ["child poverty"]
    res = runner.invoke(cli, ["peers", "4199999", "--dsn", dsn])
    assert res.exit_code == 1 and "no district with LEAID 4199999" in res.output
    res = runner.invoke(cli, ["peers", "OR-12", "--dsn", dsn])
    assert res.exit_code == 2 and "LEAID must be up to 7 digits" in res.output


def test_states_lists_states_with_districts_and_us(runner, conn, dsn):
    seed_profile(conn)
    res = invoke(runner, ["states", "--json"], dsn)
    rows = json.loads(res.output)
    assert [r["abbrev"] for r in rows] == ["US", "CA"]
    assert rows[1]["total_enrollment"] == 1234


def test_status_reports_runs_coverage_and_jobs(runner, conn, dsn):
    seed_profile(conn)
    conn.execute("INSERT INTO data_refresh_logs (data_source, status, records_updated, completed_at) "
                 "VALUES ('ccd_directory', 'success', 42, now())")
    res = invoke(runner, ["status", "--json"], dsn)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["districts"] == 1
    assert data["runs"][0]["data_source"] == "ccd_directory" and data["runs"][0]["records_updated"] == 42
    cov = {c["metric"]: c for c in data["coverage"]}
    assert cov["absenteeism"]["with_value"] == 1 and cov["absenteeism"]["with_tier"] == 1
    assert cov["ell_pct"]["with_value"] == 0
    assert "no job scheduled" in data["cron_note"]
    text = invoke(runner, ["status"], dsn).output
    assert "ccd_directory" in text and "absenteeism" in text


def test_schedule_is_idempotent_by_name_and_unschedule_is_quiet(runner, dsn, pg_admin):
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    name = f"district-benchmarks-{dbname}"  # unique per test database: the cron table is cluster-wide
    res = invoke(runner, ["schedule", "--cron", "0 6 * * *", "--name", name], dsn)
    assert res.exit_code == 0, res.output
    assert "pg_cron lives in 'postgres'" in res.output  # jobs live in another database than the benchmarks
    invoke(runner, ["schedule", "--cron", "30 5 * * *", "--name", name], dsn)
    with psycopg.connect(pg_admin) as c:
        rows = c.execute("SELECT schedule, command, database FROM cron.job WHERE jobname = %s", (name,)).fetchall()
        cleanup = c.execute("SELECT count(*) FROM cron.job WHERE jobname = %s", (name + "-cleanup",)).fetchone()[0]
    assert rows == [("30 5 * * *", "SELECT compute_all_benchmarks()", dbname)]
    assert cleanup == 1
    listed = json.loads(invoke(runner, ["jobs", "--name", name, "--json"], dsn).output)
    assert [j["jobname"] for j in listed] == [name, name + "-cleanup"]
    assert invoke(runner, ["unschedule", "--name", name], dsn).output.startswith("removed job")
    again = invoke(runner, ["unschedule", "--name", name], dsn)
    assert again.exit_code == 0 and again.output == ""
    with psycopg.connect(pg_admin) as c:
        assert c.execute("SELECT count(*) FROM cron.job WHERE jobname LIKE %s", (name + "%",)).fetchone()[0] == 0


def test_schedule_rejects_bad_cron_expression(runner, dsn):
    res = runner.invoke(cli, ["schedule", "--cron", "every day", "--name", "x-bad", "--dsn", dsn])
    assert res.exit_code == 2 and "not a cron schedule" in res.output
    res = runner.invoke(cli, ["schedule", "--cron", "0 6 * * * ; DROP TABLE districts", "--name", "x-bad",
                              "--dsn", dsn])
    assert res.exit_code == 2 and "not a cron schedule" in res.output
    res = runner.invoke(cli, ["schedule", "--cron", "99 6 * * *", "--name", "x-bad", "--dsn", dsn])
    assert res.exit_code == 1 and "invalid cron schedule" in res.output       # pg_cron's own check
    res = runner.invoke(cli, ["schedule", "--name", "", "--dsn", dsn])
    assert res.exit_code == 2 and "job name" in res.output


def test_schedule_refuses_a_database_that_is_not_migrated(runner, empty_dsn):
    res = runner.invoke(cli, ["schedule", "--name", "x-empty", "--dsn", empty_dsn])
    assert res.exit_code == 1 and "district-benchmarks migrate" in res.output


@pytest.mark.parametrize("args", [
    ["--states", "\uff16"], ["--years", "\uff12\uff10\uff12\uff12"], ["--years", "\u0662\u0660\u0662\u0662"],
    ["--timeout", "nan"], ["--deadline", "nan"], ["--timeout", "inf"], ["--backoff", "inf"],
])
def test_ingest_refuses_non_ascii_digits_and_non_finite_numbers(runner, args):
    res = runner.invoke(cli, ["ingest", *args, "--dsn", "host=/nonexistent dbname=x"])
    assert res.exit_code == 2, res.output
    assert args[0] in res.output


def test_an_unknown_state_is_a_usage_error(runner, dsn):
    res = runner.invoke(cli, ["ingest", "--states", "ZZ", "--from-dir", str(paths.sample_dir()), "--dsn", dsn])
    assert res.exit_code == 2 and "no state ZZ" in res.output


def test_not_migrated_database_is_one_line(runner, empty_dsn):
    res = runner.invoke(cli, ["show", "0600001", "--dsn", empty_dsn])
    assert res.exit_code == 1
    assert "not migrated" in res.output and "district-benchmarks migrate" in res.output


def test_unreachable_database_never_prints_password(runner, tmp_path):
    dsn = f"host={tmp_path} port=1 user=someone password=s3cr3t-pw dbname=nowhere"
    res = runner.invoke(cli, ["status", "--dsn", dsn])
    assert res.exit_code == 1
    assert "cannot connect to" in res.output and "s3cr3t-pw" not in res.output
    assert len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", [
    "postgresql://bob:S3cretPW@[::1:5432/db",      # unclosed IPv6 bracket
    "postgresql://bob:S3cr%ZZetPW@host/db",        # bad percent-escape inside the password
    "mysql://bob:S3cretPW@host/db",                # not a PostgreSQL URL
    "host=h password=S3cretPW dbname",             # keyword without '='
])
def test_unparseable_connection_strings_never_print_the_password(runner, bad, monkeypatch):
    for via_env in (False, True):
        if via_env:
            monkeypatch.setenv("DATABASE_URL", bad)
        res = runner.invoke(cli, ["status"] if via_env else ["status", "--dsn", bad])
        assert res.exit_code == 1, res.output
        assert "cannot parse the connection string" in res.output
        assert "S3cr" not in res.output and len(res.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def password_server():
    """A second, small cluster with password authentication and no pg_cron."""
    root = Path(tempfile.mkdtemp(prefix="dbench-pw-"))
    os.chmod(root, 0o755)
    cluster = LocalCluster(root / "pg", fast_unsafe=True, preload_cron=False, password="right-pw")
    cluster.start()
    yield cluster
    cluster.destroy()
    root.rmdir()


def test_wrong_password_is_one_clear_line(runner, password_server):
    dsn = password_server.conninfo() + " password=wrong-pw"
    res = runner.invoke(cli, ["status", "--dsn", dsn])
    assert res.exit_code == 1
    assert "password authentication failed" in res.output and "wrong-pw" not in res.output
    assert "Traceback" not in res.output


def test_schedule_without_pg_cron_says_what_to_do(runner, password_server):
    dsn = password_server.conninfo() + " password=right-pw"
    res = runner.invoke(cli, ["schedule", "--dsn", dsn])
    assert res.exit_code == 1
    assert "pg_cron is not loaded" in res.output and "shared_preload_libraries" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_embedded_cluster_compares_bytes_in_code_point_order(password_server):
    """initdb --lc-collate=C: text compares by bytes, which orders exactly as glibc's C.UTF-8 (code points)."""
    words = ["b", "B", "école", "École", "Ecole", "_x", " x", "ß", "St.", "Saint", "日本", "ñ", "n", "a-b", "ab",
             "a b", "0100005", "0100010", "Z", "z", "~"]
    with psycopg.connect(password_server.conninfo() + " password=right-pw") as conn:
        assert conn.execute("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()"
                            ).fetchone() == ("C", "C.UTF-8")
        by_bytes, by_code_point = conn.execute(
            'SELECT array_agg(w ORDER BY w), array_agg(w ORDER BY w COLLATE "C.utf8") FROM unnest(%s::text[]) w',
            (words,)).fetchone()
    assert by_bytes == by_code_point == sorted(words)


def test_embedded_cluster_lifecycle_in_a_real_subprocess():
    base = Path(tempfile.mkdtemp(prefix="dbench-home-"))
    os.chmod(base, 0o755)  # the postgres OS user must reach it when the tests run as root
    home = base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["DISTRICT_BENCHMARKS_HOME"] = str(home)

    def cli_run(*args):
        return subprocess.run([sys.executable, "-m", "loader", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    try:
        st = cli_run("db", "status")
        assert st.returncode == 0 and "not initialised" in st.stdout
        mig = cli_run("migrate")
        assert mig.returncode == 0, mig.stderr
        assert mig.stdout.startswith("applied")
        assert "running" in cli_run("db", "status").stdout
        assert cli_run("migrate").stdout.startswith("Nothing to do")
        assert "stopped" in cli_run("db", "stop").stdout
        assert cli_run("db", "status").returncode == 3
    finally:
        LocalCluster(home).destroy()
        base.rmdir()


def _cli_with_home(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["DISTRICT_BENCHMARKS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "loader", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_existing_directory_is_never_taken_over():
    """DISTRICT_BENCHMARKS_HOME naming a directory the tool did not create: its owner, mode and files stay as they
    were; the cluster goes into a subdirectory the tool creates."""
    base = Path(tempfile.mkdtemp(prefix="dbench-home-"))
    os.chmod(base, 0o755)  # the postgres OS user must reach it when the tests run as root
    home = base / "existing"
    home.mkdir(mode=0o755)
    (home / "keep.txt").write_text("mine")
    before = home.stat()
    try:
        started = _cli_with_home(home, "db", "start")
        assert started.returncode == 0, started.stderr
        after = home.stat()
        assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
        assert (home / "keep.txt").read_text() == "mine"
        assert (home / "district-benchmarks" / "data" / "PG_VERSION").exists()
        assert "running" in _cli_with_home(home, "db", "status").stdout
    finally:
        _cli_with_home(home, "db", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("bad", ["it's", "line\nbreak", "a,b", "back\\slash"])
def test_paths_unsafe_in_the_server_configuration_are_refused(tmp_path, bad):
    res = _cli_with_home(tmp_path / bad / "home", "db", "start")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "configuration cannot hold" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / bad).exists()


@pytest.mark.parametrize("bad", ["/proc/dbench/home", "/dev/null/home"])
def test_unusable_paths_are_one_line(bad):
    res = _cli_with_home(bad, "db", "start")
    assert res.returncode == 1 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "cannot create the cluster directory" in res.stderr or "not a directory" in res.stderr
