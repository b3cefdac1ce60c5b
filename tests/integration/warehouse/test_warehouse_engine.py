"""URL handling and connection settings."""

from __future__ import annotations

import json
import logging
import sqlite3
from types import SimpleNamespace

import pytest

from dealer_feed.warehouse import make_engine, safe_url, url_from_connection
from dealer_feed.warehouse.errors import WarehouseError
from dealer_feed.warehouse.migrations import apply


def conn(**kw):
    base = dict(conn_id="wh", conn_type=None, host=None, login=None, password=None, port=None, schema=None,
                extra_dejson={})
    return SimpleNamespace(**(base | kw))


def test_url_from_sqlite_connection(tmp_path):
    url = url_from_connection(conn(conn_type="sqlite", host=str(tmp_path / "w.db")))
    assert url.render_as_string() == f"sqlite:///{tmp_path / 'w.db'}"


def test_url_from_postgres_connection():
    url = url_from_connection(conn(conn_type="postgres", host="db", login="loader", password="p@ss:word",
                                   port=5433, schema="warehouse"))
    assert url.drivername == "postgresql+psycopg" and url.password == "p@ss:word"
    assert url.render_as_string(hide_password=True) == "postgresql+psycopg://loader:***@db:5433/warehouse"


def test_url_from_extra_sqlalchemy_url():
    url = url_from_connection(conn(conn_type="generic", extra_dejson={"sqlalchemy_url": "sqlite:////data/w.db"}))
    assert url.render_as_string() == "sqlite:////data/w.db"


def test_url_from_airflow_connection_object():
    from airflow.models.connection import Connection

    c = Connection(conn_id="wh", conn_type="postgres", host="h", login="u", password="secret", port=5432, schema="d")
    assert url_from_connection(c).render_as_string(hide_password=False) == "postgresql+psycopg://u:secret@h:5432/d"
    c2 = Connection(conn_id="wh", conn_type="generic", extra=json.dumps({"sqlalchemy_url": "sqlite:///x.db"}))
    assert str(url_from_connection(c2)) == "sqlite:///x.db"


def test_unknown_conn_type_is_a_clear_error():
    with pytest.raises(WarehouseError, match="not a warehouse type"):
        url_from_connection(conn(conn_type="http", host="x"))


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
