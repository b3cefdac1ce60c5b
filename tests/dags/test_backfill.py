"""Backfill equivalence under real Airflow (dag.test): three daily runs applied one by one
give the same business tables as the same runs interleaved with what a backfill and
on-call do (reruns of applied runs); an older run that arrives after a newer one is
refused and changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dealer_feed_tools.demo import connection_env, group_dag
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, load_world
from support import table_hashes

DAYS = [datetime(2026, 11, 20, 6, tzinfo=timezone.utc) + timedelta(days=n) for n in range(3)]
BUSINESS = ("service_requests", "service_request_events", "feed_vehicles", "quarantine", "etl_run_dealers",
            "parts_inventory", "repair_orders")  # etl_runs also records Airflow's run id and timings


@pytest.fixture
def run_days(airflow_db, tmp_path, monkeypatch):
    """Run the demo DAG for logical dates against a warehouse of its own; return (states, engine)."""
    import sqlalchemy as sa

    world = load_world(DEMO_WORLD)
    vendor = world.vendors[0]
    dag = group_dag("demo")
    with start_background(world) as sim:

        def run(name: str, dates: list[datetime]):
            warehouse = tmp_path / f"{name}.db"
            monkeypatch.setenv("DEALER_FEED_DATA_DIR", str(tmp_path / name))
            for key, value in connection_env(sim.url, vendor.username, vendor.password.get_secret_value(),
                                             f"sqlite:///{warehouse}").items():
                monkeypatch.setenv(key, value)
            states = [str(dag.test(logical_date=moment).state) for moment in dates]
            return states, sa.create_engine(f"sqlite:///{warehouse}")

        yield run


def test_backfill_and_reruns_equal_one_by_one(run_days):
    one_by_one, engine_a = run_days("one_by_one", DAYS)
    assert one_by_one == ["success"] * 3
    mixed, engine_b = run_days("backfill", [DAYS[0], DAYS[1], DAYS[1], DAYS[0], DAYS[2]])
    assert mixed == ["success"] * 5  # reruns of applied runs are no-ops
    a, b = table_hashes(engine_a), table_hashes(engine_b)
    assert {t: a[t] for t in BUSINESS} == {t: b[t] for t in BUSINESS}
    assert _applied(engine_b) == ["demo:20261120T060000Z", "demo:20261121T060000Z", "demo:20261122T060000Z"]


def test_older_unapplied_run_is_refused_and_changes_nothing(run_days):
    states, engine = run_days("late", [DAYS[1]])
    assert states == ["success"]
    before = table_hashes(engine)
    states, _ = run_days("late", [DAYS[0]])
    assert states == ["failed"]
    assert table_hashes(engine) == before
    assert _applied(engine) == ["demo:20261121T060000Z"]


def _applied(engine) -> list[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT run_id FROM etl_runs ORDER BY logical_time"))]
