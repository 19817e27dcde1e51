"""Bulk mode, `ingest --via csv` (loader/bulk.py), against tests/fake_bulk.py (the fake API serving the same
synthetic world as CSV files) and the real PostgreSQL 15."""
from __future__ import annotations

import csv
import gzip
import json
import random
import threading
import tracemalloc

import psycopg
import pytest
from click.testing import CliRunner
from werkzeug import Response

from loader import bulk
from loader.bulk import BulkFile, PageWriter, assign_years, convert_csv, csv_value, file_year, parse_listing
from loader.cli import cli
from loader.sources import CCD_DIRECTORY, CCD_FINANCE, CRDC_ENROLLMENT, EDFACTS_ASSESS
from tests import harness
from tests.fake_bulk import FakeBulk
from tests.synthetic import World

STATES = "DE,HI,OR"
YEARS = "2019-2022"
# DE, HI and OR are asked for; MD is in every file too (and 1986-2024 in the all-years files).
WORLD = {10: 45, 15: 1, 41: 60, 24: 25}

SNAPSHOT = {
    "history": "SELECT to_jsonb(h) - 'created_at' - 'updated_at' FROM district_data_history h "
               "ORDER BY leaid, year, source",
    "districts": "SELECT to_jsonb(d) - 'created_at' - 'updated_at' FROM districts d ORDER BY leaid",
    "states": "SELECT to_jsonb(s) FROM states s ORDER BY fips",
}


def snapshot(dsn) -> dict[str, list]:
    with psycopg.connect(dsn) as c:
        return {k: [r[0] for r in c.execute(q)] for k, q in SNAPSHOT.items()}


def ingest(dsn, fake, *args, cache=None):
    argv = ["ingest", "--dsn", dsn, "--backoff", "0.01", "--retries", "2", "--timeout", "5", "--deadline", "5"]
    if fake is not None:
        argv += ["--api-url", fake.base_url]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    return CliRunner().invoke(cli, argv + list(args), catch_exceptions=False)


@pytest.fixture
def other_dsn(pg_admin, migrated_template):
    """A second fresh, migrated database."""
    name = harness.create_database(pg_admin, "dbench_t", template=migrated_template)
    yield harness.with_dbname(pg_admin, name)
    harness.drop_database(pg_admin, name)


@pytest.fixture
def fake(http_server):
    api = FakeBulk(page_size=50, world=World(WORLD, seed=3))
    with api.serve(http_server):
        yield api


def data_requests(fake) -> list[str]:
    """The paged data routes asked for (not the catalogue, the listings or the files)."""
    return [p for p, _ in fake.log if p != "api-endpoints/" and p != "api-downloads/" and not p.startswith("/csv/")]


# ------------------------------------------------------------------------------------------------ same data

def test_csv_and_api_land_the_same_database(dsn, other_dsn, fake, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "PAGE_RECORDS", 7)          # several pages per state: count on the last only
    r = ingest(dsn, fake, "--states", STATES, "--years", YEARS)
    assert r.exit_code == 0, r.output
    fake.log.clear()

    r = ingest(other_dsn, fake, "--states", STATES, "--years", YEARS, "--via", "csv", cache=tmp_path / "cache")
    assert r.exit_code == 0, r.output
    assert "(CSV downloads)" in r.output and "from the API" not in r.output
    assert data_requests(fake) == []                    # every endpoint has CSV files: no paged route was asked
    files = [e["path"] for e in fake.file_log]
    assert len(files) == len(set(files)) == 10           # each file once: 3 all-years, 7 per-year files of 2019-22
    assert not any(p.endswith(".xls") for p in files)    # the codebooks are listed, not fetched
    assert any("2024" in p for p in files) is False      # per-year files of years not asked are not fetched

    ours, theirs = snapshot(dsn), snapshot(other_dsn)
    assert len(ours["history"]) > 1000
    assert ours == theirs
    with psycopg.connect(other_dsn) as c:
        assert c.execute("SELECT count(*) FROM districts WHERE state_fips = '24'").fetchone()[0] == 0   # MD: no
        assert c.execute("SELECT min(year), max(year) FROM district_data_history").fetchone() == (2019, 2022)
        logged = c.execute("SELECT details->>'api' FROM data_refresh_logs").fetchall()
    assert {a for (a,) in logged} == {f"{fake.base_url} (CSV downloads)"}
    assert not list((tmp_path / "cache").glob("work-*"))  # the converted pages went with the run


