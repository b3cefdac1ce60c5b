"""Bad rows have no outsized effects (issue 14, defect 5), through the real pipeline steps.

The simulator serves a scripted world over HTTP; the real client extracts it; validation,
the rules engine and the load run as in the DAG (pipeline functions, no Airflow), into a
SQLite warehouse. Day 1 creates a service request per vehicle. Day 2 dealer Q_A sends:

* V1 twice (both copies quarantined, `vin_unique`)          -> its SR stays active
* V2 without stock number (`stock_number_present`)         -> its SR stays active
* V3 as lower case (`vin_format`: a malformed VIN)          -> not present: closed
* V4 (the first row) with one NUL in its Model (simulator `forbidden_bytes`) -> quarantined
  `forbidden_character`, the other rows load, no retry      -> its SR stays active
* V5 unchanged                                              -> active
Auto Close is Immediately, so any VIN judged absent is closed in that run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from dealer_feed.config import GroupConfig
from dealer_feed.contract.identity import run_id
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.pipeline import DealerStepError, RunContext, load, transform
from support import extract_and_validate
from dealer_feed_tools.simulator import World, start_background
from dealer_feed.warehouse import reads
from dealer_feed.warehouse.migrations import apply as migrate

DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
USER, PASSWORD = "vendor", "bad-rows-secret"
V = {n: f"1HGCM82633A00000{n}" for n in range(1, 6)}


def vehicle(n: int, **over) -> dict:
    return {"VIN": V[n], "StockNumber": f"S{n}", "TypeNU": "U", "ModelYear": "2022"} | over


WORLD = {
    "seed": 1,
    "vendors": [{"username": USER, "password": PASSWORD, "requests_per_second": 1000}],
    "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}, "Parts": {"begins": "2026-01-01"}}},
    "dealers": [
        {"enterprise_code": "Q", "company_number": "A", "make_codes": ["KI"],
         "inventory": {"scripted": {
             "2026-11-23": [vehicle(n) for n in range(1, 6)],
             "2026-11-24": [vehicle(4, Model="Sorento"), vehicle(1), vehicle(1), vehicle(2, StockNumber=None),
                            vehicle(3, VIN=V[3].lower()), vehicle(5)],
         }}},
        {"enterprise_code": "Q", "company_number": "B",
         "inventory": {"scripted": {"2026-11-23": [vehicle(1, VIN="2HGCM82633A000009")]}}},
    ],
}
GROUP = GroupConfig.model_validate({
    "group": "badrows",
    "thresholds": {"max_bad_fraction": 0.9, "max_close_fraction": 1.0},
    "settings": {
        "auto_close": {"mode": "immediately"},
        "client_dealer": [{"client": "C", "sr_type": "Recon", "dealer_id": d} for d in ("Q_A", "Q_B")],
    },
    "dealers": [
        {"enterprise_code": "Q", "company_number": "A", "make_codes": ["KI"], "datasets": ["vehicles", "parts"]},
        {"enterprise_code": "Q", "company_number": "B"},
    ],
})


@pytest.fixture
def env(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    migrate(engine)
    with start_background(World.model_validate(WORLD)) as sim:
        client = OpenTrackClient(sim.url, USER, PASSWORD, timeout=5, max_attempts=3, backoff_seconds=0.01,
                                 max_backoff_seconds=0.05, requests_per_second=500)
        try:
            yield sim, client, engine, tmp_path / "landing"
        finally:
            client.close()
            engine.dispose()


def run(client, engine, landing, T) -> dict:
    ctx = RunContext(GROUP, T, landing=landing)
    previous = reads.previous_good_rows(engine, GROUP.group, list(GROUP.dealer_ids), before=ctx.T)
    extract_and_validate(ctx, list(GROUP.dealer_ids), client, previous)
    summary = transform(ctx, engine)
    load(ctx, engine)
    return summary


def rows(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def test_quarantined_rows_keep_their_service_requests_and_forbidden_bytes_cost_one_row(env):
    sim, client, engine, landing = env
    run(client, engine, landing, DAY1)
    assert sorted(rows(engine, "SELECT vin, status FROM service_requests WHERE dealer_id = 'Q_A'")) == [
        (V[n], "active") for n in range(1, 6)]

    sim.add_fault("forbidden_bytes", dealer="Q_A", method="Vehicle", field="Model", payload="\x00")
    summary = run(client, engine, landing, DAY2)

    status = dict(rows(engine, "SELECT vin, status FROM service_requests WHERE dealer_id = 'Q_A'"))
    assert status == {V[1]: "active", V[2]: "active", V[3]: "closed", V[4]: "active", V[5]: "active"}
    assert summary["counts"]["by_dealer"]["Q_A"]["closed"] == 1
    run2 = run_id(GROUP.group, DAY2)
    quarantined = sorted(rows(engine, "SELECT row_number, rules FROM quarantine WHERE run_id = :r AND dataset = "
                                      "'vehicles'", r=run2))
    assert quarantined == [(0, "forbidden_character"), (1, "vin_unique"), (2, "vin_unique"),
                           (3, "stock_number_present"), (4, "vin_format")]
    [(row_json,)] = rows(engine, "SELECT row_json FROM quarantine WHERE run_id = :r AND rules = 'forbidden_character'",
                         r=run2)
    assert '"model":"\ufffdSorento"' in row_json
    assert rows(engine, "SELECT vin FROM feed_vehicles WHERE run_id = :r AND dealer_id = 'Q_A'", r=run2) == [(V[5],)]
    calls = [e["outcome"] for e in sim.requests(dealer_id="Q_A", operation="VehicleInventory")]
    assert calls[-1] == "fault:forbidden_bytes" and len(calls) == 2  # day 1 + day 2: no retry
    # the presence-only VINs got no event of any kind this run
    events = rows(engine, "SELECT vin, kind FROM service_request_events WHERE run_id = :r", r=run2)
    assert events == [(V[3], "auto_closed")]


def test_a_dealer_failing_two_datasets_is_counted_once(env):
    sim, client, engine, landing = env
    sim.add_fault("http_503", dealer="Q_A")
    ctx = RunContext(GROUP, DAY1, landing=landing)
    with pytest.raises(DealerStepError) as caught:
        extract_and_validate(ctx, ["Q_A"], client, {})
    message = str(caught.value)
    assert message.startswith("1 of 1 dealer(s) in this batch failed (vehicles, parts)."), message
    assert "- Q_A vehicles:" in message and "- Q_A parts:" in message
    assert caught.value.dealers == ["Q_A"]
