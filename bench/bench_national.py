"""National ingest against a fake API that is as slow as the real one. Prints figures.

    .venv/bin/python -m bench.bench_national [--years 2015-2022] [--states all] [--compress 20] [--seed 1]
        [--concurrency N] [--skip-sequential] [--skip-api] [--skip-csv]

The fake API (tests/fake_bulk.py: the routes, the bulk CSV downloads, tests/synthetic.py's national world of
~19,000 districts in 52 states, records as wide as the real ones) runs in its own process behind a latency model
of the real service, time-compressed by --compress so that the run fits in a few minutes:

- an API request (a page, the catalogue, a file listing) waits first for a latency drawn from a heavy-tailed
  (log-normal) distribution, median 1 s, clipped to 0.1-29 s, the range the real service shows for the same
  request; its body is then sent at most 4 MB/s per connection, so that a full-width 10,000-record page takes
  seconds (the CCD directory's 18 MB: 4.5 s);
- a bulk file (a static download, not an API query) waits a fixed 0.2 s, then is sent at most 20 MB/s per
  connection. This is an assumption, not a measurement of the real site (static files from a web server or a
  CDN are not slowed by the API's query engine; 20 MB/s is a plain single-connection download);
- every wait and every transfer time is divided by --compress. The loader's, PostgreSQL's and the fake
  server's CPU are not: the compression makes the network 20x faster while the computing stays as it is, so
  ratios measured here understate what concurrency (which only overlaps waits) gains against the real service,
  and overstate what bulk mode's CPU (reading 2.2 GB of CSV) costs next to its downloads;
- the fake server runs at nice 10: the real service's CPU is on its own machines, so the fake's takes from the
  clients measured only what they leave idle.

Before any client runs, the server makes every page and file the clients will ask for (the warm-up), so that
no client's wall clock includes the fake's own generation. Then three clients fetch the same national dataset
from the same server, one after another:

(a) a sequential client: one request at a time, every field, page after page (the pattern of the first design and
    of the published R client); it downloads and decodes each page, landing nothing;
(b) `district-benchmarks ingest` in API mode (concurrent slices, `fields=`), into a fresh database;
(c) `district-benchmarks ingest --via csv` (the bulk files, downloaded into a fresh cache), into another.

For each it prints the wall clock, requests and bytes (by endpoint), the CPU seconds of the loader, PostgreSQL
and the fake server, and the load average; then the speed-ups (a)/(b), (a)/(c) and (c)/(b).
Not a test: figures depend on the machine and on the latencies drawn (seeded by --seed).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import pickle
import random
import re
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_ingest import cpu_seconds, postmaster_pid  # noqa: E402
from loader.ingest import parse_years  # noqa: E402
from loader.sources import ENDPOINTS  # noqa: E402
from tests import harness  # noqa: E402
from tests.synthetic import NATIONAL_DISTRICTS, World  # noqa: E402

MEDIAN_LATENCY = 1.0        # seconds, before compression
SIGMA = 1.2                 # of the log-normal: a heavy tail (the 99th percentile is ~16 s)
LATENCY_RANGE = (0.1, 29.0)
BYTES_PER_SECOND = 4e6      # per connection, before compression: an API response
FILE_LATENCY = 0.2          # seconds before a bulk file's first byte, before compression
FILE_BYTES_PER_SECOND = 20e6   # per connection, before compression: a bulk file (an assumption: see above)
SERVER_NICE = 10
CHUNK = 256 * 1024          # bytes written at a time: a page
FILE_CHUNK = 2**20          # ... a bulk file


def serve(compress: float, seed: int, years: list[int], states: list[int], warm_dir: Path | None, port_queue,
          stop_event) -> None:
    """The fake API behind the latency model, on waitress (keep-alive, enough threads for every client). It runs
    at a lower priority: the real service's CPU is on its own machines, so the fake's should take from the
    client measured only what the client leaves idle."""
    os.nice(SERVER_NICE)
    from waitress.server import create_server
    from werkzeug import Request, Response
    from werkzeug.test import EnvironBuilder

    from tests.fake_api import PREFIX, ROUTES
    from tests.fake_bulk import FakeBulk

    routes = [(key, re.compile(rx)) for key, (rx, _u, _y) in ROUTES.items()]

    class SlowApi(FakeBulk):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.rng = random.Random(seed)
            self.stats_lock = threading.Lock()
            self.sent: Counter = Counter()          # bytes by endpoint (or "file <endpoint>", "other")
            self.requests: Counter = Counter()
            self.cpu0 = time.process_time()

        def what(self, path: str) -> str:
            if path.startswith("/csv/"):
                return "file " + path.rsplit("/", 2)[-2]
            rel = path[len(PREFIX):]
            return next((key for key, rx in routes if rx.fullmatch(rel)), "other")

        def listing(self, endpoint_id: int) -> list[dict]:
            """As FakeBulk's, but with the sizes of the files made in the warm-up only (making the others would
            take minutes; the loader needs a listed size only to judge its cache on a later run)."""
            key = {i: k for k, i in self.endpoint_ids().items()}.get(endpoint_id)
            if key is None:
                return []
            rows = []
            for d, n, ys in self.files(key):
                cached = self._file_cache.get((d, n, self.versions.get(key, 0)))
                rows.append({"endpoint_id": endpoint_id, "file_dir": d, "file_name": n,
                             "file_size": len(cached) if cached is not None else None, "file_type": "csv",
                             "years": ", ".join(map(str, ys))})
            rows.append({"endpoint_id": endpoint_id, "file_dir": d, "file_name": f"codebook_{key}.xls",
                         "file_size": 12345, "file_type": "xls", "years": ""})
            return rows

        def handle(self, request: Request) -> Response:
            if request.path == "/__stats":
                with self.stats_lock:
                    out = {"sent": dict(self.sent), "requests": dict(self.requests),
                           "cpu": time.process_time() - self.cpu0}
                    self.sent, self.requests, self.cpu0 = Counter(), Counter(), time.process_time()
                    self.rng = random.Random(seed)      # each client meets the same latencies, in its order
                return Response(json.dumps(out), content_type="application/json")
            what = self.what(request.path)
            is_file = what.startswith("file ")
            if is_file:
                wait, rate = FILE_LATENCY, FILE_BYTES_PER_SECOND
            else:
                with self.stats_lock:
                    wait = self.rng.lognormvariate(math.log(MEDIAN_LATENCY), SIGMA)
                wait, rate = min(max(wait, LATENCY_RANGE[0]), LATENCY_RANGE[1]), BYTES_PER_SECOND
            time.sleep(wait / compress)
            resp = super().handle(request)
            with self.stats_lock:
                self.requests[what] += 1
            if resp.direct_passthrough or resp.status_code in (304, 416):
                return resp
            body = resp.get_data()
            rate *= compress

            chunk = FILE_CHUNK if is_file else CHUNK

            def throttled():
                t0 = time.monotonic()
                for i in range(0, len(body), chunk):
                    part = body[i:i + chunk]
                    ahead = t0 + (i + len(part)) / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                    with self.stats_lock:
                        self.sent[what] += len(part)
                    yield part

            headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
            return Response(throttled(), status=resp.status_code, headers=headers, direct_passthrough=True)

    api = SlowApi(page_size=10_000, world=World(NATIONAL_DISTRICTS, seed=1), cache_bodies=True,
                  listing_page_size=10_000)     # file listings are paged like every route: one page here
    wsgi = create_server(Request.application(api.handle), host="127.0.0.1", port=0, threads=48,
                         channel_timeout=600, connection_limit=200)
    host = f"http://127.0.0.1:{wsgi.effective_port}"
    t0 = time.monotonic()
    saved = warm_dir / f"{warm_key(years, states)}.pickle" if warm_dir else None
    if saved and saved.is_file():
        with open(saved, "rb") as fh:
            base, api._bodies, api._file_cache = pickle.load(fh)
        # The pages' `next` links name the server that made them: put this one's in.
        api._bodies = {k: v.replace(base.encode(), host.encode()) for k, v in api._bodies.items()}
        how = f"loaded from {saved}"
    else:
        warm_up(api, host, years, states, EnvironBuilder)
        how = "made"
        if saved:
            saved.parent.mkdir(parents=True, exist_ok=True)
            with open(saved.with_suffix(".tmp"), "wb") as fh:
                pickle.dump((host, api._bodies, api._file_cache), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(saved.with_suffix(".tmp"), saved)
            how += f", kept in {saved}"
    port_queue.put((f"{host}/api/v1", time.monotonic() - t0, how))
    api.cpu0 = time.process_time()
    def run() -> None:
        with contextlib.suppress(OSError, ValueError):     # the sockets closed under it at the end
            wsgi.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stop_event.wait()
    wsgi.close()


def warm_up(api, host: str, years: list[int], states: list[int], builder) -> None:
    """Make (and keep) every page the clients ask for, with and without fields=, and every bulk file."""
    from werkzeug import Request

    from tests.fake_bulk import FakeBulk

    def get(path: str, params: list[tuple[str, str]]):
        while True:
            env = builder(path=path, base_url=host, query_string=params).get_environ()
            body = json.loads(FakeBulk.handle(api, Request(env)).get_data())
            if not isinstance(body, dict) or not body.get("next"):
                return
            params = [(k, v) for k, v in params if k != "page"] + [("page", body["next"].rsplit("page=", 1)[1])]

    get("/api/v1/api-endpoints/", [])
    for ep in ENDPOINTS:
        for year in years:
            if not api.world.has(ep.key, year):
                continue
            for fips in states:
                params = ep.params(str(fips))
                get(f"/api/v1/{ep.url_path(year)}", params)
                get(f"/api/v1/{ep.url_path(year)}", params + [("fields", ",".join(ep.fields))])
        for d, n, ys in api.files(ep.key):
            if set(ys) & set(years):
                api.body(ep.key, d, n)


def warm_key(years: list[int], states: list[int]) -> str:
    """Names what the warm-up made: the fake's and the world's code, the years and the states."""
    h = hashlib.sha1()
    for name in ("tests/synthetic.py", "tests/fake_api.py", "tests/fake_bulk.py"):
        h.update((REPO / name).read_bytes())
    h.update(repr((years, states)).encode())
    return h.hexdigest()[:16]


def server_stats(api_url: str) -> dict:
    """Bytes and requests by endpoint, and the server's CPU seconds, since the last call (and reset)."""
    return requests.get(api_url.rsplit("/api/v1", 1)[0] + "/__stats", timeout=60).json()


