"""URL handling and connection settings."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from dealer_feed.airflow_edge.hooks import warehouse_engine, warehouse_url
from dealer_feed.warehouse import make_engine, safe_url
from dealer_feed.warehouse.errors import WarehouseError
from dealer_feed.warehouse.migrations import apply


def _conn(monkeypatch, conn_id: str, **fields) -> str:
    """A real Airflow connection (from the environment, as deployments define them)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


def test_url_from_sqlite_connection_comes_from_the_sqlite_provider_hook(tmp_path, monkeypatch):
    url = warehouse_url(_conn(monkeypatch, "wh_sqlite", conn_type="sqlite", host=str(tmp_path / "w.db")))
    assert str(url) == f"sqlite:///{tmp_path / 'w.db'}"
    engine = warehouse_engine("wh_sqlite")  # and the engine is configured as make_engine's (WAL)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_url_from_postgres_connection_comes_from_the_postgres_provider_hook(monkeypatch):
    url = warehouse_url(_conn(monkeypatch, "wh_pg", conn_type="postgres", host="db", login="loader",
                              password="p@ss:word", port=5433, schema="warehouse"))
    assert url.drivername == "postgresql+psycopg" and url.password == "p@ss:word"
    assert url.render_as_string(hide_password=True) == "postgresql+psycopg://loader:***@db:5433/warehouse"


def test_url_from_extra_sqlalchemy_url(monkeypatch):
    url = warehouse_url(_conn(monkeypatch, "wh_generic", conn_type="generic",
                              extra={"sqlalchemy_url": "sqlite:////data/w.db"}))
    assert str(url) == "sqlite:////data/w.db"


def test_unknown_conn_type_and_missing_connection_are_clear_errors(monkeypatch):
    with pytest.raises(WarehouseError, match="not a warehouse type") as err:
        warehouse_url(_conn(monkeypatch, "wh_http", conn_type="http", host="x"))
    assert "conn_type postgres" in err.value.fix and not err.value.transient
    with pytest.raises(WarehouseError, match="no Airflow connection 'wh_missing'") as err:
        warehouse_url("wh_missing")
    assert "AIRFLOW_CONN_WH_MISSING" in err.value.fix


def test_password_never_logged(caplog, pg_url):
    from sqlalchemy import make_url

    url = make_url(pg_url).set(password="TopSecret123")
    assert "TopSecret123" not in safe_url(url)
    caplog.set_level(logging.DEBUG, logger="dealer_feed")
    engine = make_engine(url)  # trust auth: the password is ignored by the server
    apply(engine)
    assert "TopSecret123" not in caplog.text
    assert "***" in caplog.text


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 60_000
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_supports_update_from():
    assert tuple(int(x) for x in sqlite3.sqlite_version.split(".")) >= (3, 33, 0)


def test_unsupported_dialect():
    with pytest.raises(WarehouseError, match="unsupported"):
        make_engine("mysql://u@h/d")
