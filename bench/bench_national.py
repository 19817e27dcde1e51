"""National ingest against a fake API that is as slow as the real one. Prints figures.

    .venv/bin/python -m bench.bench_national [--years 2015-2022] [--states all] [--compress 20] [--seed 1]
                                             [--skip-sequential]

The fake API (tests/fake_bulk.py: the routes, the bulk CSV downloads, tests/synthetic.py's national world of
~19,000 districts in 52 states, full-width records) runs in its own process behind a latency model of the real
service, time-compressed by --compress so that the run fits in a few minutes:

- each response waits first for a latency drawn from a heavy-tailed (log-normal) distribution, median 1 s, clipped
  to 0.1-29 s, the range the real service shows for the same request; divided by --compress;
- then the body is sent at most 4 MB/s per connection, so that a full-width 10,000-record page (~19 MB) takes
  seconds; multiplied by --compress.

Three clients fetch the same national dataset from the same server, one after another:

(a) a sequential client: one request at a time, every field, page after page (the pattern of the first design and
    of the published R client); it only downloads and decodes, landing nothing;
(b) `district-benchmarks ingest` in API mode (concurrent slices, `fields=`), into a fresh database;
(c) `district-benchmarks ingest --via csv` (the bulk files, downloaded once into a fresh cache), into another.

It prints the wall clock of each, the speed-ups (a)/(b) and (a)/(c), and the bytes each transferred.
Not a test: figures depend on the machine and on the latencies drawn (seeded by --seed).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from loader.ingest import parse_years  # noqa: E402
from loader.sources import ENDPOINTS  # noqa: E402
from tests import harness  # noqa: E402
from tests.synthetic import NATIONAL_DISTRICTS, World  # noqa: E402

MEDIAN_LATENCY = 1.0        # seconds, before compression
SIGMA = 1.2                 # of the log-normal: a heavy tail (the 99th percentile is ~16 s)
LATENCY_RANGE = (0.1, 29.0)
BYTES_PER_SECOND = 4e6      # per connection, before compression
CHUNK = 256 * 1024


def serve(compress: float, seed: int, port_queue, stop_event) -> None:
    """The fake API behind the latency model, on waitress (keep-alive, enough threads for every client)."""
    from waitress.server import create_server
    from werkzeug import Request, Response

    from tests.fake_bulk import FakeBulk

    class SlowApi(FakeBulk):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.rng = random.Random(seed)
            self.sent = 0
            self.stats_lock = threading.Lock()

        def handle(self, request: Request) -> Response:
            if request.path == "/__stats":
                with self.stats_lock:
                    sent, self.sent = self.sent, 0
                return Response(json.dumps({"bytes": sent}), content_type="application/json")
            with self.stats_lock:
                latency = min(max(self.rng.lognormvariate(math.log(MEDIAN_LATENCY), SIGMA), LATENCY_RANGE[0]),
                              LATENCY_RANGE[1])
            time.sleep(latency / compress)
            resp = super().handle(request)
            if resp.direct_passthrough or resp.status_code in (304, 416):
                return resp
            body = resp.get_data()
            rate = BYTES_PER_SECOND * compress

            def throttled():
                for i in range(0, len(body), CHUNK):
                    part = body[i:i + CHUNK]
                    time.sleep(len(part) / rate)
                    with self.stats_lock:
                        self.sent += len(part)
                    yield part

            headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
            return Response(throttled(), status=resp.status_code, headers=headers, direct_passthrough=True)

    api = SlowApi(page_size=10_000, world=World(NATIONAL_DISTRICTS, seed=1), cache_bodies=True)
    wsgi = create_server(Request.application(api.handle), host="127.0.0.1", port=0, threads=40,
                         channel_timeout=600, connection_limit=200)
    port_queue.put(f"http://127.0.0.1:{wsgi.effective_port}/api/v1")
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    stop_event.wait()
    wsgi.close()


def sent_bytes(api_url: str) -> int:
    """Bytes the server sent since the last call (and reset)."""
    return requests.get(api_url.rsplit("/api/v1", 1)[0] + "/__stats", timeout=60).json()["bytes"]


def sequential(api_url: str, years: list[int], states: list[int]) -> tuple[float, int, int]:
    """(seconds, requests, records): every slice's pages one at a time with every field."""
    session = requests.Session()
    catalogue = session.get(f"{api_url}/api-endpoints/", timeout=600).json()["results"]
    have = {row["endpoint_url"].split("/api/v1/", 1)[-1]: row["years_available"] for row in catalogue}
    t0, n_requests, n_records = time.monotonic(), 1, 0
    for ep in ENDPOINTS:
        available = parse_years(have[ep.catalogue_route].replace("&ndash;", "-").replace(" ", ""))
        for year in (y for y in years if y in available):
            for fips in states:
                url = f"{api_url}/{ep.url_path(year)}"
                params = [("fips", str(fips))] + list(ep.filters)
                while url:
                    page = session.get(url, params=params, timeout=600).json()
                    n_requests += 1
                    n_records += len(page["results"])
                    url, params = page.get("next"), None
    return time.monotonic() - t0, n_requests, n_records


