"""The watcher's message follows the load's outcome; database errors are typed by SQLSTATE class."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from dealer_feed.airflow_edge.alerts import watcher_message
from dealer_feed.warehouse.errors import (
    WarehouseDataError,
    WarehousePermissionError,
    WarehouseUnavailableError,
    typed_db_error,
)


def test_watcher_says_the_others_loaded_only_when_load_succeeded():
    loaded = watcher_message("g", "g:1", ["G_A"], {"run_id": "g:1", "status": "applied", "rows": {}})
    assert "dealer(s) G_A failed" in loaded and "The other dealers loaded" in loaded
    nothing = watcher_message("g", "g:1", ["G_A"], None)
    assert "nothing of this run was loaded" in nothing and "other dealers loaded" not in nothing
    assert "depends_on_past" in nothing
    no_dealer = watcher_message("g", "g:1", [], None)
    assert no_dealer.startswith("group g run g:1: a task failed, and nothing of this run was loaded")


def _typed(exc):
    return typed_db_error(exc, action="load of run g:1", data_fix="fix {place}")


@pytest.mark.parametrize(("exc", "kind", "transient"), [
    (psycopg.errors.lookup("22001")("value too long for type character varying(64)"), WarehouseDataError, False),
    (psycopg.errors.lookup("22003")("numeric field overflow"), WarehouseDataError, False),
    (psycopg.errors.lookup("23505")("duplicate key value violates unique constraint"), WarehouseDataError, False),
    (sqlite3.IntegrityError("UNIQUE constraint failed: etl_runs.run_id"), WarehouseDataError, False),
    (psycopg.errors.lookup("42501")("permission denied for table etl_runs"), WarehousePermissionError, False),
    (psycopg.errors.lookup("08006")("connection failure"), WarehouseUnavailableError, True),
    (psycopg.errors.lookup("40P01")("deadlock detected"), WarehouseUnavailableError, True),
    (psycopg.OperationalError("server closed the connection unexpectedly"), WarehouseUnavailableError, True),
    (sqlite3.OperationalError("database is locked"), WarehouseUnavailableError, True),
])
def test_database_errors_are_typed(exc, kind, transient):
    typed = _typed(exc)
    assert type(typed) is kind and typed.transient is transient and typed.fix


def test_other_errors_are_left_alone():
    assert _typed(ValueError("not a database error")) is None
    assert _typed(sqlite3.OperationalError("no such function: foo")) is None
