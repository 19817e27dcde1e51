"""`compute` from the CLI, failure logging, and the DBA's SQL-only path with the two roles."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from click.testing import CliRunner

from loader.cli import cli

FIXTURE = """
INSERT INTO districts (leaid, name, state_fips, state_abbrev) VALUES
  ('0100001', 'A', '01', 'AL'), ('0100002', 'B', '01', 'AL'), ('0100003', 'C', '01', 'AL'), ('0100004', 'D', '01', 'AL');
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte) VALUES
  ('0100001', 2020, 'ccd_directory', 100, 10, 5, 10), ('0100002', 2020, 'ccd_directory', 200, 30, 0, 20),
  ('0100003', 2020, 'ccd_directory', 300, 30, 30, 15), ('0100004', 2020, 'ccd_directory', 400, 80, 8, 25),
  ('0100001', 2017, 'ccd_directory', 90, 8, 5, 9);
"""


def test_compute_runs_everything_and_prints_the_summary(conn, dsn):
    conn.execute(FIXTURE)
    res = CliRunner().invoke(cli, ["compute", "--json", "--dsn", dsn])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["districts_changed"] > 0 and summary["states_changed"] >= 2
    assert conn.execute("SELECT swd_pct FROM districts WHERE leaid = '0100004'").fetchone()[0] == 20
    assert conn.execute("SELECT count(*) FROM data_refresh_logs WHERE status = 'success'").fetchone()[0] == 1
    text = CliRunner().invoke(cli, ["compute", "--dsn", dsn]).output
    assert "districts_changed 0" in text and "state_averages" in text  # second run: nothing changes


def test_compute_single_step_flags(conn, dsn):
    conn.execute(FIXTURE)
    conn.execute("SELECT compute_current_values()")
    res = CliRunner().invoke(cli, ["compute", "--averages", "--json", "--dsn", dsn])
    assert res.exit_code == 0, res.output
    assert list(json.loads(res.output)) == ["compute_state_averages"]
    assert conn.execute("SELECT total_districts FROM states WHERE fips = '01'").fetchone()[0] == 4
    assert conn.execute("SELECT swd_pct FROM districts WHERE leaid = '0100004'").fetchone()[0] is None  # trends not run


def test_failed_compute_is_one_line_logged_and_changes_nothing(conn, dsn):
    conn.execute(FIXTURE)
    conn.execute("""CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
                    $$BEGIN RAISE EXCEPTION 'disk on fire'; END$$;
                    CREATE TRIGGER boom BEFORE UPDATE OF swd_pct ON districts FOR EACH ROW EXECUTE FUNCTION boom();""")
    res = CliRunner().invoke(cli, ["compute", "--dsn", dsn])
    assert res.exit_code == 1 and "disk on fire" in res.output and "Traceback" not in res.output
    assert conn.execute("SELECT enrollment FROM districts WHERE leaid = '0100001'").fetchone()[0] is None
    failed = conn.execute("SELECT status, error_message FROM data_refresh_logs").fetchall()
    assert len(failed) == 1 and failed[0][0] == "failed" and "disk on fire" in failed[0][1]


@pytest.fixture
def login_roles(pg_admin):
    suffix = uuid.uuid4().hex[:8]
    op, reader = f"op_{suffix}", f"bi_{suffix}"
    with psycopg.connect(pg_admin, autocommit=True) as c:
        c.execute(f"CREATE ROLE {op} LOGIN IN ROLE district_benchmarks_operator")
        c.execute(f"CREATE ROLE {reader} LOGIN IN ROLE district_benchmarks_reader")
    yield op, reader
    with psycopg.connect(pg_admin, autocommit=True) as c:
        c.execute(f"DROP ROLE {op}")
        c.execute(f"DROP ROLE {reader}")


def _as(dsn: str, role: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["user"] = role
    return psycopg.conninfo.make_conninfo(**params)


def test_dba_sql_only_path_with_operator_and_reader_roles(conn, dsn, login_roles):
    op, reader = login_roles
    conn.execute(FIXTURE)
    with psycopg.connect(_as(dsn, op), autocommit=True) as c:
        summary = c.execute("SELECT compute_all_benchmarks()").fetchone()[0]
        assert summary["districts_changed"] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("UPDATE districts SET name = 'x'")  # operators write only through the functions
    with psycopg.connect(_as(dsn, reader), autocommit=True) as c:
        tiers = c.execute("SELECT leaid, quartile_state FROM district_benchmarks WHERE metric = 'swd_pct' "
                          "ORDER BY leaid").fetchall()
        # swd_pct 10, 15, 10, 20 -> PR (0+½·2)/4=.25, (2+½)/4=.625, .25, (3+½)/4=.875
        assert [t[1] for t in tiers] == ["below", "above", "below", "well_above"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT compute_all_benchmarks()")
