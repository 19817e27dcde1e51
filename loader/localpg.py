"""A private PostgreSQL cluster driven by the system's initdb/pg_ctl.

Used twice: as the embedded default database of the CLI (a per-user data directory, reused across calls)
and as the throwaway cluster of the test harness. The cluster listens on a Unix socket in a private
directory only (listen_addresses = ''), so it never collides with another server's TCP port; `db start --port N`
also opens a TCP port on localhost for that run, passwords required (pg_hba.conf). pg_cron is
preloaded when it is installed and runs its jobs as background workers, so no TCP or password is needed.

When invoked as root the server runs as the `postgres` OS user (PostgreSQL refuses to run as root).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from .errors import UserError

PG_MAJOR_PREFERRED = "15"
MARKER = ".district-benchmarks-cluster"     # in a directory the tool created for a cluster
SUBDIR = "district-benchmarks"              # where a cluster goes inside an existing directory that is not ours
# Characters PostgreSQL's configuration file cannot hold safely in a path (quoting, escapes, list separators).
_UNSAFE_IN_CONF = set("'\\\",") | {chr(c) for c in range(32)} | {chr(127)}
_SOCKET_PATH_MAX = 107                      # sun_path, less the terminating NUL


class LocalPgError(UserError):
    """A local cluster could not be created, started or stopped."""


def check_path(root: Path) -> None:
    """LocalPgError unless root can be written into postgresql.conf and can hold the server's socket."""
    text = str(root)
    if _UNSAFE_IN_CONF & set(text):
        raise LocalPgError(f"the cluster directory {text!r} contains a quote, backslash, comma or control character, "
                           f"which PostgreSQL's configuration cannot hold safely; choose another path")
    if len(text) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
        raise LocalPgError(f"the cluster directory {text!r} is too long for a Unix socket path "
                           f"(at most {_SOCKET_PATH_MAX - len('/.s.PGSQL.65535')} characters); choose a shorter one")


def is_ours(path: Path) -> bool:
    """True when the tool created `path` for a cluster (its marker), or it holds a cluster the tool made."""
    return (path / MARKER).exists() or (path / "data" / "PG_VERSION").exists()


def claim_directory(home: Path) -> Path:
    """Where a cluster asked for at `home` lives: home itself when it does not exist yet or is the tool's already;
    otherwise (an existing directory of someone else's) a subdirectory of it that the tool creates, so nothing it
    did not create ever gets its owner or mode changed."""
    try:
        if not home.exists() or is_ours(home):
            return home
        if not home.is_dir():
            raise LocalPgError(f"{home} exists and is not a directory; choose another DISTRICT_BENCHMARKS_HOME")
    except OSError as exc:
        raise LocalPgError(f"cannot use {home} for the cluster: {exc.strerror or exc}") from None
    return home / SUBDIR


def find_bindir() -> Path:
    """Directory of initdb/pg_ctl: $PG_BINDIR, else PATH, else /usr/lib/postgresql/<newest, 15 preferred>/bin."""
    env = os.environ.get("PG_BINDIR")
    if env:
        if not (Path(env) / "initdb").exists():
            raise LocalPgError(f"PG_BINDIR={env} has no initdb")
        return Path(env)
    preferred = Path(f"/usr/lib/postgresql/{PG_MAJOR_PREFERRED}/bin")
    if (preferred / "initdb").exists():
        return preferred
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    raise LocalPgError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them "
        "(Debian: apt-get install postgresql-15 postgresql-15-cron), set PG_BINDIR, "
        "or point the tool at a server with --dsn / DATABASE_URL."
    )


