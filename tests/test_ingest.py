"""`district-benchmarks ingest` end to end: the fake API -> the real PostgreSQL 15 (fresh migrated database per test).

The hand-made fixture below (Delaware, fips 10) is small enough to check by eye; every expected number in the
assertions is worked out in the comment next to it.
"""
from __future__ import annotations

import socket
import time
from decimal import Decimal as D

import psycopg
import pytest
from click.testing import CliRunner

from loader.cli import cli
from loader.sources import SOURCE_NAMES
from tests.fake_api import FakeApi

A, B, C, DD = "1000001", "1000002", "1000003", "1000004"


def dir_rec(leaid, year, **kw):
    rec = {"leaid": leaid, "year": year, "lea_name": f"District {(leaid or '?')[-1]} ({year})", "fips": 10,
           "city_location": "Dover", "city_mailing": "Dover", "county_name": "Kent County",
           "urban_centric_locale": 21, "agency_type": 1, "enrollment": 100, "spec_ed_students": 10,
           "english_language_learners": 5, "teachers_total_fte": 8.0}
    rec.update(kw)
    return rec


def school(leaid, sid, value_name, value, race=99, sex=99, year=2021):
    return {"crdc_id": f"{leaid}{sid}", "ncessch": f"{leaid}0000{sid}", "leaid": leaid, "fips": 10, "year": year,
            "race": race, "sex": sex, "disability": 99, "lep": 99, value_name: value}


def delaware(fake: FakeApi, saipe_scale: str = "fraction") -> None:
    fake.add("ccd_directory", 2021, 10, [
        dir_rec(A, 2021, enrollment=1000, spec_ed_students=150, english_language_learners=50,
                teachers_total_fte=62.456),                                   # fte -> 62.46
        dir_rec(B, 2021, lea_name="-2", enrollment="-2", spec_ed_students=-1, english_language_learners="N/A",
                teachers_total_fte=1e12, city_location=None, city_mailing="Smyrna"),
        dir_rec(C, 2021, enrollment=300, spec_ed_students=None, english_language_learners=10,
                teachers_total_fte=20),
        dir_rec(C, 2021, enrollment=300, spec_ed_students=40, english_language_learners=10,
                teachers_total_fte=20),                                       # duplicate with more values: wins
        dir_rec(None, 2021),                                                  # no leaid
        dir_rec("0300001", 2021, fips=3),                                     # state 03 is not in `states`
        dir_rec("1000009", 2020),                                             # another year
        {k: v for k, v in dir_rec(DD, 2021, enrollment=80, spec_ed_students=None, english_language_learners=None,
                                  teachers_total_fte=None).items() if k not in ("fips", "year")},
    ])
    fake.add("ccd_directory", 2022, 10, [
        dir_rec(A, 2022, enrollment=1000), dir_rec(B, 2022, enrollment=None), dir_rec(C, 2022, enrollment=400)])
    fake.add("ccd_finance", 2020, 10, [
        {"leaid": A, "year": 2020, "fips": 10, "exp_current_elsec_total": 1234567.0, "enrollment_fall_responsible": 100},
        {"leaid": B, "year": 2020, "fips": 10, "exp_current_elsec_total": 1000.0, "enrollment_fall_responsible": 0},
        {"leaid": C, "year": 2020, "fips": 10, "exp_current_elsec_total": -1, "enrollment_fall_responsible": 300}])
    g = {"year": 2019, "fips": 10, "race": 99, "lep": 99, "homeless": 99, "disability": 99,
         "econ_disadvantaged": 99, "foster_care": 99}
    fake.add("edfacts_grad", 2019, 10, [
        dict(g, leaid=A, grad_rate_midpt=87), dict(g, leaid=A, race=1, grad_rate_midpt=95),
        dict(g, leaid=B, grad_rate_midpt="GE50"), dict(g, leaid=C, grad_rate_midpt=101)])
    a = {"year": 2020, "fips": 10, "grade_edfacts": 99, "race": 99, "sex": 99, "lep": 99, "homeless": 99,
         "migrant": 99, "disability": 99, "econ_disadvantaged": 99, "foster_care": 99, "military_connected": 99}
    fake.add("edfacts_assess", 2020, 10, [
        dict(a, leaid=A, math_test_pct_prof_midpt=45.5, read_test_pct_prof_midpt=60.25),
        dict(a, leaid=B, math_test_pct_prof_midpt="-3", read_test_pct_prof_midpt=70)])
    frac = saipe_scale == "fraction"
    fake.add("saipe", 2021, 10, [
        {"leaid": A, "year": 2021, "fips": 10, "est_population_5_17": 1000, "est_population_5_17_poverty": 123,
         "est_population_5_17_poverty_pct": 0.1234 if frac else 12.34},
        {"leaid": B, "year": 2021, "fips": 10, "est_population_5_17": 400, "est_population_5_17_poverty": 20,
         "est_population_5_17_poverty_pct": 0.05 if frac else 5.0},
        {"leaid": C, "year": 2021, "fips": 10, "est_population_5_17": None, "est_population_5_17_poverty": None,
         "est_population_5_17_poverty_pct": 0.3333 if frac else 33.33}])
    ab = "students_chronically_absent"
    fake.add("crdc_chronic_absenteeism", 2021, 10, [
        school(A, 1, ab, 30), school(A, 1, ab, 999, race=1), school(A, 2, ab, -3), school(A, 3, ab, 20),
        school(B, 1, ab, 10), school(C, 1, ab, 0)])
    fake.add("crdc_enrollment", 2021, 10, [
        school(A, 1, "enrollment_crdc", 300), school(A, 2, "enrollment_crdc", 200),
        school(A, 3, "enrollment_crdc", 100), school(B, 1, "enrollment_crdc", "-3"),
        school(C, 1, "enrollment_crdc", 50)])
    fake.add("crdc_chronic_absenteeism", 2022, 10, [
        school(A, 1, ab, 40, year=2022), school(A, 2, ab, 25, year=2022), school(A, 3, ab, 15, year=2022),
        school(B, 1, ab, 10, year=2022), school(C, 1, ab, 20, year=2022), school(C, 2, ab, -3, year=2022)])


