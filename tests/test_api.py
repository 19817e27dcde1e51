"""The HTTP client against the local fake API (tests/fake_api.py): pagination, retries, deadline, error bodies."""
from __future__ import annotations

import gzip
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer

from loader.api import (
    ApiClient,
    ApiError,
    CannotConnect,
    CountMismatch,
    HttpSettings,
    Stopped,
    TransientError,
    parse_page,
)
from loader.errors import BenchmarksError
from loader.sources import catalogue_years, format_years, parse_years_available
from tests.fake_api import FakeApi  # the http_server fixture comes from conftest.py

FAST = HttpSettings(connect_timeout=2, read_timeout=2, deadline=5, retries=3, backoff=0.01, jitter=0.01)
PATH = "school-districts/ccd/directory/2020/"


def records(n, fips=6):
    return [{"leaid": f"{fips:02d}{i:05d}", "year": 2020, "fips": fips, "enrollment": i} for i in range(1, n + 1)]


@pytest.fixture
def fake(http_server):
    api = FakeApi(page_size=3)
    api.add("ccd_directory", 2020, 6, records(8))
    with api.serve(http_server):
        yield api


def fetch(api: FakeApi, settings=FAST, params=(("fips", "6"),)):
    client = ApiClient(api.base_url, settings)
    try:
        return list(client.pages(PATH, list(params)))
    finally:
        client.close()


def data_requests(api: FakeApi):
    return api.requests_for("ccd/directory")


def leaids(pages):
    return [r["leaid"] for p in pages for r in p.results]


def test_follows_next_over_several_pages_keeping_the_query_string(fake):
    pages = fetch(fake)
    assert [len(p.results) for p in pages] == [3, 3, 2]
    assert leaids(pages) == [f"06{i:05d}" for i in range(1, 9)]
    assert [q for _, q in data_requests(fake)] == [{"fips": "6"}, {"fips": "6", "page": "2"},
                                                   {"fips": "6", "page": "3"}]
    assert all(p.count == 8 for p in pages)


def test_the_fields_read_are_asked_for_and_the_response_shrinks(fake):
    fake.add("ccd_directory", 2020, 6, [dict(r, lea_name=f"District number {i}", city_location="Springfield",
                                             county_name="Some County", agency_type=1)
                                        for i, r in enumerate(records(8))])
    fields = ("leaid", "year", "fips", "enrollment")
    client = ApiClient(fake.base_url, FAST)
    try:
        cut = list(client.pages(PATH, [("fips", "6")], fields))
        whole = list(client.pages(PATH, [("fips", "6")], fields, send_fields=False))
    finally:
        client.close()
    assert [q.get("fields") for _, q in data_requests(fake)] == ["leaid,year,fips,enrollment"] * 3 + [None] * 3
    assert all("fields=leaid,year,fips,enrollment" in p.url for p in cut)       # next links keep it
    assert [r for p in cut for r in p.results] == [r for p in whole for r in p.results]   # the decoder cuts too
    assert sum(len(p.body) for p in cut) < 0.75 * sum(len(p.body) for p in whole)


def test_page_size_is_whatever_the_api_sends(fake):
    fake.page_size = 5
    assert [len(p.results) for p in fetch(fake)] == [5, 3]


def test_a_next_link_that_lost_the_filters_gets_them_back(fake):
    fake.next_mode = "drop_query"
    assert leaids(fetch(fake)) == [f"06{i:05d}" for i in range(1, 9)]
    assert all(q.get("fips") == "6" for _, q in data_requests(fake))


def test_a_next_link_naming_another_host_is_followed_on_the_configured_one(fake):
    fake.next_mode = "other_host"
    assert len(leaids(fetch(fake))) == 8
    assert len(data_requests(fake)) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_retryable_status_codes_are_retried(fake, status):
    fake.fault("status", "ccd/directory", page=2, times=2, status=status)
    assert len(leaids(fetch(fake))) == 8
    pages_asked = [q.get("page", "1") for _, q in data_requests(fake)]
    assert pages_asked == ["1", "2", "2", "2", "3"]


def test_429_waits_for_retry_after(fake):
    fake.fault("status", "ccd/directory", page=1, times=1, status=429, retry_after="1")
    t0 = time.monotonic()
    assert len(leaids(fetch(fake))) == 8
    assert time.monotonic() - t0 >= 0.95           # the backoff alone would be ~0.01 s
    assert len(data_requests(fake)) == 4