def _run_as() -> str | None:
    """The OS user that must own and run the cluster: 'postgres' when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise LocalPgError("running as root needs a 'postgres' OS user to own the local cluster") from exc
    return "postgres"


def pg_cron_available(bindir: Path) -> bool:
    """True when the pg_cron library is installed for this server version."""
    try:
        libdir = subprocess.run(
            [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        libdir = str(bindir.parent / "lib")
    return Path(libdir, "pg_cron.so").exists()


@dataclass
class LocalCluster:
    """A cluster in `root`: data in root/data, socket and log in root."""

    root: Path
    port: int = 5432
    cron_database: str = "postgres"
    fast_unsafe: bool = False  # fsync off etc.: for throwaway test clusters only
    preload_cron: bool = True  # preload pg_cron when it is installed
    password: str | None = None  # None: trust on the private socket; else scram-sha-256 with this password

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.bindir = find_bindir()
        self.user = _run_as()

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        return self.root

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def conninfo(self, dbname: str = "postgres") -> str:
        """Over the private socket, at the port the server runs on (`db start --port` moves it)."""
        port = self.listening()[0]
        return make_conninfo(host=str(self.sockdir), port=port, user="postgres", dbname=dbname)

    def listening(self) -> tuple[int, str]:
        """(port, first TCP listen address or '' for socket-only) of the server, from its postmaster.pid (the
        configured port and '' when it has none: not running)."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
            return int(lines[3]), lines[5].strip() if len(lines) > 5 else ""
        except (OSError, IndexError, ValueError):
            return self.port, ""

    @property
    def hba_file(self) -> Path:
        return self.datadir / "pg_hba.conf"

    def require_tcp_passwords(self) -> None:
        """pg_hba.conf: TCP connections from this machine need a password (scram-sha-256), whatever initdb wrote
        (--auth=trust covers TCP too); the Unix-socket lines stay as they are (the socket's directory is private)."""
        def tcp_rule(line: str) -> bool:
            words = line.split("#", 1)[0].split()
            return bool(words) and words[0].startswith("host")

        kept = [ln for ln in self.hba_file.read_text().splitlines()
                if not tcp_rule(ln) and not ln.startswith("# district-benchmarks:")]
        self.hba_file.write_text("\n".join(kept).rstrip("\n") + "\n"
                                 "# district-benchmarks: TCP from this machine only, with a password\n"
                                 "host    all    all    127.0.0.1/32    scram-sha-256\n"
                                 "host    all    all    ::1/128         scram-sha-256\n")

    # -- helpers ---------------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        try:
            return subprocess.run(
                cmd, user=self.user, cwd=str(self.root), capture_output=True, text=True, check=check
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            raise LocalPgError(f"{args[0]} failed: {' | '.join(detail)} (log: {self.logfile})") from exc

    def _ensure_root(self) -> None:
        """Create root (and mark it as the tool's), or accept it when it is the tool's already. Only a directory the
        tool created gets its owner and mode changed; anything else is refused (see claim_directory)."""
        check_path(self.root)
        if not self.root.exists():
            try:
                self.root.mkdir(parents=True)
                (self.root / MARKER).write_text("created by district-benchmarks for its PostgreSQL cluster\n")
            except OSError as exc:
                raise LocalPgError(f"cannot create the cluster directory {self.root}: {exc.strerror or exc}") from None
        elif not is_ours(self.root):
            raise LocalPgError(f"{self.root} exists and was not created by district-benchmarks; refusing to take it "
                               f"over (choose a new or empty path in DISTRICT_BENCHMARKS_HOME)")
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            # postgres must be able to reach root: walk up and make sure each parent is traversable.
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise LocalPgError(
                        f"{parent} is not traversable by the 'postgres' user; choose a data directory "
                        f"elsewhere (DISTRICT_BENCHMARKS_HOME)"
                    )
        os.chmod(self.root, 0o700)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self._ensure_root()
        if self.initialised:
            return
        auth = ["--auth=trust"]
        if self.password is not None:
            pwfile = self.root / ".pwfile"
            pwfile.write_text(self.password + "\n")
            if self.user:
                pw = pwd.getpwnam(self.user)
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            # Text sorts and compares in code-point order either way: glibc's C.UTF-8 collates by code point,
            # which for UTF-8 is byte order. PostgreSQL cannot know that and calls strcoll() for C.UTF-8; with
            # LC_COLLATE=C it compares bytes (memcmp), the same order at a fraction of the cost (every index
            # descent on leaid / source compares text). Character classes and case mapping stay C.UTF-8.
            self._run("initdb", "-D", str(self.datadir), "-U", "postgres", *auth,
                      "-E", "UTF8", "--locale=C.UTF-8", "--lc-collate=C", "--no-instructions")
        finally:
            if self.password is not None:
                (self.root / ".pwfile").unlink(missing_ok=True)
        settings = {
            "listen_addresses": "''",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "max_connections": "50",
            "max_worker_processes": "16",
        }
        if self.preload_cron and pg_cron_available(self.bindir):
            settings.update({
                "shared_preload_libraries": "'pg_cron'",
                "cron.database_name": f"'{self.cron_database}'",
                "cron.use_background_workers": "on",
                "max_worker_processes": "24",
            })
        if self.fast_unsafe:
            settings.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        conf_path = self.datadir / "postgresql.conf"
        with open(conf_path, "a", encoding="utf-8") as fh:
            fh.write("\n# district-benchmarks local cluster\n" + conf)

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def start(self, timeout: int = 60, tcp_port: int | None = None) -> None:
        """Start the server (initialising it the first time); with tcp_port it also listens on localhost at that
        port (and its socket moves to that port), for this start only, passwords required (pg_hba.conf)."""
        if not self.initialised:
            self.init()
        if self.running():
            return
        options = []
        if tcp_port is not None:
            self.require_tcp_passwords()
            options = ["-o", f"-p {int(tcp_port)} -c listen_addresses=localhost"]
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", str(timeout), *options,
                  "start")
        port = tcp_port if tcp_port is not None else self.port
        deadline = time.monotonic() + timeout
        while not (self.sockdir / f".s.PGSQL.{port}").exists():
            if time.monotonic() > deadline:
                raise LocalPgError(f"server did not open its socket in {self.sockdir} (log: {self.logfile})")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
