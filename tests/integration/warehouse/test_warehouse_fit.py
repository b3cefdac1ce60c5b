"""Issue 14, defect 3: one over-long DMS value must not block a group's load on PostgreSQL.

The real pipeline steps (extract over HTTP from the simulator, validation, transform, load)
on SQLite and PostgreSQL: values at every length-limited column's limit load, one past
is quarantined with its rule, a 10,240-character stock number too; the same on both
databases. And a value the database still rejects (a column narrowed behind the DDL's
back) fails the load at once as a typed, permanent error with a fix line.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fit_world import DAY1, HUGE_STOCK_NUMBER, PASSWORD, expected_loaded, expected_quarantine, write

from dealer_feed import pipeline
from support import extract_and_validate
from dealer_feed.airflow_edge.alerts import fix_line
from dealer_feed.config import load_group
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed_tools.simulator import start_background
from dealer_feed.warehouse.errors import WarehouseDataError


@pytest.fixture
def extracted(tmp_path):
    """The fit group's run, extracted and validated into a landing area (no warehouse yet)."""
    world, groups, _ = write(tmp_path)
    cfg = load_group(groups / "fit.yaml")
    ctx = pipeline.RunContext(group=cfg, logical_time=DAY1, landing=tmp_path / "landing")
    with start_background(world) as sim, OpenTrackClient(sim.url, "vendor", PASSWORD, timeout=10) as client:
        statuses = extract_and_validate(ctx, list(cfg.dealer_ids), client, dict.fromkeys(cfg.dealer_ids))
    assert {s["status"] for s in statuses} == {"ok"}
    return ctx


def rows(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def test_over_long_values_are_quarantined_and_the_rest_loads(extracted, warehouse):
    pipeline.transform(extracted, warehouse)
    assert pipeline.load(extracted, warehouse)["status"] == "applied"

    quarantined = {(d, json.loads(j)["vin"]): r for d, j, r in rows(warehouse, "SELECT dealer_id, row_json, rules FROM quarantine")}
    assert quarantined == expected_quarantine()
    loaded = set(rows(warehouse, "SELECT dealer_id, vin FROM feed_vehicles"))
    assert loaded == expected_loaded()
    # values at the limit arrive whole, in the feed snapshot and in the service requests
    assert rows(warehouse, "SELECT max(length(stock_number)), max(length(model)), max(length(company_number)) "
                           "FROM feed_vehicles") == [(64, 100, 32)]
    assert rows(warehouse, "SELECT max(length(stock_number)) FROM service_requests") == [(64,)]
    # the quarantined row keeps its value as delivered
    huge = [j for (j,) in rows(warehouse, "SELECT row_json FROM quarantine WHERE rules = 'stock_number_too_long'")
            if json.loads(j)["stock_number"] == HUGE_STOCK_NUMBER]
    assert len(huge) == 1


def _narrow_make(engine) -> None:
    """Make feed_vehicles reject what validation (reading the migration DDL) lets through."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE feed_vehicles ALTER COLUMN make TYPE VARCHAR(3)")
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER narrow_make BEFORE INSERT ON feed_vehicles WHEN length(NEW.make) > 3 "
                "BEGIN SELECT RAISE(ABORT, 'value too long for feed_vehicles.make'); END"
            )


def test_a_value_the_database_rejects_is_a_permanent_error_with_a_fix(extracted, warehouse):
    pipeline.transform(extracted, warehouse)
    _narrow_make(warehouse)
    with pytest.raises(WarehouseDataError) as err:
        pipeline.load(extracted, warehouse)
    error = err.value
    assert error.transient is False
    assert "fit:20261123T060000Z" in str(error) and "Retrying cannot help" in str(error)
    if warehouse.dialect.name == "postgresql":
        assert "feed_vehicles.make" in str(error) and "22001" in str(error)
        assert "feed_vehicles.make" in error.fix
    assert "clear this run's `validate` task" in error.fix and fix_line(error) == error.fix
    assert len(str(error)) < 2000, "the message must not carry the rejected rows"
    assert rows(warehouse, "SELECT count(*) FROM etl_runs") == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM feed_vehicles") == [(0,)]
