"""Throwaway PostgreSQL servers for tests and benchmarks (initdb + pg_ctl, no Docker).

    from pgserver import get_server, create_database
    url = create_database("my_test")          # postgresql+psycopg://postgres@127.0.0.1:PORT/my_test
    server = get_server()                     # the session's server (started on first use)
    server.url("postgres", driver="postgresql+psycopg2")   # e.g. for Airflow's metadata DB

`start()` runs `initdb` into a fresh temporary directory and `pg_ctl start` on a free
loopback port, trust authentication, superuser `postgres`. PostgreSQL refuses to run as
root, so when we are root the server runs as an unprivileged user: $PGSERVER_USER, else
`postgres` (created by the Debian package), else `nobody`; the temporary directory is
chowned to it and the binaries run through `runuser -u USER --`. Binaries are found via
$PG_BINDIR, `pg_config --bindir`, PATH, or the newest /usr/lib/postgresql/*/bin
(scripts/ensure-test-services.sh installs them when missing).

The pytest fixtures (tests/integration/conftest.py) use one server per session, one
database per test, and stop the server at the end of the session (tests/conftest.py also
stops the shared server before its leftover-process check). The postmaster detaches into
its own session; every program of a server runs with the server's owner token in its
environment (dealer_feed_tools.processes), so stop() finds and kills whatever pg_ctl stop left.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dealer_feed_tools import processes
from support import SharedServer, free_port

SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
}
"""Test-speed settings (durability is not wanted for a throwaway server)."""


class PgServerError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Directory holding initdb and pg_ctl, or PgServerError saying how to install them."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            candidates.append(Path(out))
        except (subprocess.CalledProcessError, OSError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise PgServerError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; run `bash scripts/ensure-test-services.sh` "
        "(apt-get install -y postgresql) or set PG_BINDIR"
    )


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PGSERVER_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PgServerError("running as root and no unprivileged user (postgres, nobody) exists to run PostgreSQL")


@dataclass
class PgServer:
    bindir: Path
    directory: Path
    port: int
    run_as: str | None
    token: str = field(default_factory=lambda: processes.new_token("pgserver"))
    host: str = "127.0.0.1"
    user: str = "postgres"
    _stopped: bool = field(default=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def logfile(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        """A fresh, empty database `name` (dropped first if it exists); returns its SQLAlchemy URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: use [a-z0-9_], at most 63 characters")
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """`pg_ctl stop` (immediate), then stop whatever still carries the server's owner
        token (the postmaster detaches into its own session, so it is no child of ours)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "20",
                        "stop"], check=False)
        finally:
            processes.terminate(lambda: processes.find(tokens=[self.token]), grace=5.0)
            shutil.rmtree(self.directory, ignore_errors=True)


def _run(server_or_user: PgServer | str | None, argv: list[str], check: bool = True, cwd: Path | None = None):
    """Run a PostgreSQL program (as the server's user when we are root); a server's programs
    carry its owner token, which the detached postmaster inherits (see PgServer.stop)."""
    user = server_or_user.run_as if isinstance(server_or_user, PgServer) else server_or_user
    env = {**os.environ, "LC_ALL": "C"}
    if isinstance(server_or_user, PgServer):
        cwd = cwd or server_or_user.directory
        env = processes.owned_env(server_or_user.token, env)
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise PgServerError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def start(settings: dict[str, str] | None = None, attempts: int = 3) -> PgServer:
    """initdb a temporary cluster and start it on a free loopback port; return the running server."""
    bindir = find_bindir()
    run_as = _run_as_user()
    directory = Path(tempfile.mkdtemp(prefix="pgserver-"))
    if run_as:
        pw = pwd.getpwnam(run_as)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    directory.chmod(0o700)
    data = directory / "data"
    token = processes.new_token("pgserver")
    try:
        _run(run_as, [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--no-locale", "--no-sync"], cwd=directory)
        options = {**SERVER_SETTINGS, **(settings or {})}
        for attempt in range(attempts):
            port = free_port()
            server = PgServer(bindir, directory, port, run_as, token)
            opts = " ".join(f"-c {k}={v}" for k, v in options.items())
            result = _run(server, [
                str(bindir / "pg_ctl"), "-D", str(data), "-l", str(server.logfile), "-w", "-t", "60",
                "-o", f"-p {port} -h 127.0.0.1 -k {directory} {opts}", "start",
            ], check=False)
            if result.returncode == 0:
                _wait_ready(server)
                return server
            if attempt == attempts - 1:
                log = server.logfile.read_text() if server.logfile.exists() else ""
                raise PgServerError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{log[-3000:]}")
            time.sleep(0.5)  # port taken between free_port() and bind: try another
    except BaseException:  # also Ctrl-C during pg_ctl start: no half-started postmaster stays behind
        processes.terminate(lambda: processes.find(tokens=[token]), grace=5.0)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def _wait_ready(server: PgServer, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


_SHARED = SharedServer(start)
get_server = _SHARED.get
"""The process's shared server, started on first use and stopped at exit (or by stop_server())."""
stop_server = _SHARED.stop


def create_database(name: str) -> str:
    """A fresh database on the shared server; returns its SQLAlchemy URL (psycopg 3 driver)."""
    return get_server().create_database(name)