def test_a_long_retry_after_is_cut_to_max_retry_after(fake):
    fake.fault("status", "ccd/directory", page=1, times=1, status=429, retry_after="3600")
    settings = HttpSettings(connect_timeout=2, read_timeout=2, deadline=5, retries=3, backoff=0.01, jitter=0.0,
                            max_retry_after=0.5)
    t0 = time.monotonic()
    assert len(leaids(fetch(fake, settings))) == 8
    assert 0.45 <= time.monotonic() - t0 < 5
    assert len(data_requests(fake)) == 4


def test_a_status_that_keeps_failing_gives_up_after_the_retries(fake):
    fake.fault("status", "ccd/directory", times=100, status=503)
    with pytest.raises(ApiError, match="HTTP 503 .* after 3 retries"):
        fetch(fake)
    assert len(data_requests(fake)) == 4             # 1 + 3 retries


def test_a_client_error_is_not_retried(fake):
    fake.fault("status", "ccd/directory", times=5, status=400)
    with pytest.raises(ApiError, match="HTTP 400"):
        fetch(fake)
    assert len(data_requests(fake)) == 1


def test_a_trickling_response_is_cut_at_the_deadline_and_retried(fake):
    fake.fault("trickle", "ccd/directory", page=2, times=1, seconds=20)
    settings = HttpSettings(connect_timeout=2, read_timeout=2, deadline=0.6, retries=2, backoff=0.01, jitter=0.0)
    t0 = time.monotonic()
    assert len(leaids(fetch(fake, settings))) == 8
    assert time.monotonic() - t0 < 5                 # not the 20 s the server would have trickled for
    assert [q.get("page", "1") for _, q in data_requests(fake)] == ["1", "2", "2", "3"]


def test_an_api_error_body_with_http_200_is_retried(fake):
    fake.fault("api_error", "ccd/directory", page=1, times=2)
    assert len(leaids(fetch(fake))) == 8
    assert len(data_requests(fake)) == 5


def test_an_api_error_that_persists_is_reported(fake):
    fake.fault("api_error", "ccd/directory", times=100)
    with pytest.raises(ApiError, match="API ERROR .*timed out.*gave up after 4 attempts"):
        fetch(fake)


def test_malformed_json_is_retried(fake):
    fake.fault("malformed", "ccd/directory", page=3, times=1)
    assert len(leaids(fetch(fake))) == 8
    fake.fault("malformed", "ccd/directory", page=1, times=100)
    with pytest.raises(ApiError, match="malformed JSON"):
        fetch(fake)


def test_an_unknown_route_is_a_clear_error(fake):
    client = ApiClient(fake.base_url, FAST)
    with pytest.raises(ApiError, match="HTTP 404"):
        list(client.pages("school-districts/ccd/directory/1970/", [("fips", "6")]))


def test_the_catalogue_gives_each_endpoint_its_years(fake):
    client = ApiClient(fake.base_url, FAST)
    years = catalogue_years(client.catalogue())
    assert format_years(years["edfacts_grad"]) == "2010-2019"
    assert format_years(years["crdc_enrollment"]) == "2011, 2013, 2015, 2017, 2020-2021"
    assert 2019 not in years["edfacts_assess"] and 2020 in years["edfacts_assess"]


def test_years_available_parsing():
    assert parse_years_available("1991, 1994&ndash;1996") == {1991, 1994, 1995, 1996}
    assert parse_years_available("2013, 2015\u20132016") == {2013, 2015, 2016}
    assert parse_years_available("") == set()
    with pytest.raises(ValueError):
        parse_years_available("from 1990 onwards")


def test_an_api_url_must_be_http():
    with pytest.raises(ValueError):
        ApiClient("ftp://example.org/api")


FIELDS = ("leaid", "year", "enrollment")


@pytest.mark.parametrize("fields", [None, FIELDS])
def test_page_bodies_are_read_whole_or_cut_to_the_fields_asked_for(fields):
    body = (b'{"count": 3, "next": null, "previous": null, "results": ['
            b'{"leaid": "0600001", "year": 2020, "enrollment": 123456789012345678901234567890, "lea_name": "A"},'
            b'{"leaid": "0600002", "year": "2020", "enrollment": -2, "agency_type": [1]},'
            b'{"leaid": null, "enrollment": 1.5e3}]}')
    data = parse_page(body, "u", fields)
    assert data["count"] == 3 and data["next"] is None
    assert [r.get("enrollment") for r in data["results"]] == [123456789012345678901234567890, -2, 1500.0]
    assert [r.get("year") for r in data["results"]] == [2020, "2020", None]
    assert ("lea_name" in data["results"][0]) is (fields is None)