@pytest.fixture
def fake(http_server):
    api = FakeApi(page_size=2)
    with api.serve(http_server):
        yield api


def ingest(dsn, fake, *args):
    argv = ["ingest", "--dsn", dsn, "--backoff", "0.01", "--retries", "2", "--timeout", "5", "--deadline", "5"]
    if fake is not None:
        argv += ["--api-url", fake.base_url]
    return CliRunner().invoke(cli, argv + list(args), catch_exceptions=False)


def history(conn, source, year):
    cols = {"ccd_directory": "enrollment, spec_ed_students, ell_students, teachers_fte",
            "ccd_finance": "expenditure_pp", "edfacts_grad": "graduation_rate",
            "edfacts_assess": "math_proficiency, read_proficiency", "saipe": "children_poverty_percent",
            "crdc_absenteeism": "chronic_absenteeism_rate"}[source]
    return {r[0]: (r[1:] if len(r) > 2 else r[1]) for r in conn.execute(
        f"SELECT leaid, {cols} FROM district_data_history WHERE source = %s AND year = %s ORDER BY leaid",
        (source, year))}


def slice_counts(conn, source, year, fips="10"):
    return conn.execute("SELECT counts FROM ingest_slices WHERE source = %s AND year = %s AND state_fips = %s",
                        (source, year, fips)).fetchone()[0]


SNAPSHOT = {
    "history": "SELECT to_jsonb(h) - 'created_at' - 'updated_at' FROM district_data_history h "
               "ORDER BY leaid, year, source",
    "districts": "SELECT to_jsonb(d) - 'created_at' - 'updated_at' FROM districts d ORDER BY leaid",
    # which directory year touched a district's identity last depends on the order slices landed in
    "slices": "SELECT to_jsonb(s) - 'finished_at' #- '{counts,districts_identity_changed}' FROM ingest_slices s "
              "ORDER BY source, year, state_fips",
}


def snapshot(dsn):
    with psycopg.connect(dsn) as c:
        return {k: [r[0] for r in c.execute(q)] for k, q in SNAPSHOT.items()}


# ------------------------------------------------------------------------------------------------ landing

def test_lands_every_source_with_the_cleaning_rules(dsn, conn, fake):
    delaware(fake)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2019-2022")
    assert r.exit_code == 0, r.output

    assert history(conn, "ccd_directory", 2021) == {
        A: (1000, 150, 50, D("62.46")),
        B: (None, None, None, None),      # "-2", -1 negative codes; "N/A" junk; 1e12 does not fit numeric(10,2)
        C: (300, 40, 10, D("20.00")),     # of the two records, the one with more values
        DD: (80, None, None, None),       # no fips in the record: the state queried
    }
    counts = slice_counts(conn, "ccd_directory", 2021)
    counts.pop("districts_identity_changed")        # 4 or 1: depends on whether 2022 landed first
    assert counts == {
        "nulled_negative": 2, "nulled_junk": 1, "nulled_out_of_range": 1, "skipped_no_leaid": 1,
        "skipped_unknown_state": 1, "unknown_state_fips": ["03"], "skipped_wrong_year": 1, "duplicates": 1}
    assert history(conn, "ccd_finance", 2020) == {A: D("12345.67"), B: None, C: None}   # 1234567/100; /0; -1
    assert history(conn, "edfacts_grad", 2019) == {A: D("87.00"), B: None, C: None}     # race=1 row ignored
    assert history(conn, "edfacts_assess", 2020) == {A: (D("45.50"), D("60.25")), B: (None, D("70.00"))}
    assert history(conn, "saipe", 2021) == {A: D("12.34"), B: D("5.00"), C: D("33.33")}
    # CRDC 2021, schools paired: A = 100*(30+20)/(300+100) = 12.50 (school 2 suppressed: out of both sums);
    # B: its only school has no enrollment -> NULL; C = 0/50 = 0.
    assert history(conn, "crdc_absenteeism", 2021) == {A: D("12.50"), B: None, C: D("0.00")}
    # CRDC 2022 has no CRDC enrollment: A = 100*(40+25+15)/CCD 1000 = 8.00; B: no CCD enrollment;
    # C: a school suppressed, and the CCD enrollment covers every school -> NULL.
    assert history(conn, "crdc_absenteeism", 2022) == {A: D("8.00"), B: None, C: None}
    c21, c22 = slice_counts(conn, "crdc_absenteeism", 2021), slice_counts(conn, "crdc_absenteeism", 2022)
    assert (c21["denominator"], c21["schools"], c21["schools_excluded"]) == ("crdc_enrollment", 5, 2)
    assert (c22["denominator"], c22["districts_no_rate"], c22["districts_without_ccd_enrollment"]) == (
        "ccd_enrollment", 2, 1)

    # identity from the newest directory year; the unknown-state district is nowhere
    rows = conn.execute("SELECT leaid, name, state_fips, state_abbrev, city, county_name, urban_centric_locale, "
                        "agency_type, directory_year FROM districts ORDER BY leaid").fetchall()
    assert rows == [
        (A, "District 1 (2022)", "10", "DE", "Dover", "Kent County", 21, 1, 2022),
        (B, "District 2 (2022)", "10", "DE", "Dover", "Kent County", 21, 1, 2022),
        (C, "District 3 (2022)", "10", "DE", "Dover", "Kent County", 21, 1, 2022),
        (DD, "District 4 (2021)", "10", "DE", "Dover", "Kent County", 21, 1, 2021)]
    assert conn.execute("SELECT count(*) FROM district_data_history WHERE leaid = '0300001'").fetchone()[0] == 0

    logs = {r[0]: r[1:] for r in conn.execute(
        "SELECT data_source, records_updated, records_failed, status, details FROM data_refresh_logs")}
    assert set(logs) == {"ccd_directory", "ccd_finance", "edfacts_grad", "edfacts_assess", "saipe",
                         "crdc_absenteeism"}
    assert logs["ccd_directory"][:3] == (4 + 3, 3, "success")       # 2021: 4 rows, 2022: 3; 3 records skipped
    assert logs["ccd_directory"][3]["slices"] == {"planned": 4, "done": 4, "skipped_already_done": 0,
                                                  "absent_from_dir": 0, "failed": 0}
    assert logs["edfacts_grad"][3]["years_skipped"] == [2020, 2021, 2022]
    assert "edfacts_grad: 2020-2022 not in the API (it has 2010-2019); skipped" in r.output
    assert "1 record(s) of a state with no row in `states` (fips 03) were skipped" in r.output