def test_a_second_run_asks_conditionally_and_downloads_nothing(dsn, fake, tmp_path):
    args = ("--states", "DE", "--years", "2020-2021", "--sources", "ccd_directory,crdc_absenteeism", "--via", "csv")
    assert ingest(dsn, fake, *args, cache=tmp_path).exit_code == 0
    first = list(fake.file_log)
    assert [e["status"] for e in first] == [200] * 5 and not any(e["if_none_match"] for e in first)
    before = snapshot(dsn)

    fake.file_log.clear()
    r = ingest(dsn, fake, *args, "--refresh", cache=tmp_path)
    assert r.exit_code == 0, r.output
    again = fake.file_log
    assert sorted(e["path"] for e in again) == sorted(e["path"] for e in first)
    assert all(e["status"] == 304 and e["if_none_match"] and e["if_modified_since"] for e in again)
    assert sum(e["bytes"] for e in again) == 0
    assert snapshot(dsn) == before

    fake.file_log.clear()
    assert ingest(dsn, fake, *args, cache=tmp_path).exit_code == 0     # every slice done: no file is needed
    assert fake.file_log == []

    fake.change("ccd_directory")                      # a new version of the file: downloaded whole again
    assert ingest(dsn, fake, *args, "--refresh", "--sources", "ccd_directory", cache=tmp_path).exit_code == 0
    assert [e["status"] for e in fake.file_log] == [200]


@pytest.mark.parametrize("workers, ok", [(4, True), (1, False)])
def test_files_are_downloaded_several_at_once(dsn, fake, tmp_path, monkeypatch, workers, ok):
    """Each file's answer waits until a second file is being asked for too: only downloads that overlap get
    through (with one at a time, the first waits in vain and its slices fail)."""
    monkeypatch.setattr(bulk, "BULK_WORKERS", workers)
    together = threading.Barrier(2, timeout=2)
    serve_file = fake._file

    def file_once_another_is_asked(request):
        try:
            together.wait()
        except threading.BrokenBarrierError:
            together.reset()
            return Response("nobody else is downloading", status=404)
        return serve_file(request)

    monkeypatch.setattr(fake, "_file", file_once_another_is_asked)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2018-2019", "--sources", "edfacts_grad,ccd_finance,saipe",
               "--via", "csv", "--retries", "0", cache=tmp_path)
    assert (r.exit_code == 0) is ok, r.output
    if ok:
        assert len(fake.file_log) == 4        # grad-rates 2018 and 2019, finance and SAIPE (all years)


def test_when_no_converter_process_starts_the_slices_fail_and_nothing_waits_for_its_turn(dsn, fake, tmp_path,
                                                                                       monkeypatch):
    def no_processes(self):
        raise RuntimeError("no converter process could start")

    monkeypatch.setattr(bulk.BulkClient, "_converters", no_processes)
    r = ingest(dsn, fake, "--states", "DE", "--years", "2018-2019", "--sources", "edfacts_grad,ccd_finance",
               "--via", "csv", cache=tmp_path)
    assert r.exit_code == 1
    assert "cannot convert its CSV files: RuntimeError: no converter process could start" in r.output


def test_a_download_broken_off_resumes_with_range(dsn, other_dsn, fake, tmp_path):
    args = ("--states", "DE,OR", "--years", "2021", "--sources", "crdc_absenteeism,ccd_directory")
    assert ingest(other_dsn, fake, *args).exit_code == 0               # the API's answer, to compare with
    fake.break_file("crdc_enrollment_2021", times=1, at=0.4)
    r = ingest(dsn, fake, *args, "--via", "csv", cache=tmp_path)
    assert r.exit_code == 0, r.output
    tries = [e for e in fake.file_log if "crdc_enrollment_2021" in e["path"]]
    assert [e["status"] for e in tries] == [200, 206]
    assert tries[0]["broken"] and 0 < tries[0]["bytes"]
    assert tries[1]["range"] == f"bytes={tries[0]['bytes']}-" and tries[1]["if_range"]
    assert snapshot(dsn) == snapshot(other_dsn)