@pytest.mark.parametrize("fields", [None, FIELDS])
def test_a_page_with_an_entry_that_is_not_a_record_keeps_every_entry(fields):
    """The cleaning counts and drops such entries (skipped_malformed_record); the decoder must not lose them."""
    data = parse_page(b'{"count": 3, "next": null, "results": [{"leaid": "0600001", "x": 1}, "junk", null]}', "u",
                      fields)
    assert data["results"] == [{"leaid": "0600001", "x": 1}, "junk", None]


@pytest.mark.parametrize("fields", [None, FIELDS])
@pytest.mark.parametrize("body, message", [
    (b'[{"API ERROR": "The query timed out."}]', "API ERROR"),
    (b'{"count": 3, "next": null, "results": [{"leaid": "06', "malformed JSON"),
    (b'{"count": 3, "next": null}', "not a page with results"),
    (b'{"count": "3", "next": null, "results": []}', "count '3'"),
    (b'{"count": 3, "next": 7, "results": []}', "next 7"),
])
def test_bodies_that_are_not_pages_are_errors_to_retry(fields, body, message):
    with pytest.raises(TransientError, match=message):
        parse_page(body, "u", fields)


def test_non_standard_numbers_are_read_and_left_to_the_cleaning():
    data = parse_page(b'{"count": 1, "next": null, "results": [{"leaid": "0600001", "enrollment": NaN}]}', "u", FIELDS)
    assert data["results"][0]["enrollment"] != data["results"][0]["enrollment"]     # NaN: junk, nulled later


def test_pages_of_a_chain_share_one_keep_alive_connection():
    """Against a server that keeps connections open (as the real API does), a thread's requests reuse one."""
    api = FakeApi(page_size=2)
    api.add("ccd_directory", 2020, 6, records(9))
    with api.serve(keep_alive=True):
        pages = fetch(api)
    assert len(pages) == 5 and leaids(pages) == [f"06{i:05d}" for i in range(1, 10)]
    assert len(data_requests(api)) == 5 and len(api.peers) == 1


def test_gzip_bodies_are_decoded(http_server):
    body = json.dumps({"count": 2, "next": None, "results": records(2)}).encode()
    http_server.clear_all_handlers()
    http_server.expect_request("/api/v1/" + PATH).respond_with_data(
        gzip.compress(body), headers={"Content-Encoding": "gzip"}, content_type="application/json")
    client = ApiClient(http_server.url_for("/api/v1"), FAST)
    try:
        pages = list(client.pages(PATH, [("fips", "6")]))
    finally:
        client.close()
        http_server.clear_all_handlers()
    assert leaids(pages) == ["0600001", "0600002"]
    assert "gzip" in http_server.log[-1][0].headers.get("Accept-Encoding", "")


def test_redirects_are_followed_up_to_three(http_server):
    http_server.clear_all_handlers()
    for i in range(4):
        http_server.expect_request(f"/api/v1/moved{i}/").respond_with_data(
            "", status=301 if i % 2 else 302, headers={"Location": f"/api/v1/moved{i + 1}/?fips=6"})
    http_server.expect_request("/api/v1/moved4/").respond_with_json({"count": 1, "next": None, "results": records(1)})
    client = ApiClient(http_server.url_for("/api/v1"), FAST)
    try:
        assert leaids(client.pages("moved1/", [("fips", "6")])) == ["0600001"]        # 3 redirects
        with pytest.raises(ApiError, match="cannot fetch .*/moved0/.*Exceeded 3 redirects"):
            list(client.pages("moved0/", [("fips", "6")]))
    finally:
        client.close()
        http_server.clear_all_handlers()


def test_a_server_that_cannot_be_reached_is_a_clear_error():
    with socket.socket() as s:                      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ApiClient(f"http://127.0.0.1:{port}/api/v1", FAST)
    t0 = time.monotonic()
    with pytest.raises(ApiError, match=rf"^cannot fetch http://127.0.0.1:{port}/api/v1/{PATH}\?fips=6: "):
        list(client.pages(PATH, [("fips", "6")]))
    assert time.monotonic() - t0 < 5


def test_failures_are_told_in_a_few_words_and_in_full(fake):
    fake.add("ccd_directory", 2020, 6, records(2))
    fake.fault("status", PATH, status=503, times=100)
    with pytest.raises(ApiError) as caught:
        fetch(fake)
    assert caught.value.brief == "HTTP 503 after 4 tries"                     # 1 + FAST's 3 retries
    assert caught.value.detail.startswith(f"HTTP 503 from {fake.base_url}/{PATH}?fips=6")
    fake.faults.clear()
    fake.fault("malformed", PATH, times=100)
    with pytest.raises(ApiError) as caught:
        fetch(fake)
    assert caught.value.brief == "malformed JSON (4 tries)"