def test_only_years_the_api_has_are_requested(dsn, fake):
    delaware(fake)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2019-2022", "--sources", "edfacts_grad,crdc_absenteeism")
    assert r.exit_code == 0, r.output
    asked = {p for p, _ in fake.log}
    assert "school-districts/edfacts/grad-rates/2019/" in asked
    assert not any(p.startswith("school-districts/edfacts/grad-rates/202") for p in asked)
    assert "schools/crdc/enrollment/2021/race/sex/" in asked
    assert "schools/crdc/enrollment/2022/race/sex/" not in asked          # the catalogue says it has no 2022
    assert all(q.get("race") == "99" and q.get("sex") == "99" for p, q in fake.log if p.startswith("schools/"))
    assert all(q.get("fips") == "10" for p, q in fake.log if p != "api-endpoints/")


def test_breakdown_rows_are_dropped_even_when_the_server_ignores_the_filters(dsn, conn, http_server):
    api = FakeApi(honour_filters=False)
    delaware(api)
    with api.serve(http_server):
        r = ingest(dsn, api, "--states", "DE", "--years", "2019-2021",
                   "--sources", "crdc_absenteeism,edfacts_grad")
    assert r.exit_code == 0, r.output
    assert history(conn, "crdc_absenteeism", 2021) == {A: D("12.50"), B: None, C: D("0.00")}   # not 999
    assert history(conn, "edfacts_grad", 2019)[A] == D("87.00")                             # not 95
    assert slice_counts(conn, "crdc_absenteeism", 2021)["breakdown_rows"] == 1
    assert slice_counts(conn, "edfacts_grad", 2019)["breakdown_rows"] == 1


def test_without_a_catalogue_the_built_in_years_are_used(dsn, http_server):
    api = FakeApi(catalogue=False)
    with api.serve(http_server):
        r = ingest(dsn, api, "--states", "DE", "--years", "2018-2021", "--sources", "edfacts_assess")
    assert r.exit_code == 0, r.output
    assert "endpoint catalogue unavailable" in r.output
    assert sorted(p for p, _ in api.log if "assessments" in p) == [
        f"school-districts/edfacts/assessments/{y}/grade-99/" for y in (2018, 2020)]


def test_saipe_fraction_and_percent_scales_land_the_same(dsn, conn, http_server):
    for scale in ("percent", "fraction"):
        api = FakeApi()
        delaware(api, saipe_scale=scale)
        with api.serve(http_server):
            r = ingest(dsn, api, "--states", "DE", "--years", "2021", "--sources", "saipe", "--refresh")
        assert r.exit_code == 0, r.output
        assert history(conn, "saipe", 2021) == {A: D("12.34"), B: D("5.00"), C: D("33.33")}
        assert slice_counts(conn, "saipe", 2021)["saipe_scale"] == (
            "fraction (x100)" if scale == "fraction" else "percent")


def test_an_older_directory_year_never_overwrites_a_newer_identity(dsn, conn, fake):
    delaware(fake)
    name = "SELECT name, directory_year FROM districts WHERE leaid = %s"
    assert ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory").exit_code == 0
    assert conn.execute(name, (A,)).fetchone() == ("District 1 (2021)", 2021)
    assert ingest(dsn, fake, "--states", "DE", "--years", "2022", "--sources", "ccd_directory").exit_code == 0
    assert conn.execute(name, (A,)).fetchone() == ("District 1 (2022)", 2022)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--refresh")
    assert r.exit_code == 0
    assert conn.execute(name, (A,)).fetchone() == ("District 1 (2022)", 2022)


# ------------------------------------------------------------------------------------------------ reruns

def test_a_rerun_skips_done_slices_and_a_refresh_rewrites_nothing(dsn, conn, fake):
    delaware(fake)
    assert ingest(dsn, fake, "--states", "DE", "--years", "2019-2022").exit_code == 0
    before = conn.execute("SELECT leaid, year, source, xmin::text, updated_at FROM district_data_history "
                          "ORDER BY 1, 2, 3").fetchall()
    dist_before = conn.execute("SELECT leaid, xmin::text FROM districts ORDER BY 1").fetchall()
    fake.log.clear()

    r = ingest(dsn, fake, "--states", "DE", "--years", "2019-2022")
    assert r.exit_code == 0 and "0 slice(s) to fetch" in r.output
    assert {p for p, _ in fake.log} == {"api-endpoints/"}          # the catalogue, nothing else

    r = ingest(dsn, fake, "--states", "DE", "--years", "2019-2022", "--refresh")
    assert r.exit_code == 0, r.output
    assert len(fake.log) > 10
    after = conn.execute("SELECT leaid, year, source, xmin::text, updated_at FROM district_data_history "
                         "ORDER BY 1, 2, 3").fetchall()
    assert after == before                                   # no row rewritten (same xmin, same updated_at)
    assert conn.execute("SELECT leaid, xmin::text FROM districts ORDER BY 1").fetchall() == dist_before
    last = conn.execute("SELECT sum(rows_inserted + rows_updated), sum(rows_unchanged) FROM ingest_slices").fetchone()
    assert last == (0, len(before))


def test_a_changed_value_is_updated_in_place(dsn, conn, fake):
    delaware(fake)
    assert ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance").exit_code == 0
    fake.add("ccd_finance", 2020, 10, [
        {"leaid": A, "year": 2020, "fips": 10, "exp_current_elsec_total": 2000000.0,
         "enrollment_fall_responsible": 100}])
    assert ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance",
                  "--refresh").exit_code == 0
    # B and C are no longer in the API's answer: kept as they were (never lost)
    assert history(conn, "ccd_finance", 2020) == {A: D("20000.00"), B: None, C: None}
    assert conn.execute("SELECT rows_inserted, rows_updated, rows_unchanged FROM ingest_slices "
                        "WHERE source = 'ccd_finance'").fetchone() == (0, 1, 0)