def test_a_download_that_keeps_breaking_fails_its_slices_and_the_next_run_resumes_it(dsn, fake, tmp_path):
    args = ("--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--via", "csv")
    fake.break_file("lea_directory", times=3, at=0.3)                  # the first try and both retries
    r = ingest(dsn, fake, *args, "-v", cache=tmp_path)
    assert r.exit_code == 1
    assert "FAILED ccd_directory 2021 DE: download cut off (3 tries)\n" in r.output      # in words, then in full:
    assert "connection broke while downloading" in r.output and "gave up after 3 attempts" in r.output
    assert [e["status"] for e in fake.file_log] == [200, 206, 206]
    partial = next(tmp_path.rglob("*.csv.part"))
    held = partial.stat().st_size
    assert held > 0

    fake.file_log.clear()
    r = ingest(dsn, fake, *args, cache=tmp_path)
    assert r.exit_code == 0, r.output
    assert [(e["status"], e["range"]) for e in fake.file_log] == [(206, f"bytes={held}-")]
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT count(*) FROM district_data_history").fetchone()[0] == 45
    assert not list(tmp_path.rglob("*.part"))


# ------------------------------------------------------------------------------------------------ fallbacks

def test_an_endpoint_without_csv_comes_from_the_api_and_the_run_says_so(dsn, other_dsn, http_server, tmp_path):
    api = FakeBulk(page_size=50, world=World(WORLD, seed=3), no_csv={"saipe"})
    args = ("--states", STATES, "--years", "2020-2021", "--sources", "saipe,ccd_finance")
    with api.serve(http_server):
        assert ingest(other_dsn, api, *args).exit_code == 0
        api.log.clear()
        r = ingest(dsn, api, *args, "--via", "csv", cache=tmp_path)
        base = api.base_url
    assert r.exit_code == 0, r.output
    assert "note: saipe: no CSV file in the API's downloads; fetched from the API" in r.output
    asked = data_requests(api)
    assert asked and all(p.startswith("school-districts/saipe/") for p in asked)
    assert len(asked) == 8                              # 3 states x 2 years, one page each but OR's two (62 rows)
    assert [e["path"] for e in api.file_log] == ["ccd/ccd_finance/districts_ccd_finance_1991_2020.csv"]
    assert snapshot(dsn) == snapshot(other_dsn)
    with psycopg.connect(dsn) as c:
        apis = {a for (a,) in c.execute("SELECT details->>'api' FROM data_refresh_logs")}
    assert apis == {f"{base} (CSV downloads; from the API: saipe)"}


def test_an_unavailable_listing_or_a_year_without_a_file_comes_from_the_api(dsn, http_server, tmp_path):
    api = FakeBulk(page_size=50, world=World({10: 45}, seed=3))
    api.listing_fails.add(api.endpoint_ids()["ccd_finance"])
    with api.serve(http_server):
        api.files = _without_year(api.files, "edfacts_grad", 2019)
        r = ingest(dsn, api, "--states", "DE", "--years", "2018-2019", "--sources", "ccd_finance,edfacts_grad",
                   "--via", "csv", cache=tmp_path)
    assert r.exit_code == 0, r.output
    assert "note: ccd_finance: its list of CSV files is unavailable (HTTP 404" in r.output
    assert "note: edfacts_grad: no CSV file for 2019; those years fetched from the API" in r.output
    assert sorted(data_requests(api)) == ["school-districts/ccd/finance/2018/", "school-districts/ccd/finance/2019/",
                                          "school-districts/edfacts/grad-rates/2019/"]
    assert [e["path"] for e in api.file_log] == ["edfacts/edfacts_grad/districts_edfacts_grad_2018.csv"]


def test_without_a_catalogue_everything_comes_from_the_api(dsn, http_server, tmp_path):
    api = FakeBulk(world=World({10: 45}, seed=3), catalogue=False)
    with api.serve(http_server):
        r = ingest(dsn, api, "--states", "DE", "--years", "2021", "--sources", "ccd_directory", "--via", "csv",
                   cache=tmp_path)
    assert r.exit_code == 0, r.output
    assert "note: no endpoint catalogue to find the endpoints' CSV files by; everything is fetched from the API" \
        in r.output
    assert data_requests(api) == ["school-districts/ccd/directory/2021/"] and api.file_log == []


def _without_year(files, key, year):
    def wrapped(k):
        return [f for f in files(k) if not (k == key and f[2] == (year,))]
    return wrapped


# ------------------------------------------------------------------------------------------------ raw pages