def test_a_failure_to_connect_is_retried_briefly_until_the_host_has_answered(http_server):
    """Before any answer: FIRST_CONTACT_RETRIES quick retries (a run against a wrong address stops within
    seconds). After one: the full retries, as for any other failure."""
    settings = HttpSettings(connect_timeout=2, read_timeout=2, deadline=5, retries=5, backoff=0.1, jitter=0.0)
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/api/v1/" + PATH).respond_with_json({"count": 1, "next": None, "results": records(1)})
    server.start()
    client = ApiClient(server.url_for("/api/v1"), settings)
    try:
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(CannotConnect) as caught:
            list(client.pages(PATH, [("fips", "6")]))
        first = time.monotonic() - t0                 # waits 0 and 0.1 s: two retries
        assert caught.value.brief == "connection refused" and not client.reached
        server.start()                                # the same port
        assert leaids(client.pages(PATH, [("fips", "6")])) == ["0600001"] and client.reached
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(CannotConnect):
            list(client.pages(PATH, [("fips", "6")]))
        later = time.monotonic() - t0                 # waits 0, 0.1, 0.2, 0.4 and 0.8 s: five retries
    finally:
        client.close()
        if server.is_running():
            server.stop()
    assert first < 0.6 and later > 1.3, (first, later)


def test_causes_of_a_failure_to_connect_in_words():
    port = closed_port()
    for url, brief in [(f"http://127.0.0.1:{port}/api/v1", "connection refused"),
                       ("http://district-api.invalid/api/v1", "DNS lookup failed")]:
        client = ApiClient(url, FAST)
        with pytest.raises(CannotConnect) as caught:
            client.catalogue()
        assert caught.value.brief == brief
        assert caught.value.advice(url).startswith(f"cannot reach the API at {urlsplit(url).netloc}: {brief}. ")


def test_abort_ends_a_request_waiting_for_a_slow_answer_at_once(fake):
    """A response that does not come for minutes: abort() from another thread shuts its socket."""
    fake.add("ccd_directory", 2020, 6, records(2))
    fake.fault("stall", PATH, seconds=60)
    client = ApiClient(fake.base_url, HttpSettings(read_timeout=60, deadline=120))
    threading.Timer(0.5, client.abort).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(Stopped):
            list(client.pages(PATH, [("fips", "6")]))
    finally:
        fake.release.set()
        client.close()
    assert time.monotonic() - t0 < 2


def closed_port() -> int:
    with socket.socket() as s:                      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_the_proxy_is_taken_from_the_environment(fake, no_proxy_env):
    """HTTP_PROXY names the fake API itself; the API host does not resolve, so only the proxy can answer."""
    no_proxy_env.setenv("HTTP_PROXY", fake.base_url.removesuffix("/api/v1"))
    pages = fetch_from(ApiClient("http://district-api.invalid/api/v1", FAST))
    assert leaids(pages) == [f"06{i:05d}" for i in range(1, 9)]
    assert len(data_requests(fake)) == 3


def test_no_proxy_is_honoured(fake, no_proxy_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    no_proxy_env.setenv("HTTP_PROXY", dead)
    with pytest.raises(ApiError, match="cannot fetch"):        # through the dead proxy
        fetch(fake)
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    assert len(leaids(fetch(fake))) == 8


def fetch_from(client: ApiClient):
    try:
        return list(client.pages(PATH, [("fips", "6")]))
    finally:
        client.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A test CA and a certificate for 127.0.0.1 that it signed (openssl command line)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext")
    return d


def test_the_ca_bundle_is_taken_from_the_environment(tls_files, monkeypatch):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files / "server.pem", tls_files / "server.key")
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=ctx)
    server.expect_request("/api/v1/" + PATH).respond_with_json({"count": 1, "next": None, "results": records(1)})
    server.start()
    try:
        url = server.url_for("/api/v1")
        assert url.startswith("https://")
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(ApiError, match="cannot fetch .*SSLError"):   # not signed by the default CAs
            fetch_from(ApiClient(url, FAST))
        monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_files / "ca.pem"))
        assert leaids(fetch_from(ApiClient(url, FAST))) == ["0600001"]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files / "ca.pem"))
        assert leaids(fetch_from(ApiClient(url, FAST))) == ["0600001"]
    finally:
        server.stop()


def test_the_api_errors_belong_to_the_package_hierarchy():
    assert issubclass(ApiError, BenchmarksError) and issubclass(TransientError, BenchmarksError)
    assert issubclass(CountMismatch, ApiError)
    assert not issubclass(ApiError, RuntimeError)