def test_a_first_load_inserts_and_a_row_already_there_falls_back_to_the_upsert(dsn, conn, fake):
    """Slices that never landed are tried with a plain INSERT (no ON CONFLICT probe). A row that exists all the
    same (here written by hand; in real life a district another state's slice already landed) makes it fail
    with a unique violation: the batch is rolled back whole and landed again with the upsert, nothing lost."""
    from loader import land
    delaware(fake)
    with psycopg.connect(dsn, autocommit=True) as c:
        assert land.never_landed(c, "ccd_finance", 2020, ["10"])
        c.execute("INSERT INTO district_data_history (leaid, year, source, expenditure_pp) "
                  "VALUES (%s, 2020, 'ccd_finance', 1.00)", (A,))
    r = ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance")
    assert r.exit_code == 0, r.output
    assert history(conn, "ccd_finance", 2020) == {A: D("12345.67"), B: None, C: None}
    assert conn.execute("SELECT rows_inserted, rows_updated, status FROM ingest_slices "
                        "WHERE source = 'ccd_finance'").fetchone() == (2, 1, "done")
    assert slice_counts(conn, "ccd_finance", 2020)["landed_by_upsert_after_conflict"] == 1
    with psycopg.connect(dsn, autocommit=True) as c:
        assert not land.never_landed(c, "ccd_finance", 2020, ["10", "24"])    # DE landed: the upsert from now on
        assert land.never_landed(c, "ccd_finance", 2019, ["10"])


def test_a_first_load_without_conflicts_lands_by_insert(dsn, conn, fake):
    delaware(fake)
    assert ingest(dsn, fake, "--states", "DE", "--years", "2020-2021",
                  "--sources", "ccd_directory,ccd_finance,crdc_absenteeism").exit_code == 0
    counts = [r[0] for r in conn.execute("SELECT counts FROM ingest_slices WHERE status = 'done'")]
    assert counts and not any("landed_by_upsert_after_conflict" in c for c in counts)


# ------------------------------------------------------------------------------------------------ failures

def closed_port() -> int:
    with socket.socket() as s:                      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args", [("ingest",), ("ingest", "--via", "csv"), ("run",)])
def test_an_api_that_cannot_be_reached_stops_the_run_within_seconds(dsn, conn, args, tmp_path):
    """Default retries and backoff: the failure to connect is not retried for minutes, slice after slice."""
    port = closed_port()
    t0 = time.monotonic()
    cache = ["--cache-dir", str(tmp_path)] if "--via" in args else []   # --cache-dir alone is a usage error
    r = CliRunner().invoke(cli, [*args, "--dsn", dsn, "--states", "RI,DE", "--years", "2019-2020", *cache,
                                 "--api-url", f"http://reader:s3cret@127.0.0.1:{port}/api/v1"])
    took = time.monotonic() - t0
    assert r.exit_code == 1, r.output
    assert took < 10
    line = (f"Error: cannot reach the API at 127.0.0.1:{port}: connection refused. Check the network, the proxy "
            f"variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and --api-url (http://127.0.0.1:{port}/api/v1).")
    assert r.output.splitlines()[-1] == line and r.output.count("127.0.0.1") == 2
    assert "s3cret" not in r.output
    # nothing landed, nothing half-done: each source has one completed 'failed' row saying why
    assert conn.execute("SELECT count(*) FROM ingest_slices").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM district_data_history").fetchone()[0] == 0
    logs = conn.execute("SELECT data_source, status, error_message, completed_at IS NOT NULL, details "
                        "FROM data_refresh_logs WHERE data_source <> 'compute_benchmarks'").fetchall()
    assert sorted(r[0] for r in logs) == sorted(SOURCE_NAMES)
    assert {r[1:4] for r in logs} == {("failed", line.removeprefix("Error: "), True)}
    assert "Connection refused" in logs[0][4]["detail"] and "s3cret" not in str(logs)