def test_save_raw_of_a_csv_run_replays_with_from_dir(dsn, other_dsn, fake, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "PAGE_RECORDS", 10)
    raw = tmp_path / "raw"
    r = ingest(dsn, fake, "--states", STATES, "--years", YEARS, "--via", "csv", "--save-raw", str(raw),
               cache=tmp_path / "cache")
    assert r.exit_code == 0, r.output
    chain = raw / "school-districts/ccd/directory/2021/fips=10"
    assert sorted(p.name for p in chain.iterdir()) == [f"page-{n:04d}.json.gz" for n in range(1, 6)]   # 47 rows
    pages = [json.loads(gzip.decompress(p.read_bytes())) for p in sorted(chain.iterdir())]
    assert [p["count"] for p in pages] == [None] * 4 + [47] and pages[-1]["next"] is None
    assert set(pages[0]["results"][0]) == set(CCD_DIRECTORY.fields)           # only the fields the cleaning reads
    assert (raw / "schools/crdc/enrollment/2021/race/sex/fips=15&race=99&sex=99/page-0001.json.gz").is_file()
    assert (raw / "api-endpoints/page-0001.json.gz").is_file()
    assert not list(raw.rglob(".*"))                                          # no staging or partial directory
    assert not (raw / "school-districts/ccd/directory/2021/fips=24").exists()  # MD was not asked for

    r = ingest(other_dsn, None, "--states", STATES, "--years", YEARS, "--from-dir", str(raw))
    assert r.exit_code == 0, r.output
    assert "not in the directory" not in r.output
    assert snapshot(other_dsn) == snapshot(dsn)


def test_run_takes_via_and_cache_dir_too():
    for name in ("ingest", "run"):
        ctx = cli.commands[name].make_context(name, ["--via", "csv", "--cache-dir", "/tmp/x"])
        assert (ctx.params["via"], str(ctx.params["cache_dir"])) == ("csv", "/tmp/x")
        assert cli.commands[name].make_context(name, []).params["via"] == "api"


def test_via_csv_cannot_be_combined_with_a_replay(dsn, tmp_path):
    for extra in (["--sample"], ["--from-dir", str(tmp_path)]):
        r = ingest(dsn, None, "--via", "csv", *extra)
        assert r.exit_code == 2 and "--via csv downloads files" in r.output


# ------------------------------------------------------------------------------------------------ converting

