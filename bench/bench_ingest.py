"""Ingest benchmark: a national-scale synthetic API on 127.0.0.1 -> a throwaway PostgreSQL 15. Prints figures.

    .venv/bin/python -m bench.bench_ingest [--years 2015-2022] [--page-size 2000] [--concurrency 4]
                                           [--close-connections]

- The fake API (tests/fake_api.py serving tests/synthetic.py's world of ~19,000 districts in 52 states,
  generated on the fly and deterministic) runs in its own process, so its CPU is not the loader's.
  It keeps connections alive (waitress), as the real API does; --close-connections serves with werkzeug
  instead, which opens a new TCP connection for every page (the figures before 2026-11-22 were measured so).
- The loader runs as `python -m loader ingest` in a child process; its peak RSS comes from wait4().
- A warm-up run makes the fake API generate (and keep) every page; then run 1 ingests the first half of the
  years into a fresh database, run 2 all of them into another: about twice the pages.
  Streaming means run 2's peak RSS should be about run 1's, not double.
- Rows/s = district_data_history rows landed ÷ wall time of the ingest command (end to end: HTTP, JSON,
  cleaning, COPY, upsert, checkpoints).
Not a test: figures depend on the machine (2 shared cores here).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from loader.ingest import parse_years  # noqa: E402
from tests import harness  # noqa: E402
from tests.synthetic import NATIONAL_DISTRICTS, World  # noqa: E402


def serve(page_size: int, keep_alive: bool, port_queue, stop_event) -> None:
    from tests.fake_api import FakeApi
    api = FakeApi(page_size=page_size, world=World(NATIONAL_DISTRICTS, seed=1), cache_bodies=True)
    with api.serve(keep_alive=keep_alive):
        port_queue.put(api.base_url)
        stop_event.wait()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU time of a process from /proc (with children=True, plus its waited-for children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def postmaster_pid(dsn: str) -> int:
    with psycopg.connect(dsn) as c:     # read the backend's parent while the backend still exists
        backend = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def run_ingest(dsn: str, api_url: str, years: str, concurrency: int, server_pid: int) -> dict:
    """Wall time, exit status, peak RSS (KiB) and CPU seconds of one `ingest` child process, and the CPU the
    PostgreSQL server and the fake API spent meanwhile."""
    argv = [sys.executable, "-m", "loader", "ingest", "--dsn", dsn, "--api-url", api_url, "--years", years,
            "--concurrency", str(concurrency)]
    pm = postmaster_pid(dsn)
    pg0, api0 = cpu_seconds(pm, children=True), cpu_seconds(server_pid)
    t0 = time.monotonic()
    pid = os.spawnv(os.P_NOWAIT, sys.executable, argv)
    _, status, usage = os.wait4(pid, 0)
    secs = time.monotonic() - t0
    time.sleep(0.5)                        # let the postmaster reap the loader's backends
    return dict(secs=secs, code=os.waitstatus_to_exitcode(status), rss=usage.ru_maxrss,
                cpu=usage.ru_utime + usage.ru_stime, pg_cpu=cpu_seconds(pm, children=True) - pg0,
                api_cpu=cpu_seconds(server_pid) - api0)


def figures(dsn: str) -> dict:
    with psycopg.connect(dsn) as c:
        pages, received, landed, slices = c.execute(
            "SELECT sum(pages), sum(rows_received), sum(rows_inserted + rows_updated), count(*) "
            "FROM ingest_slices WHERE status = 'done'").fetchone()
        failed = c.execute("SELECT count(*) FROM ingest_slices WHERE status = 'failed'").fetchone()[0]
        history = c.execute("SELECT count(*) FROM district_data_history").fetchone()[0]
        districts = c.execute("SELECT count(*) FROM districts").fetchone()[0]
    return dict(pages=pages or 0, received=received or 0, landed=landed or 0, slices=slices, failed=failed,
                history=history, districts=districts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", default="2015-2022")
    ap.add_argument("--page-size", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--close-connections", action="store_true",
                    help="serve with werkzeug, which closes the connection after every response "
                         "(default: waitress, keep-alive like the real API)")
    args = ap.parse_args()
    years = parse_years(args.years)
    half = f"{years[0]}-{years[len(years) // 2 - 1]}"

    ctx = mp.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.page_size, not args.close_connections, port_queue, stop), daemon=True)
    server.start()
    api_url = port_queue.get(timeout=60)
    print(f"fake API {api_url}: {sum(NATIONAL_DISTRICTS.values()):,} districts in {len(NATIONAL_DISTRICTS)} "
          f"states, page size {args.page_size:,}, {'new connection per request' if args.close_connections else 'keep-alive'}; "
          f"concurrency {args.concurrency}", flush=True)
    try:
        with harness.server(log=lambda m: None) as admin:
            harness.prepare_server(admin)
            # warm-up: the fake API makes (and keeps) every page once, so that the timed runs measure the
            # loader rather than the synthetic-data generator
            for label, yrs in (("warm-up", args.years), ("run 1", half), ("run 2", args.years)):
                name = harness.create_migrated_database(admin, "bench_ingest")
                dsn = harness.with_dbname(admin, name)
                try:
                    r = run_ingest(dsn, api_url, yrs, args.concurrency, server.pid)
                    f = figures(dsn)
                finally:
                    harness.drop_database(admin, name)
                secs = r["secs"]
                print(f"{label}: years {yrs}: exit {r['code']}, {secs:.1f} s; {f['slices']:,} slices "
                      f"({f['failed']} failed), {f['pages']:,} pages, {f['received']:,} records received, "
                      f"{f['landed']:,} history rows landed ({f['history']:,} in table), "
                      f"{f['districts']:,} districts", flush=True)
                print(f"       {f['landed'] / secs:,.0f} history rows/s, {f['received'] / secs:,.0f} records/s, "
                      f"{f['pages'] / secs:,.1f} pages/s, peak RSS {r['rss'] / 1024:,.0f} MiB", flush=True)
                print(f"       CPU s: loader {r['cpu']:.1f}, PostgreSQL {r['pg_cpu']:.1f}, fake API "
                      f"{r['api_cpu']:.1f}; {f['landed'] / r['cpu']:,.0f} history rows per loader CPU-second; "
                      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    finally:
        stop.set()
        server.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