def test_a_proxy_that_refuses_is_named_without_its_password(dsn, monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    port = closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://me:pr0xypass@127.0.0.1:{port}")
    r = CliRunner().invoke(cli, ["ingest", "--dsn", dsn, "--states", "DE", "--years", "2020",
                                 "--api-url", "http://district-api.invalid/api/v1"])
    assert r.exit_code == 1
    assert (f"cannot reach the API at district-api.invalid through the proxy http://127.0.0.1:{port}: connection "
            f"refused. Check the network") in r.output
    assert "pr0xypass" not in r.output


def test_an_api_that_answers_errors_keeps_its_retries(dsn, conn, fake):
    """Only a failure to connect stops the run: a catalogue answering 503 is retried, then the built-in years
    are used, and the slices land."""
    delaware(fake)
    fake.fault("status", "api-endpoints", status=503, times=100)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance")
    assert r.exit_code == 0, r.output
    assert len(fake.requests_for("api-endpoints")) == 3             # 1 + --retries 2
    assert "note: endpoint catalogue unavailable (HTTP 503 after 3 tries)" in r.output
    assert history(conn, "ccd_finance", 2020)[A] == D("12345.67")


def test_a_slice_that_keeps_failing_is_reported_while_the_others_land(dsn, conn, fake):
    delaware(fake)
    fake.add("ccd_finance", 2020, 24, [{"leaid": "2400001", "year": 2020, "fips": 24,
                                        "exp_current_elsec_total": 500.0, "enrollment_fall_responsible": 5}])
    fake.fault("status", "ccd/finance/2020", fips="10", status=503, times=1000)
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2019-2021", "--sources", "ccd_finance,ccd_directory")
    assert r.exit_code == 1
    assert "FAILED ccd_finance 2020 DE: HTTP 503" in r.output
    assert "1 slice(s) failed" in r.output
    assert history(conn, "ccd_finance", 2020) == {"2400001": D("100.00")}
    assert history(conn, "ccd_directory", 2021)[A] == (1000, 150, 50, D("62.46"))
    st = conn.execute("SELECT status, error FROM ingest_slices WHERE source = 'ccd_finance' AND year = 2020 "
                      "AND state_fips = '10'").fetchone()
    assert st[0] == "failed" and "HTTP 503" in st[1]
    log = conn.execute("SELECT status, error_message, details FROM data_refresh_logs "
                       "WHERE data_source = 'ccd_finance'").fetchone()
    assert log[0] == "failed" and "ccd_finance 2020 DE" in log[1]
    assert log[2]["failures"][0]["state"] == "DE" and log[2]["slices"]["failed"] == 1

    # the API recovers: a rerun fetches only the failed slice
    fake.faults.clear()
    fake.log.clear()
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2019-2021", "--sources", "ccd_finance,ccd_directory")
    assert r.exit_code == 0, r.output
    assert [(p, q.get("fips")) for p, q in fake.log if p != "api-endpoints/"] == [
        ("school-districts/ccd/finance/2020/", "10")] * 2          # page size 2: three rows, two pages
    assert history(conn, "ccd_finance", 2020)[A] == D("12345.67")


def test_a_count_mismatch_is_retried_then_reported(dsn, conn, fake):
    delaware(fake)
    fake.fault("count_lie", "ccd/finance/2020", page=1, times=1)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance")
    assert r.exit_code == 0, r.output                                # retried once, then it matched
    assert history(conn, "ccd_finance", 2020)[A] == D("12345.67")

    fake.fault("drop_row", "ccd/directory/2021", page=2, times=10)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory")
    assert r.exit_code == 1
    assert "the API's count is 8 but 7 rows arrived (slice tried 2 times)" in r.output
    assert history(conn, "ccd_directory", 2021) == {}                # nothing of the incomplete slice landed


def test_failures_inside_a_page_are_retried_transparently(dsn, conn, fake):
    delaware(fake)
    fake.fault("status", "ccd/directory/2021", page=2, status=502, times=1)
    fake.fault("status", "ccd/directory/2021", page=3, status=429, times=1, retry_after="0")
    fake.fault("api_error", "ccd/directory/2021", page=4, times=1)
    fake.fault("malformed", "ccd/directory/2021", page=1, times=1)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory")
    assert r.exit_code == 0, r.output
    assert set(history(conn, "ccd_directory", 2021)) == {A, B, C, DD}


def test_a_slice_that_cannot_land_does_not_take_its_batch_down(dsn, conn, fake, monkeypatch):
    """DE and MD ccd_finance 2020 are one batch; landing MD fails (as a constraint or a bug might): the batch is
    landed again slice by slice, so DE lands and only MD fails."""
    from loader import land
    delaware(fake)
    fake.add("ccd_finance", 2020, 24, [{"leaid": "2400001", "year": 2020, "fips": 24,
                                        "exp_current_elsec_total": 500.0, "enrollment_fall_responsible": 5}])
    real = land.land_district_source
    tried = []

    def failing_for_md(conn, source, stage_cols, cols, identity, year, slices, *rest):
        tried.append(sorted(s.fips for s in slices))
        if any(s.fips == "24" for s in slices):
            raise RuntimeError("cannot land MD")
        return real(conn, source, stage_cols, cols, identity, year, slices, *rest)

    monkeypatch.setattr(land, "land_district_source", failing_for_md)
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2020", "--sources", "ccd_finance")
    assert r.exit_code == 1
    assert tried == [["10", "24"], ["10"], ["24"]]                  # together, then one by one
    assert "FAILED ccd_finance 2020 MD: RuntimeError: cannot land MD" in r.output
    assert history(conn, "ccd_finance", 2020) == {A: D("12345.67"), B: None, C: None}
    assert dict(conn.execute("SELECT state_fips, status FROM ingest_slices")) == {"10": "done", "24": "failed"}


def test_a_batch_lands_in_one_transaction_and_a_district_two_states_report_lands_once(dsn, conn, fake):
    delaware(fake)
    fake.add("ccd_finance", 2020, 24, [
        {"leaid": "2400001", "year": 2020, "fips": 24, "exp_current_elsec_total": 500.0,
         "enrollment_fall_responsible": 5},
        {"leaid": A, "year": 2020, "fips": 10, "exp_current_elsec_total": 1300000.0,      # also in DE's answer
         "enrollment_fall_responsible": 100}])
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2020", "--sources", "ccd_finance")
    assert r.exit_code == 0, r.output
    # A: the larger of its two values (DE's 12345.67, MD's 13000.00) wins, whichever page came first
    assert history(conn, "ccd_finance", 2020) == {A: D("13000.00"), B: None, C: None, "2400001": D("100.00")}
    xmins = conn.execute("SELECT DISTINCT xmin::text FROM district_data_history UNION ALL "
                         "SELECT DISTINCT xmin::text FROM ingest_slices").fetchall()
    assert len(set(xmins)) == 1                                      # both slices and checkpoints: one commit
    landed = dict(conn.execute("SELECT state_fips, rows_inserted FROM ingest_slices"))
    assert landed == {"10": 2, "24": 2}                              # A counted by MD, whose row won


def test_batched_and_slice_by_slice_landing_give_the_same_database(dsn, pg_admin, migrated_template,
                                                                  http_server):
    from tests import harness
    from tests.synthetic import World
    api = FakeApi(page_size=50, world=World({10: 45, 15: 1, 41: 60, 24: 25}, seed=3))
    args = ("--states", "DE,HI,OR,MD", "--years", "2019-2022", "--concurrency", "3")
    with api.serve(http_server):
        r = ingest(dsn, api, *args)
        assert r.exit_code == 0, r.output
        other = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
        try:
            dsn2 = harness.with_dbname(pg_admin, other)
            r = ingest(dsn2, api, *args, "--batch-slices", "1")
            assert r.exit_code == 0, r.output
            ours, theirs = snapshot(dsn), snapshot(dsn2)
            assert len(ours["history"]) > 1000 and len(ours["slices"]) == 60       # 4 states x 15 source-years
            assert ours == theirs
        finally:
            harness.drop_database(pg_admin, other)


def test_crdc_fallback_waits_for_a_failed_directory_slice(dsn, conn, fake):
    delaware(fake)
    fake.fault("status", "ccd/directory/2022", status=500, times=1000)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2022", "--sources", "ccd_directory,crdc_absenteeism")
    assert r.exit_code == 1
    assert "crdc_absenteeism 2022 DE: needs ccd_directory 2022 DE" in r.output
    assert history(conn, "crdc_absenteeism", 2022) == {}             # not landed with a missing denominator


# ------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("args, message", [
    (["--years", "2015-20x"], "--years"), (["--years", "2022-2015"], "increasing"),
    (["--states", "CA,Texas"], "TEXAS"), (["--sources", "ccd,saipe"], "unknown source ccd"),
    (["--states", "ZZ"], "no state ZZ in the states table"),
    (["--from-dir", ".", "--save-raw", "x"], "cannot be used together"),
])
def test_bad_options_get_one_clear_line(dsn, fake, args, message):
    r = ingest(dsn, fake, *args)
    assert r.exit_code in (1, 2)
    assert message in r.output
    assert "Traceback" not in r.output


