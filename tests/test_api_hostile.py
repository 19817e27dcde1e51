"""The client against a server that cannot be trusted: bodies that inflate without end, chains of `next` links
past the count, redirects to other hosts, bodies nested too deeply, credentials in the API URL."""
from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from loader.api import ApiClient, ApiError, HttpSettings
from loader.cli import cli
from tests.fake_api import FakeApi

FAST = HttpSettings(connect_timeout=2, read_timeout=2, deadline=10, retries=1, backoff=0.01, jitter=0.01)
PATH = "school-districts/ccd/directory/2020/"


def client_for(server, **settings) -> ApiClient:
    return ApiClient(server.url_for("/api/v1"), HttpSettings(**{**FAST.__dict__, **settings}))


@pytest.fixture
def server(http_server):
    http_server.clear()              # handlers and the request log of earlier tests
    yield http_server
    http_server.clear()


def test_a_body_that_inflates_past_the_cap_is_a_bad_page(server):
    bomb = gzip.compress(b'{"count": 1, "next": null, "results": [' + b" " * (8 * 2**20) + b"]}")
    assert len(bomb) < 64 * 1024
    server.expect_request("/api/v1/" + PATH).respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/json")
    client = client_for(server, max_body=2 * 2**20)
    with pytest.raises(ApiError, match="inflates past 2,097,152 bytes"):
        list(client.pages(PATH, [("fips", "6")]))
    client.close()


def test_a_chain_stops_when_the_count_is_reached(server):
    """count 0 and an endless supply of distinct next links: one page is read, the chain ends there."""
    for i in range(50):
        server.expect_request(f"/api/v1/{PATH}", query_string=f"fips=6&page={i}" if i else "fips=6").respond_with_json(
            {"count": 0, "next": server.url_for(f"/api/v1/{PATH}?fips=6&page={i + 1}"), "results": []})
    client = client_for(server)
    pages = list(client.pages(PATH, [("fips", "6")]))
    client.close()
    assert len(pages) == 1 and len(server.log) == 1


def test_more_pages_than_the_count_allows_is_an_error(server):
    for i in range(5):
        server.expect_request(f"/api/v1/{PATH}", query_string=f"fips=6&page={i}" if i else "fips=6").respond_with_json(
            {"count": 2, "next": server.url_for(f"/api/v1/{PATH}?fips=6&page={i + 1}"), "results": []})
    client = client_for(server)
    with pytest.raises(ApiError, match="more pages than its count"):
        list(client.pages(PATH, [("fips", "6")]))
    client.close()
    assert len(server.log) == 3


def test_a_redirect_to_another_host_is_not_followed(server):
    other = "http://127.0.0.2:9/api/v1/" + PATH           # nothing there; it must not even be tried
    server.expect_request("/api/v1/" + PATH).respond_with_data("", status=302, headers={"Location": other})
    client = client_for(server, retries=2)
    with pytest.raises(ApiError, match="redirected to another origin"):
        list(client.pages(PATH, [("fips", "6")]))
    client.close()


def test_a_redirect_within_the_origin_is_followed(server):
    server.expect_request("/api/v1/old/").respond_with_data("", status=301, headers={"Location": "/api/v1/" + PATH})
    server.expect_request("/api/v1/" + PATH).respond_with_json({"count": 1, "next": None, "results": [{"a": 1}]})
    client = client_for(server)
    assert [p.results for p in client.pages("old/")] == [[{"a": 1}]]
    client.close()


@pytest.mark.parametrize("fields", [None, ("leaid",)])
def test_a_body_nested_too_deeply_is_a_bad_page(server, fields):
    server.expect_request("/api/v1/api-endpoints/").respond_with_data(
        "[" * 200_000 + "]" * 200_000, content_type="application/json")
    client = client_for(server)
    with pytest.raises(ApiError, match="nested too deeply|malformed JSON"):
        list(client.pages("api-endpoints/", fields=fields))
    client.close()


def test_credentials_in_the_api_url_are_sent_but_never_shown_or_logged(http_server, dsn, conn):
    api = FakeApi(page_size=50)
    api.add("ccd_directory", 2021, 10, [{"leaid": "1000001", "year": 2021, "fips": 10, "enrollment": 5}])
    with api.serve(http_server):
        url = api.base_url.replace("http://", "http://bob:S3cretPW@")
        res = CliRunner().invoke(cli, ["ingest", "--states", "DE", "--years", "2021", "--sources", "ccd_directory",
                                       "--api-url", url, "--dsn", dsn])
        auth = http_server.log[-1][0].authorization
        base = api.base_url
    assert res.exit_code == 0, res.output
    assert "S3cretPW" not in res.output
    assert auth is not None and auth.password == "S3cretPW"
    logged = json.dumps([r[0] for r in conn.execute("SELECT details FROM data_refresh_logs")])
    assert "S3cretPW" not in logged and "bob" not in logged and base in logged
    bad = CliRunner().invoke(cli, ["ingest", "--api-url", "ftp://bob:S3cretPW@host/x", "--dsn", dsn])
    assert bad.exit_code == 2 and "S3cretPW" not in bad.output
