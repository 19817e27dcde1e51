"""The `district-benchmarks` command line."""
from __future__ import annotations

import functools
import sys

import click
import psycopg

from . import __version__
from .db import DatabaseError, connect, embedded_cluster, resolve_conninfo
from .localpg import LocalPgError
from .migrate import MigrationError, migrate

# Errors that are a person's to fix: printed as one line, exit code 1, no traceback.
USER_ERRORS = (DatabaseError, MigrationError, LocalPgError)


def dsn_option(f):
    """--dsn, falling back to DATABASE_URL (then PG* variables, then the embedded cluster)."""
    return click.option(
        "--dsn", envvar="DATABASE_URL", metavar="DSN",
        help="PostgreSQL connection string or URL [env: DATABASE_URL]. Without it: PG* variables, "
             "else the embedded local cluster.")(f)


def resolve_dsn(dsn: str | None) -> str:
    """The conninfo chosen by --dsn / DATABASE_URL / PG* / the embedded cluster."""
    return resolve_conninfo(dsn)[0]


def open_db(dsn: str | None, **kwargs) -> psycopg.Connection:
    return connect(resolve_dsn(dsn), **kwargs)


def user_errors(f):
    """Turn the errors a person can fix into click's one-line error exit."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            raise click.ClickException(
                f"the database is not migrated, or is older than this tool "
                f"({exc.diag.message_primary}): run `district-benchmarks migrate`") from exc
        except psycopg.Error as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise click.ClickException(f"database error: {first}") from exc
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="district-benchmarks")
def cli() -> None:
    """Benchmarks and 3-year trends for every US school district, computed inside PostgreSQL."""


@cli.command("migrate")
@dsn_option
@user_errors
def migrate_cmd(dsn: str | None) -> None:
    """Apply pending db/migrations, then (re)install db/functions. Safe to run any number of times."""
    with open_db(dsn, autocommit=True) as conn:
        result = migrate(conn, echo=lambda m: click.echo(f"  {m}", err=True))
    click.echo(result.summary())


@cli.group("db")
def db_group() -> None:
    """Manage the embedded local PostgreSQL cluster (used when no database is configured)."""


@db_group.command("start")
@user_errors
def db_start() -> None:
    """Initialise (first time) and start the embedded cluster."""
    cluster = embedded_cluster()
    was_running = cluster.running()
    conninfo, _ = resolve_conninfo(None) if not was_running else (cluster.conninfo("district_benchmarks"), "")
    click.echo(("already running: " if was_running else "started: ") + conninfo)


@db_group.command("stop")
@user_errors
def db_stop() -> None:
    """Stop the embedded cluster (its data is kept)."""
    cluster = embedded_cluster()
    if not cluster.running():
        click.echo(f"not running ({cluster.root})")
        return
    cluster.stop()
    click.echo(f"stopped ({cluster.root})")


@db_group.command("status")
@user_errors
def db_status() -> None:
    """Say whether the embedded cluster exists and runs, and how to connect to it."""
    cluster = embedded_cluster()
    if not cluster.initialised:
        click.echo(f"not initialised ({cluster.root}); `district-benchmarks db start` creates it")
    elif cluster.running():
        click.echo(f"running: {cluster.conninfo('district_benchmarks')}")
    else:
        click.echo(f"stopped ({cluster.root})")
        sys.exit(3)


def main() -> None:
    cli(prog_name="district-benchmarks")


def _register() -> None:
    """Commands defined in other modules (they import this one, so they are registered last)."""
    from .ingest_cmd import ingest
    from .ops_cli import COMMANDS, make_run_command
    for command in (ingest, *COMMANDS, make_run_command(ingest)):
        cli.add_command(command)


_register()
