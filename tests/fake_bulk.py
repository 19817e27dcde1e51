"""The fake API with its bulk downloads: FakeBulk is tests/fake_api.py's FakeApi (same routes, same synthetic world)
that also answers

    /api/v1/api-downloads/?endpoint_id=N    the endpoint's files, paged like every route (count/next/results),
                                            a codebook (.xls) among them
    /csv/<file_dir>/<file_name>             a file: the world's rows as CSV

Files hold more than a route returns, as the real ones do: every year the fake has for the endpoint and every
state of the world, and subgroup rows (the grad-rates and CRDC files carry all their race/sex rows; the
assessments file has rows per grade and subgroup; the CRDC files have `disability` and `lep` rows). Missing
values are written as "" or "." (alternately). By default the grad-rates, assessments and CRDC endpoints have one
file per year and the others one file for all years (named without a year, or with two); `no_csv` lists
endpoints whose listing has only a codebook.

Files carry an ETag and a Last-Modified and answer a conditional request (If-None-Match / If-Modified-Since)
with 304; `Accept-Ranges: bytes` and a `Range: bytes=N-` request get 206 (honouring If-Range). Faults:
`break_file(match, times, at)` sends a file's Content-Length but breaks the connection off after `at` of the
body; `change(key)` makes an endpoint's files new (a new ETag and Last-Modified). `file_log` has one entry per
file request.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import unquote, urlencode

from werkzeug import Request, Response

from loader.sources import ENDPOINTS
from tests.fake_api import PREFIX, ROUTES, FakeApi

PER_YEAR = ("edfacts_grad", "edfacts_assess", "crdc_chronic_absenteeism", "crdc_enrollment")
FILE_DIRS = {"ccd_directory": "ccd", "ccd_finance": "ccd", "edfacts_grad": "edfacts", "edfacts_assess": "edfacts",
             "crdc_chronic_absenteeism": "crdc", "crdc_enrollment": "crdc", "saipe": "saipe"}
ALL_YEARS_NAMES = {"ccd_directory": "school-districts_lea_directory.csv",       # no year in the name
                   "ccd_finance": "districts_ccd_finance_1991_2020.csv",        # two years: all of them
                   "saipe": "districts_saipe.csv"}
BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ROUTE_FILTERS = {ep.key: dict(ep.filters) for ep in ENDPOINTS}


@dataclass
class FileFault:
    match: str
    times: int = 1
    at: float = 0.5                  # share of the body sent before the connection breaks


class FakeBulk(FakeApi):
    def __init__(self, *args, per_year=PER_YEAR, no_csv=(), listing_page_size: int = 2, ranges: bool = True,
                 validators: bool = True, **kw):
        super().__init__(*args, **kw)
        self.per_year = set(per_year)
        self.no_csv = set(no_csv)
        self.listing_page_size = listing_page_size
        self.ranges = ranges                  # Accept-Ranges and 206
        self.validators = validators          # ETag and Last-Modified, 304
        self.file_faults: list[FileFault] = []
        self.listing_fails: set[int] = set()  # endpoint ids whose listing answers 404
        self.file_log: list[dict] = []
        self.versions: dict[str, int] = {}    # endpoint key -> its files' version (change())
        self._file_cache: dict[tuple[str, str, int], bytes] = {}
        self._file_lock = threading.Lock()

    # ---------------------------------------------------------------- setup
    def break_file(self, match: str, times: int = 1, at: float = 0.5) -> FileFault:
        f = FileFault(match, times, at)
        with self._file_lock:
            self.file_faults.append(f)
        return f

    def change(self, key: str) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1

    def files_requested(self, status: int | None = None) -> list[dict]:
        return [e for e in self.file_log if status is None or e["status"] == status]

    # ---------------------------------------------------------------- the files
    def endpoint_ids(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(ROUTES, start=1)}

    def files(self, key: str) -> list[tuple[str, str, tuple[int, ...]]]:
        """(file_dir, file_name, years) of the endpoint's CSV files."""
        if key in self.no_csv:
            return []
        years = tuple(sorted(self.years[key]))
        d = f"{FILE_DIRS[key]}/{key}"
        if key in self.per_year:
            return [(d, f"districts_{key}_{y}.csv", (y,)) for y in years]
        return [(d, ALL_YEARS_NAMES.get(key, f"{key}.csv"), years)]

    def listing(self, endpoint_id: int) -> list[dict]:
        key = {i: k for k, i in self.endpoint_ids().items()}.get(endpoint_id)
        if key is None:
            return []
        rows = [{"endpoint_id": endpoint_id, "file_dir": d, "file_name": n, "file_size": len(self.body(key, d, n)),
                 "file_type": "csv", "years": ", ".join(map(str, ys))} for d, n, ys in self.files(key)]
        rows.append({"endpoint_id": endpoint_id, "file_dir": f"{FILE_DIRS[key]}/{key}",
                     "file_name": f"codebook_{key}.xls", "file_size": 12345, "file_type": "xls", "years": ""})
        return rows

    def body(self, key: str, file_dir: str, name: str) -> bytes:
        version = self.versions.get(key, 0)
        with self._file_lock:
            cached = self._file_cache.get((file_dir, name, version))
        if cached is not None:
            return cached
        years = next(ys for d, n, ys in self.files(key) if (d, n) == (file_dir, name))
        body = self._csv(key, years, version)
        with self._file_lock:
            self._file_cache[(file_dir, name, version)] = body
        return body

    def _records(self, key: str, year: int, fips: int) -> list[dict]:
        """The rows the route returns (as the fake API makes them), then the file's other rows."""
        if (key, year, fips) in self.static:
            return list(self.static[(key, year, fips)])
        if self.world is None:
            return []
        filters = ROUTE_FILTERS.get(key, {})
        rows = self.world.records(key, year, fips, filters)
        if filters:     # (the world draws a filtered route's values apart: its totals are taken from the route)
            rows += [r for r in self.world.records(key, year, fips, {})
                     if any(str(r.get(k)) != v for k, v in filters.items())]
        return rows + _subgroups(key, rows)

    def _csv(self, key: str, years: tuple[int, ...], version: int) -> bytes:
        """The file's rows, written as they are made (a national all-years file is hundreds of MB: its records
        are never all held at once). The columns are those of the first (year, state) with rows and of any
        hand-written records; the world's records of an endpoint all have the same fields."""
        states = sorted({f for (k, _y, f) in self.static if k == key}
                        | set(self.world.districts_per_state if self.world is not None else ()))
        groups = ((y, f) for y in years for f in states)
        columns: dict[str, None] = {}
        for recs in self.static.values():
            for r in recs:
                columns.update(dict.fromkeys(r))
        first: list[dict] = []
        for y, f in groups:
            first = self._records(key, y, f)
            if first:
                break
        for r in first:
            columns.update(dict.fromkeys(r))
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        parts: list[bytes] = []
        missing = 0
        for rows in itertools.chain([first], (self._records(key, y, f) for y, f in groups)):
            for r in rows:
                if not columns.keys() >= r.keys():
                    raise AssertionError(f"fake_bulk: a {key} record has fields beyond the file's columns")
                line = [r.get(c) for c in columns]
                if None in line:
                    for i, v in enumerate(line):
                        if v is None:
                            missing += 1
                            line[i] = "." if missing % 2 else ""
                w.writerow(line)        # numbers as str() writes them (a float as its repr)
            if out.tell() > 2**22:
                parts.append(out.getvalue().encode())
                out.seek(0)
                out.truncate()
        parts.append(out.getvalue().encode())
        return b"".join(parts)

    def etag(self, body: bytes, key: str) -> str:
        return '"' + hashlib.sha1(body + str(self.versions.get(key, 0)).encode()).hexdigest()[:16] + '"'

    def last_modified(self, key: str) -> datetime:
        return BASE_TIME + timedelta(days=self.versions.get(key, 0))

    # ---------------------------------------------------------------- HTTP
    def handle(self, request: Request) -> Response:
        path = request.path
        if path == PREFIX + "api-downloads/":
            return self._listing(request)
        if path.startswith("/csv/"):
            return self._file(request)
        return super().handle(request)

    def _listing(self, request: Request) -> Response:
        args = list(request.args.items(multi=True))
        with self._lock:
            self.log.append(("api-downloads/", dict(args)))
        try:
            endpoint_id = int(request.args.get("endpoint_id", ""))
        except ValueError:
            return Response(json.dumps([{"API ERROR": "endpoint_id is required"}]), content_type="application/json")
        if endpoint_id in self.listing_fails:
            return Response(json.dumps({"detail": "fake 404"}), status=404, content_type="application/json")
        rows = self.listing(endpoint_id)
        page = int(request.args.get("page", "1") or 1)
        size = self.listing_page_size
        chunk = rows[(page - 1) * size:page * size]
        nxt = None
        if page * size < len(rows):
            params = [(k, v) for k, v in args if k != "page"] + [("page", str(page + 1))]
            nxt = f"{request.host_url.rstrip('/')}{request.path}?{urlencode(params)}"
        return Response(json.dumps({"count": len(rows), "next": nxt, "previous": None, "results": chunk}),
                        content_type="application/json")

    def _file(self, request: Request) -> Response:
        rel = unquote(request.path[len("/csv/"):])
        file_dir, _, name = rel.rpartition("/")
        key = next((k for k in ROUTES for d, n, _ys in self.files(k) if (d, n) == (file_dir, name)), None)
        entry = {"path": rel, "range": request.headers.get("Range"), "if_range": request.headers.get("If-Range"),
                 "if_none_match": request.headers.get("If-None-Match"),
                 "if_modified_since": request.headers.get("If-Modified-Since"), "status": 404, "bytes": 0}
        with self._lock:
            self.log.append(("/csv/" + rel, {}))
        with self._file_lock:
            self.file_log.append(entry)
        if key is None:
            return Response("not found", status=404)
        body = self.body(key, file_dir, name)
        headers = {"Content-Type": "text/csv"}
        etag, modified = self.etag(body, key), self.last_modified(key)
        if self.validators:
            headers["ETag"] = etag
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
            inm, ims = request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")
            if (inm is not None and inm == etag) or (inm is None and ims and _not_after(ims, modified)):
                entry["status"] = 304
                return Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
        start, status = 0, 200
        if self.ranges:
            headers["Accept-Ranges"] = "bytes"
            m = re.fullmatch(r"bytes=([0-9]+)-", request.headers.get("Range", ""))
            if_range = request.headers.get("If-Range")
            if m and (if_range is None or if_range in (etag, headers.get("Last-Modified"))):
                start = int(m.group(1))
                if start >= len(body):
                    entry["status"] = 416
                    return Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        part = body[start:]
        headers["Content-Length"] = str(len(part))
        fault = self._take_file_fault(rel)
        entry["status"] = status
        if fault:
            cut = int(len(part) * fault.at)
            entry["bytes"] = cut
            entry["broken"] = True
            return Response(_broken(part[:cut]), status=status, headers=headers, direct_passthrough=True)
        entry["bytes"] = len(part)
        return Response(part, status=status, headers=headers)

    def _take_file_fault(self, path: str) -> FileFault | None:
        with self._file_lock:
            for f in self.file_faults:
                if f.times > 0 and f.match in path:
                    f.times -= 1
                    return f
        return None


