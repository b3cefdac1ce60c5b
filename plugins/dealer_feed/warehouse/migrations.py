"""Versioned warehouse migrations: ordered SQL files applied once, recorded in schema_version.

Files live in include/sql/migrations/ and are named `NNNN_name.sql` (every dialect) or
`NNNN_name.DIALECT.sql` (only on that dialect: `sqlite` or `postgresql`). They apply in
file-name order; each applied file is a row of `schema_version` (its file stem, a
checksum, when). `apply()` is the one entry point (the CLI's `dealer-feed migrate` and the
DAG's first task call it):

- safe to repeat: applied files are skipped, so a second call applies nothing;
- safe concurrently: everything happens in one transaction that first takes a lock
  (PostgreSQL: a transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE, waiting on
  the busy timeout), so of two DAGs migrating at once one applies and the other then
  finds nothing to do;
- all or nothing: DDL is transactional on both dialects, so a failing file leaves the
  schema at the previous version;
- read-only when up to date: it first reads `schema_version` (no lock, no DDL) and returns
  when nothing is pending, so the DAG's `migrate` task succeeds for the loader role, which
  may read but not create tables. Only the owner role applies migrations: when some are
  pending and the role may not apply them, `MigrationPermissionError` (permanent) says to
  run `dealer-feed migrate` as the owner.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from dealer_feed.config import SQL_DIR
from dealer_feed.warehouse._frames import ts_param
from dealer_feed.warehouse.engine import safe_url, write_transaction
from dealer_feed.warehouse.errors import INSUFFICIENT_PRIVILEGE, MigrationPermissionError, WarehouseError, sqlstate

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
DIALECTS = ("sqlite", "postgresql")
_FILE_RE = re.compile(r"^(?P<number>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>[a-z]+))?\.sql$")
MIGRATION_LOCK_KEY = 0x0DEA1E0F
"""PostgreSQL advisory-lock key that serialises migrations of one database."""

SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     VARCHAR(200) NOT NULL PRIMARY KEY,
    checksum    VARCHAR(64)  NOT NULL,
    applied_at  TIMESTAMP    NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: str
    """The file stem, e.g. `0001_core` or `0002_roles.postgresql` (what schema_version records)."""
    number: int
    dialect: str | None
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files that apply to `dialect`, in order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if not m:
            raise WarehouseError(f"{path}: migration file names must look like 0001_name.sql or 0002_name.postgresql.sql")
        if m["dialect"] and m["dialect"] not in DIALECTS:
            raise WarehouseError(f"{path}: unknown dialect {m['dialect']!r} (use one of {', '.join(DIALECTS)})")
        if m["dialect"] in (None, dialect):
            found.append(Migration(path.name.removesuffix(".sql"), int(m["number"]), m["dialect"], path))
    return found


def split_statements(sql: str) -> list[str]:
    """Split a SQL script on top-level semicolons (quotes, comments and $$ bodies respected)."""
    statements, buf, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            i = j  # drop the comment
            continue
        if c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i : j + 1])
            i = j + 1
            continue
        if c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                buf.append(sql[i:j])
                i = j
                continue
        if c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                statements.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        statements.append(stmt)
    return statements


def _execute_raw(conn: Connection, statement: str) -> None:
    """Run one statement as written (no parameter parsing: `%` in a migration stays `%`)."""
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(statement)
    finally:
        cur.close()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    # SQLite: the transaction began with BEGIN IMMEDIATE, which holds the write lock.


def _applied(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(text("SELECT version, checksum FROM schema_version")).all())


def _read_applied(engine: Engine) -> dict[str, str]:
    """{version: checksum} of schema_version, read without a lock (empty when never migrated)."""
    from sqlalchemy import inspect

    if not inspect(engine).has_table("schema_version"):
        return {}
    with engine.connect() as conn:
        return _applied(conn)


def applied_versions(engine: Engine) -> list[str]:
    """Versions recorded in schema_version (empty when the warehouse was never migrated)."""
    return sorted(_read_applied(engine))


def _warn_changed(migrations: list[Migration], applied: dict[str, str]) -> None:
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            log.warning("migration %s changed after it was applied (checksum differs); not re-applied", m.version)


def pending(engine: Engine, directory: Path = MIGRATIONS_DIR) -> list[str]:
    done = set(applied_versions(engine))
    return [m.version for m in discover(engine.dialect.name, directory) if m.version not in done]


def _permission_error(engine: Engine, todo: list[Migration], exc: BaseException) -> MigrationPermissionError:
    user = engine.url.username or "the connection's role"
    owner_url = safe_url(engine.url.set(username="OWNER", password=None))
    return MigrationPermissionError(
        f"warehouse {safe_url(engine.url)}: migration(s) {', '.join(m.version for m in todo)} pending and role "
        f"{user} may not apply them ({str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}); only the owner role "
        "migrates, the loader role only runs the DAG. Nothing was applied.",
        fix=f"run `dealer-feed migrate --url {owner_url}` as the owner role (the database owner), then clear the "
            "migrate task.",
    )


def apply(engine: Engine, *, upto: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration (or those numbered <= `upto`, e.g. "0001"); return the versions applied."""
    dialect = engine.dialect.name
    if dialect not in DIALECTS:
        raise WarehouseError(f"unsupported warehouse dialect {dialect!r}")
    migrations = discover(dialect, directory)
    if upto is not None:
        migrations = [m for m in migrations if m.number <= int(upto)]
    try:
        applied_before = _read_applied(engine)
    except DBAPIError as exc:
        raise WarehouseError(f"cannot read the schema version of the warehouse at {safe_url(engine.url)}: {exc.orig}") from exc
    todo = [m for m in migrations if m.version not in applied_before]
    if not todo:  # up to date: no lock, no DDL (the loader role may run this)
        _warn_changed(migrations, applied_before)
        log.info("warehouse %s: schema up to date", safe_url(engine.url))
        return []
    done: list[str] = []
    try:
        with write_transaction(engine) as conn:
            _lock(conn)
            conn.exec_driver_sql(SCHEMA_VERSION_DDL)
            applied = _applied(conn)
            for m in migrations:
                if m.version in applied:
                    _warn_changed([m], applied)
                    continue
                for statement in split_statements(m.sql):
                    try:
                        _execute_raw(conn, statement)
                    except Exception as exc:  # noqa: BLE001 - the driver's own error types
                        orig = getattr(exc, "orig", exc)
                        if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
                            raise _permission_error(engine, todo, exc) from exc
                        raise WarehouseError(
                            f"migration {m.version} failed on {safe_url(engine.url)}: {orig}; nothing was applied"
                        ) from exc
                conn.execute(
                    text("INSERT INTO schema_version (version, checksum, applied_at) VALUES (:v, :c, :t)"),
                    {"v": m.version, "c": m.checksum, "t": ts_param(conn, datetime.now(timezone.utc))},
                )
                done.append(m.version)
    except DBAPIError as exc:
        if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
            raise _permission_error(engine, todo, exc) from exc
        raise WarehouseError(f"cannot migrate the warehouse at {safe_url(engine.url)}: {exc.orig}") from exc
    if done:
        log.info("warehouse %s: applied %s", safe_url(engine.url), ", ".join(done))
    else:
        log.info("warehouse %s: schema up to date", safe_url(engine.url))
    return done