def describe(stats: dict) -> str:
    sent = stats["sent"]
    parts = [f"{k} {v / 1e6:,.0f}" for k, v in sorted(sent.items(), key=lambda kv: -kv[1]) if v >= 0.5e6]
    return (f"{sum(sent.values()) / 1e6:,.0f} MB in {sum(stats['requests'].values()):,} requests "
            f"(MB by endpoint: {', '.join(parts)})")


def sequential(api_url: str, years: list[int], states: list[int]) -> tuple[float, float, int]:
    """(seconds, CPU seconds, records): every slice's pages one at a time with every field."""
    session = requests.Session()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    catalogue = session.get(f"{api_url}/api-endpoints/", timeout=600).json()["results"]
    have = {row["endpoint_url"].split("/api/v1/", 1)[-1]: row["years_available"] for row in catalogue}
    n_records = 0
    for ep in ENDPOINTS:
        available = parse_years(have[ep.catalogue_route].replace("&ndash;", "-").replace(" ", ""))
        for year in (y for y in years if y in available):
            for fips in states:
                url = f"{api_url}/{ep.url_path(year)}"
                params = [("fips", str(fips))] + list(ep.filters)
                while url:
                    page = session.get(url, params=params, timeout=600).json()
                    n_records += len(page["results"])
                    url, params = page.get("next"), None
    return time.monotonic() - t0, time.process_time() - cpu0, n_records


