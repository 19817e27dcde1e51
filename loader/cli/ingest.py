"""`ingest` and `run` (the main job): thin wrappers over loader.ingest.run_ingest and loader.pipeline."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .. import paths
from ..api import DEFAULT_API_URL, HttpSettings
from ..compute import require_compute_function, run_compute
from ..db import connect
from ..ingest import BATCH_SLICES, DEFAULT_YEARS, IngestRequest, parse_sources, parse_states, parse_years, run_ingest
from ..pipeline import run_pipeline
from ..sources import SOURCE_NAMES
from .common import (
    ALLOW_WRITABLE_SCHEMA,
    LOCK_WAIT,
    FiniteFloat,
    dsn_option,
    echo_json,
    graceful_interrupts,
    handle_errors,
    interrupted_exit,
    resolve_dsn,
    value_callback,
    verbosity,
    verbosity_options,
)
from .render import (
    NORMAL,
    IngestDisplay,
    compute_totals,
    console,
    ingest_totals,
    print_ingest_outcome,
    render_states,
    render_summary,
)

INGEST_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option("--years", default=DEFAULT_YEARS, show_default=True, callback=value_callback(parse_years),
                 help="Survey years (fall of the school year): 2015-2022, 2019 or 2015,2017-2019. Years an "
                      "endpoint does not have are skipped (and named)."),
    click.option("--states", default="all", show_default=True, callback=value_callback(parse_states),
                 help="all, or postal abbreviations / FIPS codes: CA,TX or 06,48."),
    click.option("--sources", default="all", show_default=True, callback=value_callback(parse_sources),
                 help=f"all, or a comma list of: {', '.join(SOURCE_NAMES)}."),
    click.option("--api-url", envvar="EDUCATIONDATA_API_URL", default=DEFAULT_API_URL, show_default=True,
                 help="Base URL of the API [env: EDUCATIONDATA_API_URL]."),
    click.option("--concurrency", type=click.IntRange(1, 32), default=IngestRequest.concurrency, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_CONCURRENCY", help="Slices fetched at once (requests in flight)."),
    click.option("--batch-slices", type=click.IntRange(1, 256), default=BATCH_SLICES, show_default=True,
                 help="Fetched slices of one source and year landed together in one transaction, at most "
                      "(1: each slice alone)."),
    click.option("--refresh", is_flag=True, help="Fetch slices again even if they landed before."),
    click.option("--save-raw", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                 help="Also keep every raw page under DIR (gzip JSON, laid out by request path)."),
    click.option("--from-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
                 help="Replay pages saved with --save-raw instead of the network."),
    click.option("--sample", is_flag=True,
                 help="Ingest the bundled offline sample (synthetic data for HI, DE and OR) instead of the API."),
    click.option("--via", type=click.Choice(["api", "csv"]), default="api", show_default=True,
                 help="api: the API's routes, page by page and state by state; csv: the API's bulk CSV files, "
                      "downloaded whole (cached) and cut into the same slices (docs/ingest.md, Bulk mode)."),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                 envvar="DISTRICT_BENCHMARKS_CACHE_DIR",
                 help="--via csv: where downloaded files are kept [default: $XDG_CACHE_HOME/district-benchmarks "
                      "or ~/.cache/district-benchmarks; env: DISTRICT_BENCHMARKS_CACHE_DIR]."),
    click.option("--timeout", type=FiniteFloat(0.01), default=60.0, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_HTTP_TIMEOUT", help="Read timeout of a request, seconds."),
    click.option("--deadline", type=FiniteFloat(0.01), default=300.0, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_HTTP_DEADLINE", help="Wall-clock limit of one request, seconds."),
    click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_HTTP_RETRIES", help="Retries of a failed request."),
    click.option("--backoff", type=FiniteFloat(0), default=1.0, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_HTTP_BACKOFF",
                 help="First retry backoff, seconds (doubles each time, plus up to as much jitter)."),
    click.option("--max-response-mb", type=click.IntRange(1, 65536), default=512, show_default=True,
                 envvar="DISTRICT_BENCHMARKS_MAX_RESPONSE_MB",
                 help="Largest a response may inflate to, MB; a larger one is a bad page (the largest real page "
                      "is about 12 MB)."),
    dsn_option,
]


def ingest_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(INGEST_OPTIONS):
        f = option(f)
    return verbosity_options(f)


def make_request(years: list[int], states: list[str] | None, sources: list[str], api_url: str, concurrency: int,
                 batch_slices: int, refresh: bool, save_raw: Path | None, from_dir: Path | None, sample: bool,
                 timeout: float, deadline: float, retries: int, backoff: float,
                 max_response_mb: int = 512, via: str = "api", cache_dir: Path | None = None) -> IngestRequest:
    if sample and (from_dir or save_raw):
        raise click.UsageError("--sample cannot be combined with --from-dir or --save-raw")
    if via == "csv" and (sample or from_dir):
        raise click.UsageError("--via csv downloads files; it cannot be combined with --sample or --from-dir")
    if save_raw and from_dir:
        raise click.UsageError("--save-raw and --from-dir cannot be used together")
    refuse_ignored_options(sample or from_dir is not None, via)
    http = HttpSettings(read_timeout=timeout, deadline=deadline, retries=retries, backoff=backoff, jitter=backoff,
                        connect_timeout=min(10.0, timeout), max_body=max_response_mb * 2**20)
    return IngestRequest(years=years, states=states, sources=sources, api_url=api_url, http=http,
                         concurrency=concurrency, batch_slices=batch_slices, refresh=refresh, save_raw=save_raw,
                         from_dir=paths.sample_dir() if sample else from_dir, via=via, cache_dir=cache_dir)


def refuse_ignored_options(offline: bool, via: str) -> None:
    """A usage error for an option given on the command line that contradicts another: --api-url when the pages
    come from files (--sample, --from-dir), --cache-dir without --via csv. (Set through the environment they are
    defaults, not requests, and stay quiet; the HTTP tuning options are harmless with files and accepted.)"""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    given = [n for n in ctx.params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE]
    if offline and "api_url" in given:
        raise click.UsageError("--api-url has no effect with --sample or --from-dir (the pages come from files)")
    if via != "csv" and "cache_dir" in given:
        raise click.UsageError("--cache-dir is where --via csv keeps its downloads; it has no effect without "
                               "--via csv")


FAILED_HINT = "Run the same command again to retry them."


@click.command("ingest", short_help="Fetch the API into the database, state by state (resumable).")
@ingest_options
@click.option("--compute", is_flag=True, help="Run SELECT compute_all_benchmarks() afterwards.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome (and the run summary) as JSON.")
@click.pass_context
@handle_errors
def ingest(ctx: click.Context, dsn: str | None, compute: bool, as_json: bool, verbose: bool, quiet: bool,
           **options: Any) -> None:
    """Fetch the Education Data API state by state into district_data_history and districts (resumable).

    Example: district-benchmarks ingest --states OR,WA --years 2019-2022
    """
    level = verbosity(verbose, quiet)
    request = make_request(**options)
    conninfo = resolve_dsn(dsn)
    display = IngestDisplay(level)
    with graceful_interrupts(display) as received:
        try:
            outcome = run_ingest(conninfo, request, display)
            if not as_json:
                print_ingest_outcome(outcome, level)
            summary = None
            if compute:
                with connect(conninfo, autocommit=True) as conn:
                    require_compute_function(conn)
                summary = run_compute(conninfo)
                if level >= NORMAL and not as_json:
                    click.echo(f"compute_all_benchmarks(): {json.dumps(summary)}")
        except KeyboardInterrupt:
            interrupted_exit(ctx, received, display.landed)
    if as_json:
        echo_json({**outcome.as_dict(), **({"compute": summary} if compute else {})})
    elif level < NORMAL:
        click.echo(ingest_totals(outcome) + (f"; {compute_totals(summary)}" if summary else ""))
    if outcome.failed:
        click.echo(f"{len(outcome.failed)} slice(s) failed; the others landed. {FAILED_HINT}", err=True)
        ctx.exit(1)


@click.command("run", short_help="The main job: migrate, ingest, compute, summary.")
@ingest_options
@ALLOW_WRITABLE_SCHEMA
@LOCK_WAIT
@click.option("--json", "as_json", is_flag=True, help="Print the outcome of each stage as JSON.")
@click.pass_context
@handle_errors
def run(ctx: click.Context, dsn: str | None, allow_writable_schema: bool, lock_wait: float, as_json: bool,
        verbose: bool, quiet: bool, **options: Any) -> None:
    """The main job: migrate, ingest (same options as `ingest`), compute_all_benchmarks(), and a summary of the
    states. Resumable: rerun after a failure and finished slices are skipped.

    Example: district-benchmarks run --sample
    """
    level = verbosity(verbose, quiet)
    request = make_request(**options)
    display = IngestDisplay(level)
    with graceful_interrupts(display) as received:
        try:
            outcome = run_pipeline(resolve_dsn(dsn), request, display,
                                   allow_writable_schema=allow_writable_schema, lock_wait=lock_wait)
        except KeyboardInterrupt:
            interrupted_exit(ctx, received, display.landed)
    if as_json:
        echo_json(outcome.as_dict())
        if outcome.ingested.failed:
            sys.exit(1)
        return
    if level < NORMAL:
        click.echo(f"run: {ingest_totals(outcome.ingested).removeprefix('ingest: ')}; "
                   f"{compute_totals(outcome.summary)}")
    else:
        click.echo(outcome.migrated.summary())
        for warning in outcome.migrated.warnings:
            click.echo(f"warning: {warning}", err=True)
        print_ingest_outcome(outcome.ingested, level)
        out = console()
        render_summary(outcome.summary, out)
        render_states(outcome.states, out)
    if outcome.ingested.failed:
        raise click.ClickException("some slices failed to load (listed above); benchmarks were computed from "
                                   f"what landed. {FAILED_HINT}")


COMMANDS = [ingest, run]
