"""Migrations: ordered, recorded, repeatable, concurrent-safe, upgradable, dialect files."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from support import at_once
from wh_dbutil import count, rows, table_hashes
from wh_frames import scenario

from dealer_feed.warehouse import make_engine, reads
from dealer_feed.warehouse.errors import WarehouseError
from dealer_feed.warehouse.load import apply_run
from dealer_feed.warehouse.migrations import MIGRATIONS_DIR, applied_versions, apply, discover, pending, split_statements

CORE_TABLES = {"etl_runs", "etl_run_dealers", "service_requests", "service_request_events", "inspections",
               "work_orders", "feed_vehicles", "quarantine", "parts_inventory", "repair_orders", "schema_version"}
VIEWS = {"v_open_service_requests_by_age", "v_auto_closes_per_day", "v_stock_client_changes", "v_feed_churn",
         "v_run_history", "v_active_request_ages", "v_auto_close_events"}


def test_discover_picks_dialect_files():
    sqlite = [m.version for m in discover("sqlite")]
    pg = [m.version for m in discover("postgresql")]
    assert sqlite == ["0001_core", "0003_dates.sqlite", "0003_views", "0004_caught_up"]
    assert pg == ["0001_core", "0002_roles.postgresql", "0003_dates.postgresql", "0003_views", "0004_caught_up",
                  "0005_service_requests_fillfactor.postgresql"]


def test_apply_twice(warehouse_url):
    engine = make_engine(warehouse_url)
    first = apply(engine)
    assert first == [m.version for m in discover(engine.dialect.name)]
    assert apply(engine) == []
    assert pending(engine) == []
    assert applied_versions(engine) == sorted(first)
    insp = inspect(engine)
    assert CORE_TABLES <= set(insp.get_table_names())
    assert VIEWS <= set(insp.get_view_names())
    with engine.connect() as conn:
        checksums = conn.exec_driver_sql("SELECT version, checksum FROM schema_version").all()
        if engine.dialect.name == "postgresql":  # room for in-place (HOT) updates of each run's present SRs
            options = conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'service_requests'").scalar()
            assert options == ["fillfactor=80"]
    assert {v: c for v, c in checksums} == {m.version: m.checksum for m in discover(engine.dialect.name)}


def test_apply_concurrently(warehouse_url):
    results = at_once(*[lambda: apply(make_engine(warehouse_url))] * 4)
    applied = [r for r in results if r]
    assert len(applied) == 1 and sorted(r == [] for r in results) == [False, True, True, True]
    assert count(make_engine(warehouse_url), "schema_version") == len(applied[0])


def test_upgrade_from_previous_version_keeps_data(warehouse_url):
    engine = make_engine(warehouse_url)
    assert apply(engine, upto="0001") == ["0001_core"]
    assert not set(inspect(engine).get_view_names()) & VIEWS
    runs = scenario()
    for run in runs[:3]:
        apply_run(engine, run)
    before = table_hashes(engine)

    dealer_rows = rows(engine, "SELECT * FROM etl_run_dealers ORDER BY run_id, dealer_id, dataset")

    upgraded = apply(engine)
    assert upgraded and all(not v.startswith("0001") for v in upgraded)
    after = table_hashes(engine)
    # 0004 adds etl_run_dealers.caught_up_by (NULL for every existing row); the rest is untouched
    assert {t: h for t, h in after.items() if t != "etl_run_dealers"} == {
        t: h for t, h in before.items() if t != "etl_run_dealers"}
    assert [r[:-1] for r in rows(engine, "SELECT * FROM etl_run_dealers ORDER BY run_id, dealer_id, dataset")] == [
        tuple(r) for r in dealer_rows]
    assert rows(engine, "SELECT COUNT(*) FROM etl_run_dealers WHERE caught_up_by IS NOT NULL") == [(0,)]
    assert VIEWS <= set(inspect(engine).get_view_names())
    assert rows(engine, "SELECT COUNT(*) FROM v_run_history") == [(3,)]
    # and the pipeline carries on on the upgraded schema
    for run in runs[3:]:
        assert apply_run(engine, run).status == "applied"
    assert reads.last_applied_run(engine, "g").run_id == runs[-1].run_id


def test_failing_migration_applies_nothing(warehouse_url, tmp_path):
    for src in sorted(MIGRATIONS_DIR.glob("0001_*.sql")):
        (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / "0002_broken.sql").write_text(
        "CREATE TABLE extra_ok (id INTEGER PRIMARY KEY);\nCREATE TABLE etl_runs_broken (id INTEGER REFERENCES nowhere_at_all(x), oops);\n"
        "SELECT * FROM this_table_does_not_exist;\n"
    )
    engine = make_engine(warehouse_url)
    with pytest.raises(WarehouseError, match="0002_broken"):
        apply(engine, directory=tmp_path)
    # all or nothing: 0001 was in the same transaction
    assert "extra_ok" not in inspect(engine).get_table_names()
    assert "etl_runs" not in inspect(engine).get_table_names()
    (tmp_path / "0002_broken.sql").unlink()
    assert apply(engine, directory=tmp_path) == ["0001_core"]


def test_bad_file_name_is_reported(tmp_path):
    (tmp_path / "core.sql").write_text("SELECT 1;")
    with pytest.raises(WarehouseError, match="0001_name.sql"):
        discover("sqlite", tmp_path)


def test_split_statements_respects_quotes_comments_and_dollar_bodies():
    sql = """-- a comment; with a semicolon
    CREATE TABLE t (a TEXT DEFAULT 'x;y');
    /* block; comment */
    DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;
    SELECT "odd;name" FROM t"""
    parts = split_statements(sql)
    assert len(parts) == 3
    assert parts[0].startswith("CREATE TABLE") and "'x;y'" in parts[0]
    assert parts[1].startswith("DO $$") and parts[1].endswith("END $$")
    assert parts[2] == 'SELECT "odd;name" FROM t'
