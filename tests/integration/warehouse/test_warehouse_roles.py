"""PostgreSQL roles: the analyst reads tables and views and cannot write or alter; the loader writes."""

from __future__ import annotations

import psycopg
import pytest
from wh_frames import scenario
from sqlalchemy import text

from dealer_feed.warehouse import make_engine
from dealer_feed.warehouse.load import apply_run
from dealer_feed.warehouse.migrations import apply

DENIED = [
    "INSERT INTO etl_runs (run_id, dealer_group, logical_time, status, load_started_at, loaded_at, load_seconds) "
    "VALUES ('x', 'x', '2026-01-01', 'success', '2026-01-01', '2026-01-01', 0)",
    "UPDATE service_requests SET client = 'HACKED'",
    "DELETE FROM service_request_events",
    "TRUNCATE quarantine",
    "ALTER TABLE service_requests ADD COLUMN note TEXT",
    "DROP VIEW v_run_history",
    "CREATE TABLE analyst_scratch (id INTEGER)",
]


@pytest.fixture
def pg_warehouse(pg_url):
    engine = make_engine(pg_url)
    apply(engine)
    for run in scenario()[:2]:
        apply_run(engine, run)
    yield engine
    engine.dispose()


def _as_role(engine, role, sql):
    with engine.connect() as conn:
        with conn.begin():
            conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
            return conn.execute(text(sql)).all() if sql.lstrip().upper().startswith("SELECT") else conn.execute(text(sql))


@pytest.mark.parametrize("sql", DENIED)
def test_analyst_cannot_write_or_alter(pg_warehouse, sql):
    with pytest.raises(Exception) as err:
        _as_role(pg_warehouse, "dealer_feed_analyst", sql)
    orig = getattr(err.value, "orig", err.value)
    assert isinstance(orig, psycopg.errors.InsufficientPrivilege), orig


@pytest.mark.parametrize("relation", ["service_requests", "service_request_events", "feed_vehicles", "etl_runs",
                                      "etl_run_dealers", "quarantine", "inspections", "work_orders",
                                      "v_open_service_requests_by_age", "v_auto_closes_per_day",
                                      "v_stock_client_changes", "v_feed_churn", "v_run_history", "v_active_request_ages",
                                      "v_auto_close_events"])
def test_analyst_reads_tables_and_views(pg_warehouse, relation):
    _as_role(pg_warehouse, "dealer_feed_analyst", f"SELECT * FROM {relation} LIMIT 1")


def test_analyst_login_as_documented(pg_warehouse, pg_server):
    """docs/WAREHOUSE.md: CREATE ROLE <name> LOGIN PASSWORD '...' IN ROLE dealer_feed_analyst."""
    with pg_warehouse.connect() as conn, conn.begin():
        conn.exec_driver_sql("DROP ROLE IF EXISTS alice_analyst")
        conn.exec_driver_sql("CREATE ROLE alice_analyst LOGIN PASSWORD 'secret' IN ROLE dealer_feed_analyst")
    try:
        alice = make_engine(pg_warehouse.url.set(username="alice_analyst", password="secret"))
        with alice.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM v_run_history")).scalar() == 2
        with pytest.raises(Exception, match="permission denied"), alice.connect() as conn:
            conn.execute(text("DELETE FROM service_requests"))
        alice.dispose()
    finally:
        with pg_warehouse.connect() as conn, conn.begin():
            conn.exec_driver_sql("DROP OWNED BY alice_analyst")
            conn.exec_driver_sql("DROP ROLE alice_analyst")


def test_loader_role_can_load(pg_warehouse):
    """A run applied with SET ROLE dealer_feed_loader (no superuser rights) succeeds."""
    from sqlalchemy import event

    @event.listens_for(pg_warehouse, "connect")
    def _as_loader(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET ROLE dealer_feed_loader")
        dbapi_conn.commit()

    pg_warehouse.dispose()
    assert apply_run(pg_warehouse, scenario()[2]).status == "applied"
    with pg_warehouse.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_user").scalar() == "dealer_feed_loader"
