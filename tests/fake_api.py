"""A local fake of the Urban Institute Education Data API, served by pytest-httpserver (werkzeug, threaded), or
with `serve(keep_alive=True)` by waitress, which keeps HTTP/1.1 connections open between requests as the real
API does (werkzeug's development server closes every connection after one response).

It behaves like the real API as recorded in its own fixtures: pages `{"count", "next", "previous", "results"}`
with `next` a full URL keeping the query string (`...?fips=6&page=2`), a configurable page size (the real one
is 10,000 and has changed before), filtering on query parameters (`fips=6`, `race=99`), `fields=a,b,c` (each
record cut to those keys), the endpoint catalogue `/api-endpoints/` with `years_available` like
"1991, 1994&ndash;2020", and 404 for a year an endpoint does not have. Records come from hand-written lists
(`add`) or from a synthetic world (tests/synthetic.py).

Failures are injected with `fault(kind, ...)`, each firing `times` times on requests whose path contains
`match` (optionally only for one page number and/or one `fips`):
    status      HTTP `status` (with `Retry-After` when given)
    trickle     200, but the body arrives a few bytes at a time for up to `seconds`
    api_error   200 with body [{"API ERROR": "..."}]
    malformed   200 with a truncated JSON body
    count_lie   the page reports a `count` one higher than the rows it has
    drop_row    the page silently lacks its last row
    stall       nothing at all for `seconds` (or until `release` is set), then the page
    reject_fields  only requests with `fields=`: HTTP `status` (e.g. 400), or with status=200 an API ERROR body
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PREFIX = "/api/v1/"
logging.getLogger("werkzeug").setLevel(logging.ERROR)   # no line per request
logging.getLogger("waitress").setLevel(logging.ERROR)   # nor "Task queue depth" notes

# route regex (after /api/v1/) -> (endpoint key, catalogue endpoint_url, years_available of the real API)
ROUTES = {
    "ccd_directory": (r"school-districts/ccd/directory/(\d{4})/",
                      "/api/v1/school-districts/ccd/directory/{year}/", "1986&ndash;2024"),
    "ccd_finance": (r"school-districts/ccd/finance/(\d{4})/",
                    "/api/v1/school-districts/ccd/finance/{year}/", "1991, 1994&ndash;2020"),
    "edfacts_grad": (r"school-districts/edfacts/grad-rates/(\d{4})/",
                     "/api/v1/school-districts/edfacts/grad-rates/{year}/", "2010&ndash;2019"),
    "edfacts_assess": (r"school-districts/edfacts/assessments/(\d{4})/grade-99/",
                       "/api/v1/school-districts/edfacts/assessments/{year}/{grade_edfacts}/",
                       "2009&ndash;2018, 2020"),
    "crdc_chronic_absenteeism": (r"schools/crdc/chronic-absenteeism/(\d{4})/race/sex/",
                                 "/api/v1/schools/crdc/chronic-absenteeism/{year}/race/sex/",
                                 "2013, 2015, 2017, 2020, 2021, 2022"),
    "crdc_enrollment": (r"schools/crdc/enrollment/(\d{4})/race/sex/",
                        "/api/v1/schools/crdc/enrollment/{year}/race/sex/", "2011, 2013, 2015, 2017, 2020, 2021"),
    "saipe": (r"school-districts/saipe/(\d{4})/", "/api/v1/school-districts/saipe/{year}/",
              "1995, 1997, 1999&ndash;2024"),
}


def parse_years(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.replace("&ndash;", "-").split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass
class Fault:
    kind: str
    match: str = ""
    page: int | None = None
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    seconds: float = 30.0
    fips: str | None = None          # only requests for this state (?fips=)


class FakeApi:
    def __init__(self, page_size: int = 10_000, years: dict[str, str] | None = None, world=None,
                 honour_filters: bool = True, next_mode: str = "full", delay: float = 0.0,
                 catalogue: bool = True, cache_bodies: bool = False):
        self.page_size = page_size
        self.years = {k: parse_years(v[2]) for k, v in ROUTES.items()}
        for k, v in (years or {}).items():
            self.years[k] = parse_years(v) if isinstance(v, str) else set(v)
        self.world = world
        self.honour_filters = honour_filters
        self.next_mode = next_mode            # full | drop_query | other_host
        self.delay = delay                    # seconds before answering each data page
        self.catalogue = catalogue
        self.cache_bodies = cache_bodies      # keep each page's JSON once made (benchmarks: serve at wire speed)
        self._bodies: dict[tuple, bytes] = {}
        self.static: dict[tuple[str, int, int], list[dict]] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._port: int | None = None          # of the server answering (serve())
        self.peers: set[int] = set()          # client ports seen: one per TCP connection
        self.release = threading.Event()      # ends every stall fault's wait
        self._rows = lru_cache(maxsize=16)(self._rows_uncached)

    # ---------------------------------------------------------------- setup
    def add(self, key: str, year: int, fips: int, records: list[dict]) -> None:
        self.static[(key, year, int(fips))] = records
        self._rows.cache_clear()

    def fault(self, kind: str, match: str = "", **kw) -> Fault:
        f = Fault(kind, match, **kw)
        with self._lock:
            self.faults.append(f)
        return f

    def requests_for(self, fragment: str) -> list[tuple[str, dict]]:
        return [(p, q) for p, q in self.log if fragment in p]

    @property
    def base_url(self) -> str:
        assert self._port is not None
        return f"http://127.0.0.1:{self._port}/api/v1"

    @contextlib.contextmanager
    def serve(self, server: HTTPServer | None = None, keep_alive: bool = False):
        """Answer on `server` (a running pytest-httpserver, e.g. the `http_server` fixture) or on a new one;
        with keep_alive=True, on a new waitress server (persistent connections)."""
        if keep_alive:
            yield from self._serve_waitress()
            return
        own = server is None
        if own:
            server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
            server.start()
        server.clear_all_handlers()
        server.expect_request(re.compile(r"^/")).respond_with_handler(self.handle)
        self._port = server.port
        try:
            yield self
        finally:
            server.clear_all_handlers()
            if own:
                server.stop()
            self._port = None

    def _serve_waitress(self):
        from waitress.server import create_server
        wsgi = create_server(Request.application(self.handle), host="127.0.0.1", port=0, threads=4,
                             channel_timeout=120, clear_untrusted_proxy_headers=True)
        thread = threading.Thread(target=wsgi.run, name="fake-api", daemon=True)
        thread.start()
        self._port = wsgi.effective_port
        try:
            yield self
        finally:
            wsgi.close()
            thread.join(5)
            self._port = None

    # ---------------------------------------------------------------- data
    def _rows_uncached(self, key: str, year: int, fips: int, filters: tuple) -> tuple:
        if (key, year, fips) in self.static:
            rows = self.static[(key, year, fips)]
            if self.honour_filters:
                rows = [r for r in rows if all(str(r.get(k)) == v for k, v in filters)]
            return tuple(rows)
        if self.world is not None:
            return tuple(self.world.records(key, year, fips, dict(filters) if self.honour_filters else {}))
        return ()

    def _catalogue_rows(self) -> list[dict]:
        return [{"endpoint_id": i, "endpoint_url": url, "years_available": ", ".join(
                    str(y) for y in sorted(self.years[key])), "section": "fake", "class_name": "fake"}
                for i, (key, (_rx, url, _y)) in enumerate(ROUTES.items(), start=1)]

    def _take_fault(self, path: str, page: int, fips: str | None, fields: bool) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if (f.times > 0 and f.match in path and (f.page is None or f.page == page)
                        and (f.fips is None or f.fips == fips) and (fields or f.kind != "reject_fields")):
                    f.times -= 1
                    return f
        return None

    # ---------------------------------------------------------------- HTTP
    def handle(self, request: Request) -> Response:
        path = request.path
        args = list(request.args.items(multi=True))
        rel = path[len(PREFIX):] if path.startswith(PREFIX) else path
        with self._lock:
            self.log.append((rel, dict(args)))
            self.peers.add(request.environ.get("REMOTE_PORT"))
        page = int(request.args.get("page", "1") or 1)
        wanted = request.args.get("fields")
        fault = self._take_fault(rel, page, request.args.get("fips"), wanted is not None)
        if fault and fault.kind == "stall":
            self.release.wait(fault.seconds)
        if fault and fault.kind == "reject_fields" and fault.status == 200:
            return _json([{"API ERROR": "fields: unknown field"}])
        if fault and fault.kind in ("status", "reject_fields"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return Response(json.dumps({"detail": f"fake {fault.status}"}), status=fault.status, headers=headers,
                            content_type="application/json")
        if fault and fault.kind == "api_error":
            return _json([{"API ERROR": "The query timed out. Please try again."}])
        if fault and fault.kind == "malformed":
            return Response('{"count": 3, "next": null, "results": [{"leaid": "01', content_type="application/json")

        cache_key = (path, tuple(sorted(args)))       # the same request whatever the order of its parameters
        if self.cache_bodies and not fault and cache_key in self._bodies:
            return Response(self._bodies[cache_key], content_type="application/json")
        if rel == "api-endpoints/":
            if not self.catalogue:
                return _json({"detail": "Not found."}, 404)
            rows = self._catalogue_rows()
        else:
            found = next(((k, int(m.group(1))) for k, (rx, _u, _y) in ROUTES.items()
                          if (m := re.fullmatch(rx, rel))), None)
            if found is None or found[1] not in self.years[found[0]]:
                return _json({"detail": "Not found."}, 404)
            key, year = found
            fips = request.args.get("fips")
            if not (fips or "").isdigit():
                return _json([{"API ERROR": "this fake needs ?fips="}])
            filters = tuple((k, v) for k, v in args if k not in ("page", "fips", "fields"))
            rows = self._rows(key, year, int(fips), filters)
            if self.delay:
                time.sleep(self.delay)

        total = len(rows)
        start = (page - 1) * self.page_size
        chunk = list(rows[start:start + self.page_size])
        count = total
        if fault and fault.kind == "count_lie":
            count = total + 1
        if fault and fault.kind == "drop_row" and chunk:
            chunk = chunk[:-1]
        if wanted is not None and rel != "api-endpoints/":
            keep = wanted.split(",")
            chunk = [{k: r[k] for k in keep if k in r} if isinstance(r, dict) else r for r in chunk]
        nxt = self._link(request, args, page + 1) if start + self.page_size < total else None
        prev = self._link(request, args, page - 1) if page > 1 else None
        body = json.dumps({"count": count, "next": nxt, "previous": prev, "results": chunk},
                          separators=(",", ":")).encode()     # compact, as Django REST framework sends
        if self.cache_bodies and not fault:
            self._bodies[cache_key] = body
        if fault and fault.kind == "trickle":
            return Response(_trickle(body, fault.seconds), content_type="application/json",
                            direct_passthrough=True)
        return Response(body, content_type="application/json")

    def _link(self, request: Request, args: list, page: int) -> str:
        params = [(k, v) for k, v in args if k != "page"] + [("page", str(page))]
        host = request.host_url.rstrip("/")
        if self.next_mode == "drop_query":
            params = [("page", str(page))]
        elif self.next_mode == "other_host":
            host = "http://internal-api.example:8080"
        return f"{host}{request.path}?{urlencode(params)}"


@pytest.fixture(scope="module")
def http_server():
    """One threaded pytest-httpserver per test module (starting and stopping one costs ~0.5 s)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


def _json(data, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _trickle(body: bytes, seconds: float):
    """A body sent a few bytes at a time, never finishing within `seconds`."""
    end = time.monotonic() + seconds
    step = max(1, len(body) // 1000)
    for i in range(0, len(body), step):
        if time.monotonic() > end:
            return
        yield body[i:i + step]
        time.sleep(0.05)
