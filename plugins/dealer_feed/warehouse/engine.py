"""Warehouse connection handling: Airflow Connection -> SQLAlchemy URL -> Engine.

The embedded default is a SQLite file. Every SQLite connection gets, from a `connect`
event listener: WAL journal (readers never block the writer), a busy timeout (a second
writer waits instead of failing: two groups' DAGs may load at the same moment), foreign
keys on, and driver-level autocommit so that SQLAlchemy's `begin` event emits the
transaction's BEGIN itself. Writers ask for `BEGIN IMMEDIATE` with the execution option
`sqlite_begin="IMMEDIATE"` (see `write_transaction`), so a load takes the write lock
up front and never fails half-way on a lock upgrade.

Passwords never reach a log line: messages render URLs with `safe_url()`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url

from dealer_feed.warehouse.errors import WarehouseError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 600_000
"""How long a SQLite writer waits for another group's load (10 min: a large run's load)."""

_POSTGRES_TYPES = {"postgres", "postgresql", "psql"}


def safe_url(url: str | URL) -> str:
    """The URL as text with the password masked (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: show nothing of it
        return "<unparsable URL>"


def url_from_connection(conn: Any) -> URL:
    """SQLAlchemy URL of an Airflow Connection (or anything with the same attributes).

    - extra `sqlalchemy_url` wins (any dialect);
    - conn_type `sqlite`: host is the database file path;
    - conn_type `postgres`/`postgresql`: postgresql+psycopg://login:password@host:port/schema.
    """
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else dict(getattr(conn, "extra", None) or {})
    if extra.get("sqlalchemy_url"):
        return make_url(extra["sqlalchemy_url"])
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        if not conn.host:
            raise WarehouseError(f"connection {conn.conn_id!r}: conn_type sqlite needs host = the database file path")
        return URL.create("sqlite", database=conn.host)
    if conn_type in _POSTGRES_TYPES:
        return URL.create(
            "postgresql+psycopg",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
        )
    raise WarehouseError(
        f"connection {getattr(conn, 'conn_id', '?')!r}: conn_type {conn.conn_type!r} is not a warehouse type; "
        "use sqlite (host = file path), postgres, or an extra {\"sqlalchemy_url\": ...}"
    )


def _normalise(url: URL) -> URL:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _enable_wal(cur: Any, timeout_s: float) -> None:
    """Put the database file in WAL mode (persistent: later connections find it set).

    Switching needs an exclusive lock and, unlike ordinary statements, does not wait on
    busy_timeout while another connection is switching the same new file, so two DAGs
    opening a fresh warehouse at once would see "database is locked": retry briefly.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # e.g. a file system without shared memory: keep its mode
                log.warning("SQLite warehouse stays in journal mode %s (WAL unavailable)", mode)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def _sqlite_listeners(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None  # the driver never BEGINs on its own; `begin` below does
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if engine.url.database not in (None, "", ":memory:"):
            _enable_wal(cur, busy_timeout_ms / 1000)
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | URL, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any) -> Engine:
    """An Engine for the warehouse URL (SQLite file or PostgreSQL via psycopg 3)."""
    try:
        url = _normalise(make_url(url))
    except Exception as exc:  # noqa: BLE001
        raise WarehouseError(f"not a valid SQLAlchemy URL: {exc}") from None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        _sqlite_listeners(engine, busy_timeout_ms)
    elif url.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    else:
        raise WarehouseError(f"unsupported warehouse dialect in {safe_url(url)}: use sqlite or postgresql")
    log.debug("warehouse engine for %s", safe_url(url))
    return engine


def engine_from_connection(conn_id: str) -> Engine:
    """Engine for the Airflow connection `conn_id` (Airflow imported lazily)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow raises its own not-found type
        raise WarehouseError(
            f"no Airflow connection {conn_id!r} for the warehouse ({type(exc).__name__}).",
            fix=f"create it, for example AIRFLOW_CONN_{conn_id.upper()}="
                f"'{{\"conn_type\": \"sqlite\", \"host\": \"/path/warehouse.db\"}}'",
        ) from None
    return make_engine(url_from_connection(conn))


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction; on SQLite it takes the write lock at BEGIN (waits up to the busy timeout)."""
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