def ingest(dsn: str, api_url: str, years: str, states: str, *extra: str) -> tuple[float, int, str]:
    argv = [sys.executable, "-m", "loader", "ingest", "--dsn", dsn, "--api-url", api_url, "--years", years,
            "--states", states, *extra]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    return time.monotonic() - t0, proc.returncode, (proc.stderr or "")[-1500:]


def landed(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as c:
        return (c.execute("SELECT count(*) FROM district_data_history").fetchone()[0],
                c.execute("SELECT count(*) FROM ingest_slices WHERE status = 'failed'").fetchone()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", default="2015-2022")
    ap.add_argument("--states", default="all", help="all, or FIPS codes (e.g. 10,41,44) for a quicker run")
    ap.add_argument("--compress", type=float, default=20.0, help="time compression of latency and transfer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-sequential", action="store_true")
    ap.add_argument("--skip-csv", action="store_true", help="leave out (c), the bulk files")
    ap.add_argument("--concurrency", type=int, help="ingest's --concurrency (default: ingest's own default)")
    args = ap.parse_args()
    years = parse_years(args.years)
    states = sorted(NATIONAL_DISTRICTS) if args.states == "all" else [int(s) for s in args.states.split(",")]
    state_arg = ",".join(f"{s:02d}" for s in states)

    ctx = mp.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.compress, args.seed, port_queue, stop), daemon=True)
    server.start()
    api_url = port_queue.get(timeout=120)
    print(f"fake API {api_url}: {sum(NATIONAL_DISTRICTS[s] for s in states):,} districts in {len(states)} states, "
          f"years {args.years}; latency log-normal median {MEDIAN_LATENCY:g} s clipped to {LATENCY_RANGE}, "
          f"{BYTES_PER_SECOND / 1e6:g} MB/s per connection, both compressed {args.compress:g}x", flush=True)
    results = {}
    try:
        if not args.skip_sequential:
            secs, reqs, recs = sequential(api_url, years, states)
            results["a"] = secs
            print(f"(a) sequential, every field: {secs:,.1f} s, {reqs:,} requests, {recs:,} records, "
                  f"{sent_bytes(api_url) / 1e6:,.0f} MB", flush=True)
        with harness.server(log=lambda m: None) as admin, tempfile.TemporaryDirectory() as cache:
            harness.prepare_server(admin)
            conc = ("--concurrency", str(args.concurrency)) if args.concurrency else ()
            modes = [("b", "ingest, API mode", conc)]
            if not args.skip_csv:
                modes.append(("c", "ingest --via csv", ("--via", "csv", "--cache-dir", cache, *conc)))
            for key, label, extra in modes:
                sent_bytes(api_url)
                name = harness.create_migrated_database(admin, "bench_national")
                dsn = harness.with_dbname(admin, name)
                try:
                    secs, code, tail = ingest(dsn, api_url, args.years, state_arg, *extra)
                    rows, failed = landed(dsn)
                finally:
                    harness.drop_database(admin, name)
                results[key] = secs
                print(f"({key}) {label}: {secs:,.1f} s, exit {code}, {rows:,} history rows, {failed} slices failed, "
                      f"{sent_bytes(api_url) / 1e6:,.0f} MB", flush=True)
                if code:
                    print("    " + tail.replace("\n", "\n    "), flush=True)
    finally:
        stop.set()
        server.join(30)
    if "a" in results:
        print(f"speed-up (a)/(b) = {results['a'] / results['b']:.1f}x", flush=True)
    if "a" in results and "c" in results:
        print(f"speed-up (a)/(c) = {results['a'] / results['c']:.1f}x; (c)/(b) = {results['c'] / results['b']:.2f}",
              flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
