"""Finding and opening the database.

Order: --dsn, else DATABASE_URL, else libpq's PG* variables, else the embedded local cluster that this
tool starts under a per-user data directory (see `district-benchmarks db start|stop|status`).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import UserError
from .localpg import LocalCluster, claim_directory

EMBEDDED_DBNAME = "district_benchmarks"
PG_ENV_VARS = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


class DatabaseError(UserError):
    """The database could not be reached or is not usable; the message is one line for a person."""


def embedded_home() -> Path:
    """Per-user home of the embedded cluster ($DISTRICT_BENCHMARKS_HOME overrides).

    Root's own home is not reachable by the `postgres` OS user that must run the server, so root's
    cluster lives under /var/lib/postgresql/district-benchmarks instead.
    """
    env = os.environ.get("DISTRICT_BENCHMARKS_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/postgresql/district-benchmarks")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "district-benchmarks"


def embedded_cluster() -> LocalCluster:
    return LocalCluster(claim_directory(embedded_home()), cron_database=EMBEDDED_DBNAME)


def resolve_conninfo(dsn: str | None) -> tuple[str, str]:
    """Return (conninfo, how) where `how` says which rule chose it. Starts the embedded cluster if needed."""
    if dsn:
        return parse_dsn(dsn), "--dsn/DATABASE_URL"
    if any(os.environ.get(v) for v in PG_ENV_VARS):
        return "", "PG* environment"
    cluster = embedded_cluster()
    cluster.start()
    prepare_embedded(cluster)
    return cluster.conninfo(EMBEDDED_DBNAME), f"embedded cluster in {cluster.root}"


def prepare_embedded(cluster: LocalCluster) -> None:
    """The running embedded cluster's benchmarks database, created (with pg_cron when preloaded) when missing."""
    if ensure_database(cluster.conninfo("postgres"), EMBEDDED_DBNAME):
        with psycopg.connect(cluster.conninfo(EMBEDDED_DBNAME), autocommit=True) as conn:
            preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
            if "pg_cron" in preload:  # the embedded cluster keeps pg_cron in the benchmarks database
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")


BI_USER = "district_benchmarks_bi"
BI_PASSWORD_FILE = "bi-password"


def embedded_bi_login(cluster: LocalCluster) -> tuple[str, Path, str]:
    """The login a BI tool uses over TCP (`db start --port`): role district_benchmarks_bi, a member of
    district_benchmarks_reader (read-only), with a random password kept in the cluster directory (mode 0600,
    created once, then reused). -> (user, password file, note: what is still missing, or '')."""
    prepare_embedded(cluster)
    pwfile = cluster.root / BI_PASSWORD_FILE
    if not pwfile.exists():
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    password = pwfile.read_text().strip()
    with psycopg.connect(cluster.conninfo(EMBEDDED_DBNAME), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BI_USER,)).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, sql.Identifier(BI_USER),
                                                                   sql.Literal(password)))
        reader = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'district_benchmarks_reader'").fetchone()
        if reader:
            conn.execute(sql.SQL("GRANT district_benchmarks_reader TO {}").format(sql.Identifier(BI_USER)))
    note = "" if reader else "the database is not migrated yet: run `district-benchmarks migrate`, then " \
                             "`db start --port` again to let the BI login read the tables"
    return BI_USER, pwfile, note


# What libpq's parse errors mean, by a fragment of their text; the text itself quotes the connection string.
_PARSE_PROBLEMS = (
    ("percent-encoded", "an invalid %-escape"),
    ("IPv6", "an unclosed [ around an IPv6 host"),
    ('missing "="', 'a word without "=" (or a URL scheme other than postgresql://)'),
    ("invalid connection option", "an unknown keyword"),
    ("invalid URI query parameter", "an unknown query parameter"),
    ("unterminated quoted string", "an unterminated quoted value"),
    ("invalid integer value", "a port that is not a number"),
)


def parse_dsn(dsn: str) -> str:
    """The conninfo of a connection string or URL. libpq's parse errors quote the string, password included, so
    the message names the kind of problem instead."""
    try:
        return make_conninfo(dsn)
    except psycopg.ProgrammingError as exc:
        what = next((say for frag, say in _PARSE_PROBLEMS if frag in str(exc)), "a syntax error")
        raise DatabaseError(f"cannot parse the connection string from --dsn / DATABASE_URL: it has {what}. It is "
                            f"not shown, as it may hold a password") from None


def ensure_database(admin_conninfo: str, dbname: str) -> bool:
    """Create `dbname` when missing; True when it was created."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    return not exists


def redact(conninfo: str) -> str:
    """The conninfo without its password, for messages and logs."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparseable connection string>"
    parts.pop("password", None)
    return make_conninfo(**{k: v for k, v in parts.items() if v is not None}) or "<libpq defaults>"


def describe(conninfo: str) -> str:
    """host:port/dbname as a person would say it."""
    d = conninfo_to_dict(conninfo) if conninfo else {}
    host = d.get("host") or os.environ.get("PGHOST") or "localhost"
    port = d.get("port") or os.environ.get("PGPORT") or "5432"
    db = d.get("dbname") or os.environ.get("PGDATABASE") or d.get("user") or os.environ.get("PGUSER") or "?"
    return f"{host}:{port}/{db}"


def connect(conninfo: str, **kwargs) -> psycopg.Connection:
    """Open a connection, turning libpq's multi-line failures into one clear line without the password."""
    try:
        return psycopg.connect(conninfo, connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", "10")),
                               application_name="district-benchmarks", **kwargs)
    except psycopg.OperationalError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "connection failed")
        if "password authentication failed" in str(exc):
            first = "password authentication failed"
        raise DatabaseError(f"cannot connect to {describe(conninfo)}: {first}") from exc