def test_states_by_abbreviation_or_fips(dsn, fake):
    delaware(fake)
    fake.add("ccd_directory", 2021, 6, [dir_rec("0600001", 2021, fips=6)])
    r = ingest(dsn, fake, "--states", "de,6", "--years", "2021", "--sources", "ccd_directory")
    assert r.exit_code == 0, r.output
    assert sorted(q["fips"] for p, q in fake.log if p != "api-endpoints/") == ["10", "10", "10", "10", "6"]


def test_another_ingest_running_is_refused_and_named(dsn, conn, fake, monkeypatch):
    from loader import ingest as ingest_module
    monkeypatch.setattr(ingest_module, "LOCK_WAIT_SECONDS", 0.2)
    with psycopg.connect(dsn, application_name="the-other-ingest") as other:
        other.execute("LOCK TABLE public._benchmarks_ingest_lock IN EXCLUSIVE MODE")
        pid = other.info.backend_pid
        r = ingest(dsn, fake, "--states", "DE", "--years", "2021")
    assert r.exit_code == 1 and "another ingest is running" in r.output
    assert f"pid {pid}" in r.output and "the-other-ingest" in r.output


def test_an_advisory_lock_held_by_anyone_blocks_nothing(dsn, conn, fake):
    """The old design's ingest key: any role could take it, and every ingest then failed."""
    import hashlib
    old_key = int.from_bytes(hashlib.sha256(b"district-benchmarks:ingest").digest()[:8], "big", signed=True)
    delaware(fake)
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (old_key,))
        r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory")
    assert r.exit_code == 0, r.output


STAND_IN = """
DROP FUNCTION IF EXISTS compute_all_benchmarks(boolean);
-- A stand-in for the engine's function (not on this branch): records that it ran and returns a summary.
CREATE FUNCTION compute_all_benchmarks(refresh_current boolean DEFAULT true) RETURNS jsonb
LANGUAGE sql AS $$
    INSERT INTO data_refresh_logs (data_source, status, records_updated)
    SELECT 'compute_benchmarks', 'success', count(*) FROM district_data_history
    RETURNING jsonb_build_object('version', 'stand-in', 'history_rows', records_updated)
$$;
"""


def test_compute_calls_compute_all_benchmarks(dsn, conn, fake):
    delaware(fake)
    conn.execute(STAND_IN)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--compute")
    assert r.exit_code == 0, r.output
    assert '"version": "stand-in"' in r.output
    ran = conn.execute("SELECT records_updated FROM data_refresh_logs WHERE data_source = 'compute_benchmarks'")
    assert ran.fetchall() == [(4,)]                                  # called once, after the 4 rows landed


def test_compute_without_the_function_says_so(dsn, conn, fake):
    delaware(fake)
    conn.execute("DROP FUNCTION IF EXISTS compute_all_benchmarks(boolean)")
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--compute")
    assert r.exit_code == 1
    assert "compute_all_benchmarks() is not installed" in r.output
    assert len(history(conn, "ccd_directory", 2021)) == 4            # the ingest itself landed


# ------------------------------------------------------------------------------------------------ raw pages

def test_save_raw_then_from_dir_reproduces_the_database(dsn, fake, pg_admin, migrated_template, tmp_path):
    from tests import harness
    delaware(fake)
    raw = tmp_path / "raw"
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2019-2022", "--save-raw", str(raw))
    assert r.exit_code == 0, r.output
    assert (raw / "school-districts/ccd/directory/2021/fips=10/page-0004.json.gz").is_file()   # 8 rows / 2
    assert (raw / "schools/crdc/enrollment/2021/race/sex/fips=10&race=99&sex=99/page-0001.json.gz").is_file()
    assert not list(raw.rglob("*.partial*"))

    other = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
    try:
        dsn2 = harness.with_dbname(pg_admin, other)
        r = ingest(dsn2, None, "--states", "DE,MD", "--years", "2019-2022", "--from-dir", str(raw))
        assert r.exit_code == 0, r.output
        assert snapshot(dsn2) == snapshot(dsn)
        assert len(snapshot(dsn2)["history"]) > 20
    finally:
        harness.drop_database(pg_admin, other)


def test_from_dir_reports_an_incomplete_chain(dsn, fake, tmp_path):
    delaware(fake)
    raw = tmp_path / "raw"
    assert ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "ccd_directory",
                  "--save-raw", str(raw)).exit_code == 0
    (raw / "school-districts/ccd/directory/2021/fips=10/page-0003.json.gz").unlink()
    r = ingest(dsn, None, "--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--refresh",
               "--from-dir", str(raw))
    assert r.exit_code == 1 and "is incomplete in (no page-0003.json.gz)" in r.output


