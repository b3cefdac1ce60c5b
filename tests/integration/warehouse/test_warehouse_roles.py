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


@pytest.fixture
def login_in(pg_warehouse):
    """make(role) -> an Engine logged in as a new LOGIN role that is a member of `role` (dropped after)."""
    made: list[str] = []

    def make(role: str):
        name = f"{role.removeprefix('dealer_feed_')}_login_{len(made)}"
        with pg_warehouse.connect() as conn, conn.begin():
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN IN ROLE {role}")
        made.append(name)
        return make_engine(pg_warehouse.url.set(username=name))

    yield make
    pg_warehouse.dispose()
    with pg_warehouse.connect() as conn, conn.begin():
        for name in made:
            conn.exec_driver_sql(f"DROP OWNED BY {name}")
            conn.exec_driver_sql(f"DROP ROLE {name}")


def test_loader_role_runs_migrate_on_an_up_to_date_warehouse(pg_warehouse, login_in):
    """Defect 2 of issue 14: the DAG's migrate task ran CREATE TABLE schema_version as the loader
    and failed with `permission denied for schema public`. Up to date, it now only reads."""
    loader = login_in("dealer_feed_loader")
    with pg_warehouse.connect() as conn:
        before = conn.exec_driver_sql("SELECT version, applied_at FROM schema_version ORDER BY 1").all()
    assert apply(loader) == []
    assert apply(loader) == []
    with pg_warehouse.connect() as conn:
        assert conn.exec_driver_sql("SELECT version, applied_at FROM schema_version ORDER BY 1").all() == before
    loader.dispose()


@pytest.mark.parametrize("role", ["dealer_feed_loader", "dealer_feed_analyst"])
def test_pending_migrations_need_the_owner(pg_warehouse, login_in, tmp_path, role):
    """Pending migrations and a role that may not apply them: a permanent error whose fix runs
    `dealer-feed migrate` as the owner; after the owner migrated, the role's migrate is a no-op."""
    from dealer_feed.warehouse.errors import MigrationPermissionError
    from dealer_feed.warehouse.migrations import MIGRATIONS_DIR

    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "0099_extra.sql").write_text("CREATE TABLE IF NOT EXISTS extra_table (id INTEGER PRIMARY KEY);\n")
    engine = login_in(role)
    with pytest.raises(MigrationPermissionError) as err:
        apply(engine, directory=tmp_path)
    assert err.value.transient is False
    assert "0099_extra" in str(err.value) and "permission denied" in str(err.value)
    assert err.value.fix.startswith("run `dealer-feed migrate --url postgresql+psycopg://OWNER@")
    assert "as the owner role" in err.value.fix
    from dealer_feed.airflow_edge.alerts import fix_line

    assert fix_line(err.value) == err.value.fix
    assert apply(pg_warehouse, directory=tmp_path) == ["0099_extra"]
    assert apply(engine, directory=tmp_path) == []
    engine.dispose()
