"""Warehouse errors that deserve one clear line, not a traceback (the CLI and DAG print them).

Every error says whether retrying can help (`transient`): the DAG fails a permanent one at
once with its `fix` line and lets Airflow retry a transient one. `typed_db_error` decides
that for a database driver's error (psycopg, sqlite3, or SQLAlchemy's wrapper of them) by
its SQLSTATE class: bad data (22, 23) and missing privileges (42501) are permanent, lost
connections, deadlocks and a busy server (08, 40, 53, 55, 57) transient.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError

from dealer_feed.contract.errors import DealerFeedError


class WarehouseError(DealerFeedError):
    """An expected warehouse failure: bad URL, not migrated, run refused. The message says what to do."""

    transient = False
    """Retrying the same call cannot help (Airflow fails the task at once)."""

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(f"{message} Fix: {fix}" if fix else message)
        self.fix = fix
        """What to do, in one line (the failure alert shows it); empty when the message says it."""


class RunOrderError(WarehouseError):
    """A run older than the group's last applied run was asked to load."""


class NotMigratedError(WarehouseError):
    """The warehouse lacks its tables: run `dealer-feed migrate` (the DAG's first task does)."""


class LoadDataError(WarehouseError):
    """A run's frames do not fit the warehouse (missing column, unknown SR to update...)."""


class WarehouseDataError(LoadDataError):
    """The database rejected a value or a constraint (SQLSTATE class 22 or 23): retrying the same data fails again."""


class WarehousePermissionError(WarehouseError):
    """The connection's role lacks a privilege the step needs (SQLSTATE 42501)."""


class MigrationPermissionError(WarehousePermissionError):
    """Migrations are pending and the connection's role (e.g. dealer_feed_loader) may not apply them."""


class WarehouseUnavailableError(WarehouseError):
    """The connection was lost or the server is busy (deadlock, shutdown, out of connections): retry."""

    transient = True


DATA_CLASSES = ("22", "23")
TRANSIENT_CLASSES = ("08", "40", "53", "55", "57")
INSUFFICIENT_PRIVILEGE = "42501"
_COPY_CONTEXT = re.compile(r"COPY (?P<table>\w+), line (?P<line>\d+)(?:, column (?P<column>\w+))?")


def driver_error(exc: BaseException) -> BaseException:
    """The DBAPI driver's own exception behind SQLAlchemy's wrapper (or `exc` itself)."""
    return getattr(exc, "orig", None) or exc


def sqlstate(exc: BaseException) -> str | None:
    """The error's SQLSTATE (psycopg), or the class a PEP 249 exception type implies (sqlite3)."""
    orig = driver_error(exc)
    code = getattr(orig, "sqlstate", None)
    if code:
        return str(code)
    names = {cls.__name__ for cls in type(orig).__mro__}
    if "IntegrityError" in names:
        return "23000"
    if "DataError" in names:
        return "22000"
    if "InterfaceError" in names:
        return "08000"
    if "OperationalError" in names:
        if type(orig).__module__.startswith("psycopg"):
            return "08000"  # no SQLSTATE: the client lost the server (closed connection, timeout)
        if re.search(r"locked|busy|unable to open|disk i/o", str(orig), re.I):
            return "08000"  # SQLite: another writer past the busy timeout, or the file went away
    return None


def first_line(exc: BaseException) -> str:
    text = str(driver_error(exc)).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:300] + "..."


def where(exc: BaseException) -> str:
    """`table.column` (or `table`) the error names, from PostgreSQL's diagnostics; "" when unknown."""
    orig = driver_error(exc)
    diag = getattr(orig, "diag", None)
    table, column = getattr(diag, "table_name", None), getattr(diag, "column_name", None)
    match = _COPY_CONTEXT.search(getattr(diag, "context", None) or str(orig))
    if match:
        table, column = match["table"], match["column"] or column
    if table and column:
        return f"{table}.{column}"
    return table or ""


def is_db_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the database driver (PEP 249 `Error`) or SQLAlchemy's wrapper of one."""
    if isinstance(exc, DBAPIError):
        return True
    return any(cls.__name__ == "Error" and cls.__module__.split(".")[0] in ("psycopg", "sqlite3", "psycopg2")
               for cls in type(exc).__mro__)


def typed_db_error(exc: BaseException, *, action: str, data_fix: str) -> WarehouseError | None:
    """The typed error for a database error raised while doing `action`, or None (not a database
    error, or one whose class says nothing: the caller re-raises it as it is).

    `data_fix` is the fix line of a rejected value (it depends on the step).
    """
    if not is_db_error(exc):
        return None
    code = sqlstate(exc) or ""
    invalidated = bool(getattr(exc, "connection_invalidated", False))
    detail = f"{first_line(exc)}" + (f" (SQLSTATE {code})" if code and code[2:] != "000" else "")
    place = where(exc)
    if code[:2] in DATA_CLASSES:
        return WarehouseDataError(
            f"{action} failed: the warehouse rejected a value{' of ' + place if place else ''}: {detail}. "
            "Retrying cannot help.",
            fix=data_fix.format(place=place or "the column named above"),
        )
    if code == INSUFFICIENT_PRIVILEGE:
        return WarehousePermissionError(
            f"{action} failed: the connection's role lacks a privilege: {detail}.",
            fix="connect as a role in dealer_feed_loader (docs/WAREHOUSE.md, Roles), or have the owner run "
                "`dealer-feed migrate`, which grants the loader what it needs; then clear the task.",
        )
    if invalidated or code[:2] in TRANSIENT_CLASSES:
        return WarehouseUnavailableError(
            f"{action} failed: the warehouse connection was lost or the server is busy: {detail}.",
            fix="nothing if the retry succeeds; else check the warehouse server is up and reachable, then clear the task.",
        )
    return None


class StaleChangesError(WarehouseError):
    """A run's changes were computed against a warehouse state that has moved since (another
    run, or a late dealer of the last run, applied in between). Transient: the load
    recomputes the changes against the current state and tries again."""

    transient = True
