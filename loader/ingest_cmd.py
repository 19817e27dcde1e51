"""The `district-benchmarks ingest` command (registered in loader/cli.py); the run itself is loader/ingest.py.

Import order: loader/cli.py imports this module on its last line, so import loader.cli (not this module)
to get the command line.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
import psycopg
from rich.console import Console

from .api import DEFAULT_API_URL, ApiClient, HttpSettings
from .cli import dsn_option, open_db, user_errors
from .db import resolve_conninfo
from .ingest import (BATCH_SLICES, DEFAULT_YEARS, INGEST_LOCK_KEY, Ingest, IngestError, _PlainProgress,
                     _RichProgress, _slice_line, parse_sources, parse_states, parse_years, plan_slices, resolve_states,
                     require_compute_function, summary_table, write_refresh_logs)
from .rawstore import DirClient, SavingClient
from .sources import SOURCE_NAMES, format_years


LOCK_WAIT_SECONDS = 10


def _lock(conn) -> None:
    """One ingest per database at a time. Waits a little: the lock of a run that just ended (or was killed) is
    released only once the server notices its connection is gone."""
    try:
        conn.execute(f"SET lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
        conn.execute("SELECT pg_advisory_lock(%s)", (INGEST_LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        raise IngestError("another ingest is running against this database; wait for it to finish") from None
    finally:
        conn.execute("RESET lock_timeout")


def _cb(parser):
    def callback(ctx, param, value):
        try:
            return parser(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return callback


@click.command("ingest")
@click.option("--years", default=DEFAULT_YEARS, show_default=True, callback=_cb(parse_years),
              help="Survey years (fall of the school year): 2015-2022, 2019 or 2015,2017-2019. Years an "
                   "endpoint does not have are skipped (and named).")
@click.option("--states", default="all", show_default=True, callback=_cb(parse_states),
              help="all, or postal abbreviations / FIPS codes: CA,TX or 06,48.")
@click.option("--sources", default="all", show_default=True, callback=_cb(parse_sources),
              help=f"all, or a comma list of: {', '.join(SOURCE_NAMES)}.")
@click.option("--api-url", envvar="EDUCATIONDATA_API_URL", default=DEFAULT_API_URL, show_default=True,
              help="Base URL of the API [env: EDUCATIONDATA_API_URL].")
@click.option("--concurrency", type=click.IntRange(1, 32), default=4, show_default=True,
              envvar="DISTRICT_BENCHMARKS_CONCURRENCY", help="Slices fetched at once.")
@click.option("--batch-slices", type=click.IntRange(1, 256), default=BATCH_SLICES, show_default=True,
              help="Slices of one source and year fetched by one worker and landed in one transaction "
                   "(1: each slice alone).")
@click.option("--refresh", is_flag=True, help="Fetch slices again even if they landed before.")
@click.option("--save-raw", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also keep every raw page under DIR (gzip JSON, laid out by request path).")
@click.option("--from-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="Replay pages saved with --save-raw (or loader/sample_data) instead of the network.")
@click.option("--compute", is_flag=True, help="Run SELECT compute_all_benchmarks() afterwards.")
@click.option("--timeout", type=click.FloatRange(0.01), default=60.0, show_default=True,
              envvar="DISTRICT_BENCHMARKS_HTTP_TIMEOUT", help="Read timeout of a request, seconds.")
@click.option("--deadline", type=click.FloatRange(0.01), default=300.0, show_default=True,
              envvar="DISTRICT_BENCHMARKS_HTTP_DEADLINE", help="Wall-clock limit of one request, seconds.")
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
              envvar="DISTRICT_BENCHMARKS_HTTP_RETRIES", help="Retries of a failed request.")
@click.option("--backoff", type=click.FloatRange(0), default=1.0, show_default=True,
              envvar="DISTRICT_BENCHMARKS_HTTP_BACKOFF",
              help="First retry backoff, seconds (doubles each time, plus up to as much jitter).")
@dsn_option
@click.pass_context
@user_errors
def ingest(ctx, years, states, sources, api_url, concurrency, batch_slices, refresh, save_raw, from_dir, compute,
           timeout, deadline, retries, backoff, dsn):
    """Fetch the Education Data API state by state into district_data_history and districts (resumable)."""
    if save_raw and from_dir:
        raise click.UsageError("--save-raw and --from-dir cannot be used together")
    t0 = time.monotonic()
    settings = HttpSettings(read_timeout=timeout, deadline=deadline, retries=retries, backoff=backoff,
                            jitter=backoff, connect_timeout=min(10.0, timeout))
    if from_dir:
        client = DirClient(from_dir)
    else:
        try:
            client = ApiClient(api_url, settings)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--api-url") from None
        if save_raw:
            save_raw.mkdir(parents=True, exist_ok=True)
            client = SavingClient(client, save_raw)
    conninfo, _ = resolve_conninfo(dsn)
    console = Console(stderr=True)
    with open_db(conninfo, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('public.ingest_slices') IS NOT NULL").fetchone()[0]:
            raise IngestError("the database has no ingest_slices table; run `district-benchmarks migrate` first")
        _lock(conn)
        try:
            state_map = dict(conn.execute("SELECT fips, abbrev FROM states WHERE fips <> '00' ORDER BY fips"))
            fips_list = resolve_states(states, state_map)
            plan = plan_slices(conn, client, sources, years, fips_list, state_map, refresh, bool(from_dir))
            for note in plan.notes:
                click.echo(f"note: {note}", err=True)
            already = sum(r.skipped for r in plan.reports.values())
            click.echo(f"{len(plan.todo):,} slice(s) to fetch from {client.base_url}"
                       + (f"; {already:,} already done (use --refresh to fetch them again)" if already else ""),
                       err=True)
            runner = Ingest(lambda: open_db(conninfo, autocommit=True), client, refresh=refresh,
                            concurrency=concurrency, batch_slices=batch_slices)
            runner.states = state_map
            progress = (_RichProgress(len(plan.todo), console) if console.is_terminal
                        else _PlainProgress(len(plan.todo)))
            try:
                with progress:
                    runner.run(plan, progress)
            finally:
                runner.close()
                client.close()
                write_refresh_logs(conn, plan, {
                    "years": format_years(years), "states": "all" if states is None else ",".join(states),
                    "refresh": refresh, "api": client.base_url})
            out = Console()
            if not out.is_terminal:
                out = Console(width=140)
            out.print(summary_table(plan, time.monotonic() - t0))
            failed = [r for rep in plan.reports.values() for r in rep.failed]
            for r in failed:
                click.echo(_slice_line(r), err=True)
            unknown = sum(rep.counts.get("skipped_unknown_state", 0) for rep in plan.reports.values())
            if unknown:
                codes = sorted(runner.unknown_fips)
                click.echo(f"note: {unknown:,} record(s) of a state with no row in `states` (fips "
                           f"{', '.join(codes)}) were skipped", err=True)
            if compute:
                from .ops_cli import run_compute  # logs a failed run in data_refresh_logs
                require_compute_function(conn)
                result = run_compute(conninfo, [])
                click.echo(f"compute_all_benchmarks(): {json.dumps(result)}")
        finally:
            # explicitly: a closed connection's lock lingers until its server process has exited
            conn.execute("SELECT pg_advisory_unlock(%s)", (INGEST_LOCK_KEY,))
    if failed:
        click.echo(f"{len(failed)} slice(s) failed; the others landed. Run the same command again to retry "
                   f"them.", err=True)
        ctx.exit(1)
