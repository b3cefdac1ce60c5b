"""Issue 14, defect 4 under real Airflow (dag.test + the scheduler's clear, as on-call does it):
a dealer's extract fails, the run loads the others; the cause is fixed and the dealer's
batch cleared with downstream. Airflow, status.json and the warehouse must then agree: the
dealer's vehicles are applied to that run and etl_runs says success."""

from __future__ import annotations

import json

import sqlalchemy as sa

from dealer_feed.landing import read_json
from test_operations import OT_PASSWORD, T1, _rerun_task, _tis, demo_run  # noqa: F401 - demo_run is a fixture

DEALER = "ZE_ZE8"


def _rows(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def test_clearing_a_fixed_dealer_applies_it_to_its_run(demo_run, monkeypatch):
    from dealer_feed_tools.demo import connection_env

    env = connection_env(demo_run.sim.url, "dealer-feed-vendor", OT_PASSWORD, demo_run.warehouse)
    conn = json.loads(env["AIRFLOW_CONN_OPENTRACK_DEFAULT"]) | {"extra": {"max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_OPENTRACK_DEFAULT", json.dumps(conn))
    demo_run.sim.add_fault("http_500", dealer=DEALER, method="Vehicle")  # until the cause is fixed
    dr = demo_run.test(T1)
    tis = _tis(dr)
    assert str(dr.state) == "failed" and tis[("load", -1)][0] == "success", tis
    assert _rows(demo_run.warehouse, "SELECT status FROM etl_runs") == [("partial",)]
    assert not _rows(demo_run.warehouse, "SELECT 1 FROM service_requests WHERE dealer_id = :d", d=DEALER)

    demo_run.sim.clear_faults()  # fixed; on-call clears the dealer's batch with downstream
    for task_id in ("extract", "validate", "transform", "load"):
        assert set(_rerun_task(demo_run.dag, dr, task_id)) == {"success"}, task_id

    status = read_json(next((demo_run.tmp / "data" / "landing" / "demo" / "vehicles" / DEALER).glob("run=*"))
                       / "status.json")
    assert status["status"] == "ok"
    assert _rows(demo_run.warehouse, "SELECT status, dealers_ok, dealers_failed FROM etl_runs") == [("success", 3, 0)]
    assert _rows(demo_run.warehouse, "SELECT status FROM etl_run_dealers WHERE dealer_id = :d AND dataset = "
                                     "'vehicles'", d=DEALER) == [("ok",)]
    created = _rows(demo_run.warehouse, "SELECT COUNT(*) FROM service_requests WHERE dealer_id = :d", d=DEALER)
    assert created[0][0] > 0
    events = _rows(demo_run.warehouse, "SELECT DISTINCT run_id FROM service_request_events WHERE dealer_id = :d",
                   d=DEALER)
    assert events == [("demo:20261123T060000Z",)]  # attributed to the run whose feed it is