def test_the_shipped_sample_is_what_make_sample_writes(tmp_path):
    from tests import make_sample
    make_sample.main(tmp_path)
    shipped = make_sample.HERE
    ours = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json.gz"))
    assert ours == sorted(p.relative_to(shipped) for p in shipped.rglob("*.json.gz"))
    assert all((tmp_path / p).read_bytes() == (shipped / p).read_bytes() for p in ours)
    assert sum((shipped / p).stat().st_size for p in ours) < 2_000_000


def test_the_sample_loads_with_no_network(dsn, conn):
    from tests.make_sample import HERE
    r = ingest(dsn, None, "--from-dir", str(HERE))
    assert r.exit_code == 0, r.output
    per_state = dict(conn.execute("SELECT state_abbrev, count(*) FROM districts GROUP BY 1"))
    assert per_state == {"HI": 1, "DE": 45, "OR": 220}
    filled = conn.execute("""
        SELECT source, count(DISTINCT year), count(*) FILTER (WHERE coalesce(enrollment::numeric, expenditure_pp,
               graduation_rate, math_proficiency, chronic_absenteeism_rate, children_poverty_percent) IS NOT NULL)
               * 1.0 / count(*)
          FROM district_data_history GROUP BY 1""").fetchall()
    assert {s: n for s, n, _ in filled} == {"ccd_directory": 7, "ccd_finance": 5, "edfacts_grad": 4,
                                            "edfacts_assess": 4, "crdc_absenteeism": 4, "saipe": 7}
    assert all(share > 0.85 for _, _, share in filled)


def test_output_is_a_line_per_source_and_a_summary_when_not_a_terminal(dsn, fake):
    delaware(fake)
    args = ("--states", "DE,MD", "--years", "2021", "--sources", "ccd_directory,saipe")
    r = ingest(dsn, fake, *args)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "ccd_directory: 2 slice(s) landed; 4 rows new or changed" in r.output
    assert sorted(ln.split(":")[0] for ln in lines if "slice(s) landed" in ln) == ["ccd_directory", "saipe"]
    assert not any(ln.startswith("[") for ln in lines)              # no line per slice ("[1/4] done ...")
    assert "ingest summary" in r.output and "rows landed" in r.output
    table = [ln for ln in lines if ln.startswith("│ total")]
    assert table and "│    4 │" in table[0]

    r = ingest(dsn, fake, *args, "--refresh", "-v")               # -v: a line per slice
    assert "[1/4] done" in r.output and "[4/4] done" in r.output

    fake.fault("status", "saipe/2021", fips="24", status=503, times=100)
    r = ingest(dsn, fake, *args, "--refresh", "-q")               # -q: the errors and a final line
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        "FAILED saipe 2021 MD: HTTP 503 after 3 tries",
        "ingest: 3 slice(s) landed, 1 failed, 0 already done; 0 rows new or changed "
        + r.output.split("rows new or changed ")[1].split("\n")[0],
        "1 slice(s) failed; the others landed. Run the same command again to retry them."]
    details = dict(conn_rows(dsn, "SELECT data_source, details FROM data_refresh_logs ORDER BY id DESC LIMIT 2"))
    failure = details["saipe"]["failures"][0]
    assert failure["error"] == "HTTP 503 after 3 tries"            # in words; and in full, with the URL:
    assert failure["detail"].startswith(f"HTTP 503 from {fake.base_url}/school-districts/saipe/2021/?fips=24")


def test_verbose_and_quiet_together_are_a_usage_error(dsn, fake):
    r = ingest(dsn, fake, "-v", "-q")
    assert r.exit_code == 2 and "--verbose and --quiet contradict each other" in r.output


def conn_rows(dsn, query):
    with psycopg.connect(dsn) as c:
        return c.execute(query).fetchall()


# ------------------------------------------------------------------------------------------------ national scale

def test_every_data_request_names_the_fields_the_cleaning_reads(dsn, fake):
    from loader.sources import ENDPOINTS
    delaware(fake)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2019-2022")
    assert r.exit_code == 0, r.output
    data = [(p, q) for p, q in fake.log if p != "api-endpoints/"]
    assert len(data) > 20
    for path, query in data:
        ep = next(e for e in ENDPOINTS if path.startswith(e.path.split("{year}")[0]))
        assert query.get("fields") == ",".join(ep.fields), path
    assert "fields" not in dict(fake.log)["api-endpoints/"]


@pytest.mark.parametrize("status, asked", [(400, 1), (200, 3)])    # 200: an API ERROR body, retried twice
def test_fields_refused_are_dropped_for_that_endpoint_once_and_said(dsn, conn, fake, status, asked):
    delaware(fake)
    fake.add("ccd_finance", 2019, 10, [{"leaid": A, "year": 2019, "fips": 10, "exp_current_elsec_total": 100.0,
                                        "enrollment_fall_responsible": 1}])
    fake.fault("reject_fields", "ccd/finance", status=status, times=1000)
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2019-2021", "--sources", "ccd_finance,ccd_directory",
               "--concurrency", "1")
    assert r.exit_code == 0, r.output
    assert history(conn, "ccd_finance", 2020) == {A: D("12345.67"), B: None, C: None}
    finance = fake.requests_for("ccd/finance")
    with_fields = [q for _, q in finance if "fields" in q]
    assert len(with_fields) == asked               # the first request, refused; never asked with fields= again
    # then without: DE 2020 (two pages), DE 2019, MD 2020 and 2019 (empty pages)
    assert len(finance) == asked + 2 + 1 + 1 + 1
    assert all("fields" in q for p, q in fake.log if "ccd/directory" in p)     # other endpoints keep it
    notes = [ln for ln in r.output.splitlines() if "refused fields=" in ln]
    assert len(notes) == 1 and notes[0].startswith("note: ccd_finance: the API refused fields=")
    logs = dict(conn.execute("SELECT data_source, details FROM data_refresh_logs"))
    assert len(logs["ccd_finance"]["notes"]) == 1 and "refused fields=" in logs["ccd_finance"]["notes"][0]
    assert logs["ccd_directory"]["notes"] == []