def ingest(dsn: str, api_url: str, years: str, states: str, *extra: str) -> dict:
    """Wall clock, exit status, CPU seconds of the `ingest` child process and of PostgreSQL meanwhile."""
    argv = [sys.executable, "-m", "loader", "ingest", "--dsn", dsn, "--api-url", api_url, "--years", years,
            "--states", states, *extra]
    pm = postmaster_pid(dsn)
    pg0 = cpu_seconds(pm, children=True)
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        pid = _spawn(argv, err)
        _, status, usage = os.wait4(pid, 0)
        secs = time.monotonic() - t0
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-1500:]
    time.sleep(0.5)                        # let the postmaster reap the loader's backends
    return dict(secs=secs, code=os.waitstatus_to_exitcode(status), cpu=usage.ru_utime + usage.ru_stime,
                rss=usage.ru_maxrss, pg_cpu=cpu_seconds(pm, children=True) - pg0, tail=tail)


def _spawn(argv: list[str], err) -> int:
    pid = os.fork()
    if pid == 0:                           # the child: stdout and stderr into `err`, then the loader
        try:
            os.chdir(REPO)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(err.fileno(), 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def landed(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as c:
        return (c.execute("SELECT count(*) FROM district_data_history").fetchone()[0],
                c.execute("SELECT count(*) FROM ingest_slices WHERE status = 'failed'").fetchone()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", default="2015-2022")
    ap.add_argument("--states", default="all", help="all, or FIPS codes (e.g. 10,41,44) for a quicker run")
    ap.add_argument("--compress", type=float, default=20.0, help="time compression of waits and transfers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, help="ingest's --concurrency (default: ingest's own default)")
    ap.add_argument("--skip-sequential", action="store_true", help="leave out (a), the sequential client")
    ap.add_argument("--skip-api", action="store_true", help="leave out (b), ingest in API mode")
    ap.add_argument("--skip-csv", action="store_true", help="leave out (c), ingest --via csv")
    ap.add_argument("--warm-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-national-warm",
                    help="where the warm-up's pages and files are kept for the next run (about 4 GB); '' keeps "
                         "nothing")
    args = ap.parse_args()
    years = parse_years(args.years)
    states = sorted(NATIONAL_DISTRICTS) if args.states == "all" else [int(s) for s in args.states.split(",")]
    state_arg = ",".join(f"{s:02d}" for s in states)

    ctx = mp.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    warm_dir = args.warm_dir if str(args.warm_dir) not in ("", ".") else None
    server = ctx.Process(target=serve, args=(args.compress, args.seed, years, states, warm_dir, port_queue, stop),
                         daemon=True)
    server.start()
    api_url, warm, how = port_queue.get(timeout=3600)
    print(f"fake API {api_url}: {sum(NATIONAL_DISTRICTS[s] for s in states):,} districts in {len(states)} states, "
          f"years {args.years}; pages and files {how} in {warm:.0f} s (not timed)", flush=True)
    print(f"latency model, compressed {args.compress:g}x: API requests wait log-normal median {MEDIAN_LATENCY:g} s "
          f"(sigma {SIGMA:g}, clipped to {LATENCY_RANGE[0]:g}-{LATENCY_RANGE[1]:g} s), then {BYTES_PER_SECOND / 1e6:g} "
          f"MB/s per connection; bulk files wait {FILE_LATENCY:g} s, then {FILE_BYTES_PER_SECOND / 1e6:g} MB/s per "
          f"connection (uncompressed figures)", flush=True)
    results = {}
    try:
        server_stats(api_url)
        if not args.skip_sequential:
            secs, cpu, recs = sequential(api_url, years, states)
            st = server_stats(api_url)
            results["a"] = secs
            print(f"(a) sequential, every field: {secs:,.1f} s; {recs:,} records; {describe(st)}\n"
                  f"    CPU s: client {cpu:.1f}, fake server {st['cpu']:.1f}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        with harness.server(log=lambda m: None) as admin, tempfile.TemporaryDirectory() as cache:
            harness.prepare_server(admin)
            conc = ("--concurrency", str(args.concurrency)) if args.concurrency else ()
            modes = []
            if not args.skip_api:
                modes.append(("b", "ingest, API mode", conc))
            if not args.skip_csv:
                modes.append(("c", "ingest --via csv", ("--via", "csv", "--cache-dir", cache, *conc)))
            for key, label, extra in modes:
                name = harness.create_migrated_database(admin, "bench_national")
                dsn = harness.with_dbname(admin, name)
                try:
                    server_stats(api_url)
                    r = ingest(dsn, api_url, args.years, state_arg, *extra)
                    st = server_stats(api_url)
                    rows, failed = landed(dsn)
                finally:
                    harness.drop_database(admin, name)
                results[key] = r["secs"]
                print(f"({key}) {label}{' '.join(('',) + conc)}: {r['secs']:,.1f} s, exit {r['code']}, {rows:,} history "
                      f"rows, {failed} slices failed; {describe(st)}\n"
                      f"    CPU s: loader {r['cpu']:.1f}, PostgreSQL {r['pg_cpu']:.1f}, fake server {st['cpu']:.1f}; "
                      f"loader peak RSS {r['rss'] / 1024:,.0f} MB; load average {os.getloadavg()[0]:.1f}",
                      flush=True)
                if r["code"]:
                    print("    " + r["tail"].replace("\n", "\n    "), flush=True)
    finally:
        stop.set()
        server.join(30)
    if "a" in results and "b" in results:
        print(f"speed-up (a)/(b) = {results['a'] / results['b']:.1f}x", flush=True)
    if "a" in results and "c" in results:
        print(f"speed-up (a)/(c) = {results['a'] / results['c']:.1f}x", flush=True)
    if "b" in results and "c" in results:
        print(f"(c)/(b) = {results['c'] / results['b']:.2f}", flush=True)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"bench process CPU {resource.getrusage(resource.RUSAGE_SELF).ru_utime:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
