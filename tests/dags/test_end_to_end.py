"""End to end under real Airflow: the demo group's DAG, two daily runs, simulator over HTTP.

The simulator is the oracle for what was served; the warehouse must hold exactly that:
every served row either loaded as a feed vehicle or quarantined, the VINs created on
day 1 and the ones closed on day 2 (auto close: immediately) as the feeds imply.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from support import ROOT
from dealer_feed.config import find_group
from dealer_feed_tools.demo import connection_env, group_dag
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import load_world

WORLD = ROOT / "include" / "simulator" / "demo_world.yaml"
DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


@pytest.fixture(scope="module")
def demo_runs(airflow_db, tmp_path_factory, monkeypatch_module):
    """Run the demo DAG for two consecutive days against a fresh SQLite warehouse."""
    warehouse = tmp_path_factory.mktemp("warehouse") / "warehouse.db"
    monkeypatch_module.setenv("DEALER_FEED_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    world = load_world(WORLD)
    vendor = world.vendors[0]
    with start_background(world) as sim:
        for key, value in connection_env(
            sim.url, vendor.username, vendor.password.get_secret_value(), f"sqlite:///{warehouse}"
        ).items():
            monkeypatch_module.setenv(key, value)
        dag = group_dag("demo")
        states = [str(dag.test(logical_date=day).state) for day in (DAY1, DAY1 + timedelta(days=1))]
        requests = sim.requests()
    return {"states": states, "engine": sa.create_engine(f"sqlite:///{warehouse}"), "world": world, "requests": requests}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def query(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def runs(engine) -> list[tuple[str, datetime]]:
    return [(r[0], datetime.fromisoformat(str(r[1]))) for r in query(engine, "SELECT run_id, logical_time FROM etl_runs ORDER BY logical_time")]


def test_both_runs_succeed_and_are_recorded(demo_runs):
    assert demo_runs["states"] == ["success", "success"]
    recorded = runs(demo_runs["engine"])
    assert len(recorded) == 2
    assert recorded[1][1] - recorded[0][1] == timedelta(days=1)


def test_every_served_row_is_loaded_or_quarantined(demo_runs):
    engine, world = demo_runs["engine"], demo_runs["world"]
    for run_id, feed_time in runs(engine):
        for dealer_id in find_group("demo").dealer_ids:
            served = world.vehicles(dealer_id, feed_time.date())
            loaded = query(engine, "SELECT vin FROM feed_vehicles WHERE run_id = :r AND dealer_id = :d", r=run_id, d=dealer_id)
            quarantined = query(
                engine, "SELECT count(*) FROM quarantine WHERE run_id = :r AND dealer_id = :d AND dataset = 'vehicles'",
                r=run_id, d=dealer_id,
            )[0][0]
            assert len(served) > 20
            assert len(loaded) + quarantined == len(served), (run_id, dealer_id)
            served_vins = {row["VIN"] for row in served}
            assert {v for (v,) in loaded} <= served_vins
            assert all(VIN.match(v) for (v,) in loaded)


def test_day_one_creates_a_request_per_new_vehicle(demo_runs):
    engine = demo_runs["engine"]
    (run1, t1), _ = runs(engine)
    fed = {v for (v,) in query(engine, "SELECT vin FROM feed_vehicles WHERE run_id = :r AND outcome <> 'ignored'", r=run1)}
    created = {v for (v,) in query(engine, "SELECT vin FROM service_request_events WHERE run_id = :r AND kind = 'created'", r=run1)}
    assert len(created) > 100
    assert created == fed
    srs = query(engine, "SELECT vin, status FROM service_requests WHERE created_run_id = :r", r=run1)
    assert {v for v, _ in srs} == created


def test_day_two_closes_exactly_the_vehicles_that_left(demo_runs):
    engine = demo_runs["engine"]
    (run1, _), (run2, t2) = runs(engine)
    active_after_day1 = {v for (v,) in query(engine, "SELECT vin FROM service_requests WHERE created_run_id = :r", r=run1)}
    present_day2 = {v for (v,) in query(engine, "SELECT vin FROM feed_vehicles WHERE run_id = :r", r=run2)}
    closed = {v for (v,) in query(engine, "SELECT vin FROM service_request_events WHERE run_id = :r AND kind = 'auto_closed'", r=run2)}
    assert closed == active_after_day1 - present_day2
    assert closed, "the demo world's churn must close some requests on day 2"
    rows = query(engine, "SELECT status, close_reason, closed_at FROM service_requests WHERE vin IN (SELECT vin FROM service_request_events WHERE run_id = :r AND kind = 'auto_closed')", r=run2)
    assert {(s, reason) for s, reason, _ in rows} == {("closed", "auto_close_immediately")}
    assert {datetime.fromisoformat(str(c)) for _, _, c in rows} == {t2}


def test_one_active_request_per_vin(demo_runs):
    dupes = query(demo_runs["engine"], "SELECT vin FROM service_requests WHERE status = 'active' GROUP BY dealer_group, vin HAVING count(*) > 1")
    assert dupes == []


def test_runs_speak_the_star_transport_by_default(demo_runs):
    calls = [r for r in demo_runs["requests"] if r.get("operation")]
    assert calls and {(r["service"], r["transport"]) for r in calls} == {("WebService", "star")}


def test_per_area_transport_end_to_end(airflow_db, tmp_path, monkeypatch):
    """The same demo run over the per-area dialect (connection extra transport=per-area): it
    succeeds, loads every served vehicle or quarantines it, and counts unmapped fields."""
    import json

    import pyarrow.parquet as pq

    warehouse = tmp_path / "warehouse.db"
    data = tmp_path / "data"
    monkeypatch.setenv("DEALER_FEED_DATA_DIR", str(data))
    world = load_world(WORLD)
    vendor = world.vendors[0]
    with start_background(world) as sim:
        for key, value in connection_env(sim.url, vendor.username, vendor.password.get_secret_value(),
                                         f"sqlite:///{warehouse}", transport="per-area").items():
            monkeypatch.setenv(key, value)
        state = str(group_dag("demo").test(logical_date=DAY1).state)
        calls = [r for r in sim.requests() if r.get("operation")]
    assert state == "success"
    assert calls and {r["transport"] for r in calls} == {"per-area"}
    assert {r["service"] for r in calls} >= {"VehicleAPI"} and "WebService" not in {r["service"] for r in calls}
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    served = sum(len(world.vehicles(d, DAY1.date())) for d in find_group("demo").dealer_ids)
    [(loaded,)] = query(engine, "SELECT COUNT(*) FROM feed_vehicles")
    [(quarantined,)] = query(engine, "SELECT COUNT(*) FROM quarantine WHERE dataset = 'vehicles'")
    assert loaded + quarantined == served > 0
    [summary] = data.rglob("summary.json")
    report = json.loads(summary.read_text())
    assert report["empty_first_feeds"] == []
    assert any("parts" in key and "DateInInventory" in fields for key, fields in report["unknown_fields"].items())
    [lines] = data.rglob("lines.parquet")  # ZE_ZE9's repair order lines, landed next to the orders
    assert lines.parent.parent.name == "ZE_ZE9" and pq.read_table(lines).num_rows > 0


def test_credentials_never_reach_the_warehouse_or_landing(demo_runs, tmp_path):
    import os
    from pathlib import Path

    engine = demo_runs["engine"]
    for (table,) in query(engine, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in query(engine, f"SELECT * FROM {table}"):  # noqa: S608 - table names from sqlite_master
            assert "demo-secret" not in repr(row), table
    landing = Path(os.environ["DEALER_FEED_DATA_DIR"])
    assert any(landing.rglob("raw.parquet"))
    for path in landing.rglob("*"):
        if path.is_file():
            assert b"demo-secret" not in path.read_bytes(), path
