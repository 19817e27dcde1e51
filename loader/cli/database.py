"""`migrate`, and `db start|stop|status` for the embedded local cluster."""
from __future__ import annotations

import sys

import click

from ..db import (
    BI_PASSWORD_FILE,
    BI_USER,
    EMBEDDED_DBNAME,
    connect,
    embedded_bi_login,
    embedded_cluster,
    prepare_embedded,
)
from ..migrate import migrate
from .common import ALLOW_WRITABLE_SCHEMA, dsn_option, echo_json, handle_errors, resolve_dsn


@click.command("migrate", short_help="Create or upgrade the tables and install the functions.")
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


@click.group("db", short_help="Start, stop or inspect the embedded local database.")
def db_group() -> None:
    """Manage the embedded local PostgreSQL cluster (used when no database is configured).

    Example: district-benchmarks db status
    """


def _tcp(cluster) -> int | None:
    """The TCP port the running cluster listens on (localhost), None when it is socket-only."""
    port, address = cluster.listening()
    return port if address else None


@db_group.command("start", short_help="Start the embedded cluster (optionally on a localhost port).")
@click.option("--port", type=click.IntRange(1024, 65535), metavar="N",
              help="Also listen on localhost:N over TCP (for a BI tool on this machine), until the cluster "
                   "stops; login district_benchmarks_bi (read-only), password in the cluster directory.")
@handle_errors
def db_start(port: int | None) -> None:
    """Initialise (first time) and start the embedded cluster. It listens on a private Unix socket only; with
    --port it also accepts password logins over TCP from this machine (never from elsewhere) while it runs.

    Example: district-benchmarks db start --port 5433
    """
    cluster = embedded_cluster()
    was_running = cluster.running()
    if was_running and port is not None and _tcp(cluster) != port:
        now = f"on localhost:{_tcp(cluster)}" if _tcp(cluster) else "socket-only"
        raise click.ClickException(f"the embedded cluster is already running ({now}); stop it first "
                                   f"(district-benchmarks db stop), then db start --port {port}")
    cluster.start(tcp_port=port)
    prepare_embedded(cluster)
    click.echo(("already running: " if was_running else "started: ") + cluster.conninfo(EMBEDDED_DBNAME))
    tcp = _tcp(cluster)
    if tcp:
        user, pwfile, note = embedded_bi_login(cluster)
        click.echo(f"TCP, this machine only: host=localhost port={tcp} dbname={EMBEDDED_DBNAME} user={user}, "
                   f"password in {pwfile}")
        if note:
            click.echo(f"note: {note}", err=True)


@db_group.command("stop", short_help="Stop the embedded cluster (its data is kept).")
@handle_errors
def db_stop() -> None:
    """Stop the embedded cluster (its data is kept).

    Example: district-benchmarks db stop
    """
    cluster = embedded_cluster()
    if not cluster.running():
        click.echo(f"not running ({cluster.root})")
        return
    cluster.stop()
    click.echo(f"stopped ({cluster.root})")


@db_group.command("status", short_help="Whether the embedded cluster runs, and how to connect.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def db_status(as_json: bool) -> None:
    """Say whether the embedded cluster exists and runs, and how to connect to it (exit 3: stopped).

    Example: district-benchmarks db status --json
    """
    cluster = embedded_cluster()
    running = cluster.running()
    state = "running" if running else "stopped" if cluster.initialised else "not initialised"
    if as_json:
        tcp = _tcp(cluster) if running else None
        echo_json({"state": state, "root": cluster.root,
                   "conninfo": cluster.conninfo(EMBEDDED_DBNAME) if running else None,
                   "tcp_port": tcp, "tcp_user": BI_USER if tcp else None,
                   "password_file": cluster.root / BI_PASSWORD_FILE if tcp else None})
    elif state == "not initialised":
        click.echo(f"not initialised ({cluster.root}); `district-benchmarks db start` creates it")
    elif running:
        tcp = _tcp(cluster)
        click.echo(f"running: {cluster.conninfo(EMBEDDED_DBNAME)}"
                   + (f"; TCP on localhost:{tcp} (user {BI_USER}, password in {cluster.root / BI_PASSWORD_FILE})"
                      if tcp else ""))
    else:
        click.echo(f"stopped ({cluster.root})")
    if state == "stopped":
        sys.exit(3)


COMMANDS = [migrate_cmd, db_group]