def write_csv(path, rows: int, states=(6, 41), years=(2019, 2020)) -> None:
    """A finance-like file: `rows` rows over the given states and years, "" and "." for missing values, and two
    wide text columns the endpoint does not read (as the real files have dozens)."""
    rng = random.Random(7)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["leaid", "year", "fips", "exp_current_elsec_total", "enrollment_fall_responsible", "lea_name",
                    "notes"])
        for i in range(rows):
            fips, year = states[i % len(states)], years[(i // len(states)) % len(years)]
            w.writerow([f"{fips:02d}{i:05d}", year, fips, rng.choice([f"{rng.uniform(1e5, 1e9):.1f}", "", ".", "-2"]),
                        rng.randrange(1, 90000), f"District {i} Unified School District of Springfield County",
                        "x" * rng.randrange(60, 140)])


def test_conversion_memory_stays_flat_whatever_the_file_size(tmp_path):
    """200,000 rows (36 MB) in four partitions: a converter that held a partition's rows would hold the file.
    (Under tracemalloc this takes about 10 s; untraced, 1 s.)"""
    big = tmp_path / "big.csv"
    write_csv(big, 200_000)
    assert big.stat().st_size > 36 * 2**20
    writer = PageWriter(tmp_path / "out", CCD_FINANCE, page_records=5_000, buffer_bytes=2 * 2**20)
    tracemalloc.start()
    try:
        stats = convert_csv(big, CCD_FINANCE, {2019, 2020}, None, writer)
        writer.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stats.kept == 200_000
    assert peak < 8 * 2**20, f"peak {peak:,} bytes"
    pages = sorted((tmp_path / "out/school-districts/ccd/finance/2019/fips=6").iterdir())
    assert len(pages) >= 10                     # 50,000 rows in pages of at most 5,000 (smaller when written early)
    last = json.loads(gzip.decompress(pages[-1].read_bytes()))
    assert last["count"] == 50_000 and last["next"] is None


def test_conversion_keeps_the_routes_rows_only(tmp_path):
    path = tmp_path / "assess.csv"
    path.write_text(
        "leaid,year,fips,grade_edfacts,race,sex,lep,homeless,migrant,disability,econ_disadvantaged,foster_care,"
        "military_connected,math_test_pct_prof_midpt,read_test_pct_prof_midpt,lea_name\n"
        "1000001,2020,10,99,99,99,99,99,99,99,99,99,99,45.5,.,A\n"           # kept; "." is null
        "1000001,2020,10,3,99,99,99,99,99,99,99,99,99,80,80,A\n"             # a grade
        "1000001,2020,10,99,1,99,99,99,99,99,99,99,99,80,80,A\n"             # a race
        "1000001,2020,10,99,99,99,99,99,99,99,99,99,1,80,80,A\n"             # military connected
        "1000002,2020,10,99,99,99,99,99,99,99,99,99,99,-3,,B\n"              # kept; "" is null, -3 a number
        "1000003,2019,10,99,99,99,99,99,99,99,99,99,99,50,50,C\n"            # another year
        "2400001,2020,24,99,99,99,99,99,99,99,99,99,99,50,50,D\n"            # another state
        "1000004,2020,10,99\n",                                              # a short row
        encoding="utf-8")
    writer = PageWriter(tmp_path / "out", EDFACTS_ASSESS)
    stats = convert_csv(path, EDFACTS_ASSESS, {2020}, {10}, writer)
    assert writer.finish() == {(2020, 10): 2}
    assert (stats.rows, stats.kept, stats.malformed, stats.dropped) == (8, 2, 1, 5)
    page = json.loads(gzip.decompress(
        (tmp_path / "out/school-districts/edfacts/assessments/2020/grade-99/fips=10/page-0001.json.gz").read_bytes()))
    assert page["count"] == 2 and page["next"] is None
    a, b = page["results"]
    assert a["leaid"] == "1000001" and a["math_test_pct_prof_midpt"] == 45.5 and a["read_test_pct_prof_midpt"] is None
    assert b["math_test_pct_prof_midpt"] == -3 and b["read_test_pct_prof_midpt"] is None
    assert (a["year"], a["fips"], a["grade_edfacts"], a["race"]) == (2020, 10, 99, 99)
    assert "lea_name" not in a                                        # not a field the cleaning reads


def test_crdc_rows_of_another_breakdown_are_dropped(tmp_path):
    path = tmp_path / "enr.csv"
    path.write_text("crdc_id,ncessch,leaid,fips,year,race,sex,disability,lep,enrollment_crdc\n"
                    "1,1,1000001,10,2021,99,99,99,99,300\n"
                    "1,1,1000001,10,2021,99,99,1,99,40\n"
                    "1,1,1000001,10,2021,99,99,99,1,20\n"
                    "1,1,1000001,10,2021,1,99,99,99,100\n", encoding="utf-8")
    writer = PageWriter(tmp_path / "out", CRDC_ENROLLMENT)
    stats = convert_csv(path, CRDC_ENROLLMENT, {2021}, None, writer)
    assert writer.finish() == {(2021, 10): 1} and stats.dropped == 3


def _converted(root) -> dict[tuple[str, str], list[dict]]:
    """Every converted page's records under root, by (year directory, state directory)."""
    out: dict[tuple[str, str], list[dict]] = {}
    for page in sorted(root.rglob("page-*.json.gz")):
        key = (page.parent.parent.parent.parent.name, page.parent.name)
        out.setdefault(key, []).extend(json.loads(gzip.decompress(page.read_bytes()))["results"])
    return out


@pytest.mark.parametrize("chunk", [64, 1000, bulk.CHUNK_CHARS])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_conversion_keeps_what_the_csv_module_reads_whatever_the_chunks(tmp_path, monkeypatch, chunk, newline):
    """Chunks without quotes are filtered by a regex before any row is split; chunks with quotes (a comma or a
    newline inside a field) go through the csv module. Whatever the chunk size, line ending or spelling of a
    code (099, 99.0, ' 99'), the rows kept are those a plain csv.reader pass keeps."""
    monkeypatch.setattr(bulk, "CHUNK_CHARS", chunk)
    rng = random.Random(5)
    header = ["crdc_id", "ncessch", "leaid", "fips", "year", "race", "sex", "disability", "lep", "enrollment_crdc",
              "notes"]
    rows = []
    for i in range(3000):
        fips = rng.choice(["10", "6", "06", "41", "10.0"])
        notes = rng.choice(["with, comma", 'with "quotes"', "two\nlines", "three\r\nlines\n"]) \
            if rng.random() < 0.01 else rng.choice(["", ".", "plain"])
        rows.append([f"{i:05d}", f"{i:05d}", f"{int(float(fips)):02d}{i % 50:05d}", fips,
                     rng.choice(["2021", "2020", "2021.0", " 2021"]),
                     rng.choice(["99", "99", "99", "1", "2", "099", "99.0", " 99", "9", "990", "199"]),
                     rng.choice(["99", "99", "1", "99.", "2"]), rng.choice(["99"] * 5 + ["1"]), "99",
                     rng.choice([str(rng.randrange(0, 500)), "", ".", "-3"]), notes])
    path = tmp_path / "enr.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator=newline).writerows([header] + rows)
    writer = PageWriter(tmp_path / "out", CRDC_ENROLLMENT, page_records=100)
    stats = convert_csv(path, CRDC_ENROLLMENT, {2021}, {10, 6}, writer)
    counts = writer.finish()

    expected: dict[tuple[int, int], list[str]] = {}
    for row in rows:
        year, fips = bulk._code(row[4]), bulk._code(row[3])
        if year == 2021 and fips in (10, 6) and all(bulk._code(row[i]) == 99 for i in (5, 6, 7, 8)):
            expected.setdefault((year, fips), []).append(row[0])
    assert counts == {k: len(v) for k, v in expected.items()} and stats.kept == sum(counts.values()) > 100
    got = _converted(tmp_path / "out")
    assert {k: [r["crdc_id"] for r in recs] for k, recs in got.items()} == {
        (str(y), f"fips={f}&race=99&sex=99"): ids for (y, f), ids in expected.items()}
    assert all(r["year"] == 2021 and r["race"] == 99 and set(r) == set(CRDC_ENROLLMENT.fields) - {"homeless"}
               for recs in got.values() for r in recs)
    assert stats.rows == 3000 and stats.malformed == 0


@pytest.mark.parametrize("text, value", [
    ("", None), (".", None), ("12", 12), ("-2", -2), ("0.1234", 0.1234), ("1e3", 1000.0), ("62.456", 62.456),
    ("N/A", "N/A"), ("GE50", "GE50"), ("1_000", "1_000"), (" 7 ", 7),
])
def test_csv_values_are_what_the_api_would_send(text, value):
    assert csv_value(text) == value and type(csv_value(text)) is type(value)


def test_the_listing_keeps_csv_files_and_reads_their_years():
    results = [
        {"endpoint_id": 80, "file_dir": "edfacts", "file_name": "districts_edfacts_assessments_2019.csv", "file_size": 10},
        {"endpoint_id": 80, "file_dir": "edfacts", "file_name": "districts_edfacts_assessments_2020.csv",
         "file_size": "20"},
        {"endpoint_id": 80, "file_dir": "edfacts", "file_name": "codebook_districts_edfacts_assessments.xls"},
        {"endpoint_id": 80, "file_dir": "edfacts", "file_name": "districts_edfacts_assessments_2009_2018.csv"},
        {"endpoint_id": 81, "file_dir": "edfacts", "file_name": "other_endpoint_2019.csv"},
        {"endpoint_id": 80, "file_dir": "../../etc", "file_name": "passwd.csv"},
        "not a record",
    ]
    files, unsafe = parse_listing(results, 80)
    assert [(f.file_name, f.size, f.year) for f in files] == [
        ("districts_edfacts_assessments_2019.csv", 10, 2019), ("districts_edfacts_assessments_2020.csv", 20, 2020),
        ("districts_edfacts_assessments_2009_2018.csv", None, None)]
    assert unsafe == ["../../etc/passwd.csv"]
    plan, missing = assign_years(files, {2015, 2019, 2021})
    assert [(f.file_name, ys) for f, ys in plan] == [
        ("districts_edfacts_assessments_2019.csv", {2019}),
        ("districts_edfacts_assessments_2009_2018.csv", {2015, 2021})] and missing == set()
    plan, missing = assign_years([f for f in files if f.year], {2019, 2021})
    assert len(plan) == 1 and missing == {2021}
    assert file_year("crdc_2015_16.csv") == 2015 and file_year("lea_directory.csv") is None
    assert BulkFile("a b", "c d.csv", None, None).label == "a b/c d.csv"