def test_a_request_failing_with_and_without_fields_keeps_its_own_error(dsn, conn, fake):
    delaware(fake)
    fake.fault("status", "ccd/finance/2020", status=404, times=2)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2020", "--sources", "ccd_finance", "--verbose")
    assert r.exit_code == 1
    assert "FAILED ccd_finance 2020 DE: HTTP 404" in r.output and "fields=" in r.output   # the first request's
    assert [("fields" in q) for _, q in fake.requests_for("ccd/finance")] == [True, False]
    assert "refused" not in r.output


def test_saved_pages_replay_whether_they_were_asked_with_fields_or_without(dsn, fake, pg_admin, migrated_template,
                                                                          tmp_path):
    from tests import harness
    delaware(fake)
    fake.fault("reject_fields", "ccd/finance", status=400, times=1000)
    raw = tmp_path / "raw"
    r = ingest(dsn, fake, "--states", "DE", "--years", "2020-2021", "--sources", "ccd_finance,ccd_directory",
               "--save-raw", str(raw))
    assert r.exit_code == 0, r.output
    assert {p.parent.name for p in raw.rglob("page-0001.json.gz")} == {"fips=10", "api-endpoints"}
    other = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
    try:
        dsn2 = harness.with_dbname(pg_admin, other)
        r = ingest(dsn2, None, "--states", "DE", "--years", "2020-2021", "--sources", "ccd_finance,ccd_directory",
                   "--from-dir", str(raw))
        assert r.exit_code == 0, r.output
        assert snapshot(dsn2) == snapshot(dsn) and len(snapshot(dsn)["history"]) == 7
    finally:
        harness.drop_database(pg_admin, other)


def test_one_slow_response_holds_back_no_other_slice(dsn, conn, fake):
    """Three states of one source and year each get a response that trickles for 2 s (then breaks off and is
    asked again): fetched side by side, the run takes about one slow response, not three."""
    import time
    delaware(fake)
    for fips in (10, 24, 6):
        fake.add("ccd_finance", 2020, fips, [{"leaid": f"{fips:02d}00001", "year": 2020, "fips": fips,
                                              "exp_current_elsec_total": 500.0, "enrollment_fall_responsible": 5}])
        fake.fault("trickle", "ccd/finance/2020", fips=str(fips), seconds=2.0)
    t0 = time.monotonic()
    r = ingest(dsn, fake, "--states", "DE,MD,CA", "--years", "2020", "--sources", "ccd_finance")
    took = time.monotonic() - t0
    assert r.exit_code == 0, r.output
    assert took < 2 * 2.0, f"{took:.1f}s"
    assert set(history(conn, "ccd_finance", 2020)) == {A, "2400001", "0600001"}
    xmins = conn.execute("SELECT DISTINCT xmin::text FROM ingest_slices").fetchall()
    assert len(xmins) == 1                                          # and they still landed as one batch


def test_an_empty_slice_of_a_state_with_data_in_other_years_is_a_warning(dsn, conn, fake):
    delaware(fake)
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2021", "--sources", "ccd_directory")
    assert r.exit_code == 0 and "warning:" not in r.output           # MD: no data in any year, no warning
    # 2020: DE's slice is empty, and DE has directory rows for 2021 (in district_data_history) and 2022 (this run)
    r = ingest(dsn, fake, "--states", "DE,MD", "--years", "2020,2022", "--sources", "ccd_directory,crdc_absenteeism")
    assert r.exit_code == 0, r.output                                # a warning, not an error
    warnings = [ln for ln in r.output.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        "warning: ccd_directory 2020 DE: the API returned no records, though DE has ccd_directory data for "
        "2021-2022 (a gap in the source?)",
        "warning: crdc_absenteeism 2020 DE: the API returned no records, though DE has crdc_absenteeism data for "
        "2022 (a gap in the source?)"]
    logs = dict(conn.execute("SELECT data_source, details FROM data_refresh_logs WHERE completed_at IS NOT NULL "
                             "AND details->>'years' = '2020, 2022'"))
    assert logs["ccd_directory"]["warnings"] == [warnings[0].removeprefix("warning: ")]
    assert conn.execute("SELECT status FROM ingest_slices WHERE source = 'ccd_directory' AND year = 2020 "
                        "AND state_fips = '10'").fetchone() == ("done",)


def test_empty_slices_of_one_source_and_year_are_one_warning(dsn, conn, fake):
    delaware(fake)
    for fips in (15, 24):
        fake.add("ccd_directory", 2021, fips, [dir_rec(f"{fips}00001", 2021, fips=fips)])
    r = ingest(dsn, fake, "--states", "DE,MD,HI", "--years", "2020-2021", "--sources", "ccd_directory")
    assert r.exit_code == 0, r.output
    assert [ln for ln in r.output.splitlines() if ln.startswith("warning:")] == [
        "warning: ccd_directory 2020: the API returned no records for 3 states that have ccd_directory data for "
        "other years: DE, HI, MD (a gap in the source?)"]


def test_crdc_schools_pair_when_one_route_sends_numbers_and_the_other_strings(dsn, conn, fake):
    ab = "students_chronically_absent"
    fake.add("crdc_chronic_absenteeism", 2021, 10, [
        dict(school(A, 1, ab, 30), crdc_id=10001), dict(school(A, 2, ab, 20), crdc_id=10002.0)])
    fake.add("crdc_enrollment", 2021, 10, [
        dict(school(A, 1, "enrollment_crdc", 300), crdc_id="010001"),
        dict(school(A, 2, "enrollment_crdc", 100), crdc_id=" 10002 ")])
    r = ingest(dsn, fake, "--states", "DE", "--years", "2021", "--sources", "crdc_absenteeism")
    assert r.exit_code == 0, r.output
    assert history(conn, "crdc_absenteeism", 2021) == {A: D("12.50")}     # 100 * (30 + 20) / (300 + 100)
    counts = slice_counts(conn, "crdc_absenteeism", 2021)
    assert counts["schools"] == 2 and "schools_excluded" not in counts           # both paired
