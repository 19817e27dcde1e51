"""What every command shares: the --dsn option, turning the package's errors into one-line exits, JSON output."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Protocol, TypeVar

import click
import psycopg

from ..compute import DEFAULT_LOCK_WAIT
from ..db import resolve_conninfo
from ..errors import BenchmarksError, UserError

F = TypeVar("F", bound=Callable[..., Any])


def dsn_option(f: F) -> F:
    """--dsn, falling back to DATABASE_URL (then PG* variables, then the embedded cluster)."""
    return click.option(
        "--dsn", envvar="DATABASE_URL", metavar="DSN",
        help="PostgreSQL connection string or URL [env: DATABASE_URL]. Without it: PG* variables, "
             "else the embedded local cluster. Prefer DATABASE_URL, PGPASSWORD or ~/.pgpass to a password "
             "on the command line.")(f)


ALLOW_WRITABLE_SCHEMA = click.option(
    "--allow-writable-schema", is_flag=True, envvar="DISTRICT_BENCHMARKS_ALLOW_WRITABLE_SCHEMA",
    help="Install even when roles other than the schema's owner can CREATE in it (a privilege-escalation path "
         "for SECURITY DEFINER functions; better: REVOKE CREATE ON SCHEMA public FROM PUBLIC).")


def resolve_dsn(dsn: str | None) -> str:
    """The conninfo chosen by --dsn / DATABASE_URL / PG* / the embedded cluster."""
    return resolve_conninfo(dsn)[0]


def handle_errors(f: F) -> F:
    """The package's errors as click's one-line exits: a person-fixable error at an option is a usage error
    (exit 2), any other of the package's errors exit 1 without a traceback; so do database errors."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except UserError as exc:
            if exc.option:
                raise click.BadParameter(str(exc), param_hint=exc.option) from exc
            raise click.ClickException(str(exc)) from exc
        except BenchmarksError as exc:
            raise click.ClickException(str(exc)) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            raise click.ClickException(
                f"the database is not migrated, or is older than this tool "
                f"({exc.diag.message_primary}): run `district-benchmarks migrate`") from exc
        except psycopg.Error as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise click.ClickException(f"database error: {first}") from exc
    return wrapper  # type: ignore[return-value]


def _json_value(v: Any) -> Any:
    """What json cannot encode itself: numbers stay numbers (an integral Decimal an integer, others a float: two
    decimals survive the round trip), timestamps ISO 8601 with T and offset, sets sorted lists, paths strings."""
    if isinstance(v, Decimal):
        if not v.is_finite():
            return None
        return int(v) if v == v.to_integral_value() and v.as_tuple().exponent >= 0 else float(v)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.astimezone()).isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    if isinstance(v, PurePath):
        return str(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.asdict(v)
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def echo_json(obj: Any) -> None:
    """obj as JSON on stdout: numbers as JSON numbers, timestamps as ISO 8601 with their offset."""
    click.echo(json.dumps(obj, indent=2, default=_json_value, allow_nan=False))


def value_callback(parser: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback running `parser`, whose ValueError becomes the option's usage error."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return parser(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return callback


class FiniteFloat(click.FloatRange):
    """A float within a range that is also finite: nan and inf are refused (nan compares false with any bound)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


LOCK_WAIT = click.option(
    "--lock-wait", type=FiniteFloat(0), default=DEFAULT_LOCK_WAIT, show_default=True, metavar="SECONDS",
    envvar="DISTRICT_BENCHMARKS_LOCK_WAIT",
    help="How long to wait for a benchmark run in progress before giving up and naming it [env: "
         "DISTRICT_BENCHMARKS_LOCK_WAIT].")


VERBOSITY = [
    click.option("-v", "--verbose", is_flag=True,
                 help="A line per slice, and each failure in full (URL, exception chain)."),
    click.option("-q", "--quiet", is_flag=True, help="Only errors and a final line."),
]


def verbosity_options(f: F) -> F:
    for option in reversed(VERBOSITY):
        f = option(f)
    return f


def verbosity(verbose: bool, quiet: bool) -> int:
    """-1 (--quiet), 0, or 1 (--verbose); both is a usage error."""
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet contradict each other; choose one")
    return 1 if verbose else -1 if quiet else 0


class Interruptible(Protocol):
    def stopping(self, signal_name: str) -> None: ...

    def restore_terminal(self) -> None: ...


@contextlib.contextmanager
def graceful_interrupts(display: Interruptible) -> Iterator[list[int]]:
    """SIGINT (Ctrl-C) and SIGTERM while a long command runs. The first raises KeyboardInterrupt in the main
    thread, as Ctrl-C does by default: the ingest starts nothing new, abandons the slices in flight, lets the
    batches that are landing commit and logs the run (loader/ingest.py). A second exits at once, with the
    terminal restored; the database rolls back whatever transaction it cut. Yields the signals received (the
    exit status is 128 + the first)."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            display.stopping(signal.Signals(signum).name)
            raise KeyboardInterrupt
        display.restore_terminal()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(128 + received[0])

    if threading.current_thread() is not threading.main_thread():     # signals reach the main thread only
        yield received
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interrupted_exit(ctx: click.Context, received: list[int], landed: int) -> None:
    """After graceful_interrupts' first signal: one line, and exit 128 + the signal."""
    click.echo(f"interrupted: the {landed:,} slice(s) landed by this run are kept; run the same command again to "
               f"resume", err=True)
    ctx.exit(128 + (received[0] if received else signal.SIGINT))