def _broken(data: bytes):
    """The first part of a body; then the connection is dropped (the server's handler fails mid-response)."""
    yield data
    raise ConnectionAbortedError("fake: the download breaks off here")


def _not_after(header: str, modified: datetime) -> bool:
    try:
        return modified <= parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False


def _subgroups(key: str, rows: list[dict]) -> list[dict]:
    """Rows a file has beyond the world's (which the route's path or filters exclude), with other values, so
    that landing one of them would show."""
    totals = [r for r in rows if r.get("leaid") and all(r.get(c, 99) == 99 for c in ("race", "sex", "lep",
                                                                                      "disability"))]
    out: list[dict] = []
    if key == "edfacts_assess":
        for r in totals:
            for extra in ({"grade_edfacts": 3}, {"race": 1}, {"sex": 2}, {"disability": 1}, {"econ_disadvantaged": 1},
                          {"military_connected": 1}):
                out.append(dict(r, **extra, math_test_pct_prof_midpt=99.5, read_test_pct_prof_midpt=98.5))
    elif key in ("crdc_enrollment", "crdc_chronic_absenteeism"):
        value = "enrollment_crdc" if key == "crdc_enrollment" else "students_chronically_absent"
        for r in totals:
            for extra in ({"disability": 1}, {"lep": 1}):
                out.append(dict(r, **extra, **{value: 100_000}))
    return out
