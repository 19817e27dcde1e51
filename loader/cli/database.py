"""`migrate`, and `db start|stop|status` for the embedded local cluster."""
from __future__ import annotations

import sys

import click

from ..db import connect, embedded_cluster, resolve_conninfo
from ..migrate import migrate
from .common import ALLOW_WRITABLE_SCHEMA, dsn_option, handle_errors, resolve_dsn


@click.command("migrate")
@ALLOW_WRITABLE_SCHEMA
@dsn_option
@handle_errors
def migrate_cmd(allow_writable_schema: bool, dsn: str | None) -> None:
    """Apply pending migrations, then (re)install the SQL functions. Safe to run any number of times.

    Example: DATABASE_URL=postgresql://me@db.example/edu district-benchmarks migrate
    """
    with connect(resolve_dsn(dsn), autocommit=True) as conn:
        result = migrate(conn, echo=lambda m: click.echo(f"  {m}", err=True),
                         allow_writable_schema=allow_writable_schema)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(result.summary())


@click.group("db")
def db_group() -> None:
    """Manage the embedded local PostgreSQL cluster (used when no database is configured)."""


@db_group.command("start")
@handle_errors
def db_start() -> None:
    """Initialise (first time) and start the embedded cluster."""
    cluster = embedded_cluster()
    was_running = cluster.running()
    conninfo = cluster.conninfo("district_benchmarks") if was_running else resolve_conninfo(None)[0]
    click.echo(("already running: " if was_running else "started: ") + conninfo)


@db_group.command("stop")
@handle_errors
def db_stop() -> None:
    """Stop the embedded cluster (its data is kept)."""
    cluster = embedded_cluster()
    if not cluster.running():
        click.echo(f"not running ({cluster.root})")
        return
    cluster.stop()
    click.echo(f"stopped ({cluster.root})")


@db_group.command("status")
@handle_errors
def db_status() -> None:
    """Say whether the embedded cluster exists and runs, and how to connect to it (exit 3: stopped)."""
    cluster = embedded_cluster()
    if not cluster.initialised:
        click.echo(f"not initialised ({cluster.root}); `district-benchmarks db start` creates it")
    elif cluster.running():
        click.echo(f"running: {cluster.conninfo('district_benchmarks')}")
    else:
        click.echo(f"stopped ({cluster.root})")
        sys.exit(3)


COMMANDS = [migrate_cmd, db_group]
