"""A dealer whose extract failed in a run that loaded the others (issue 14, defect 4).

On-call fixes the cause and clears the dealer's `extract` batch with downstream
(docs/RUNBOOK.md): extract, transform and load of that run run again. While the run is
still the group's last applied run, the load adds the dealer's part to it (one
transaction, events of that run, etl_runs / etl_run_dealers success); once a later run
has applied, the load says the later run caught up and etl_run_dealers records it.
Real parts: the simulator over HTTP (a fault on one dealer), real SQLite files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, load_world
from run_steps import BUSINESS, Steps

DEALER = "ZE_ZE8"


@pytest.fixture(scope="module")
def sim() -> Iterator:
    with start_background(load_world(DEMO_WORLD)) as handle:
        yield handle


@pytest.fixture
def faulty(sim) -> Iterator:
    """The simulator answers HTTP 500 to every Vehicle call of DEALER until `fix()`."""
    sim.reset()
    sim.add_fault("http_500", dealer=DEALER, method="Vehicle")
    yield sim
    sim.reset()


def _rows(steps: Steps, sql: str, **params) -> list[tuple]:
    with steps.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def _events(steps: Steps) -> list[tuple]:
    """Events without their number (a late dealer's events are numbered after the run's)."""
    return sorted(tuple(map(str, r)) for r in _rows(
        steps, "SELECT run_id, dealer_group, event_at, sr_id, dealer_id, vin, kind, reason, old_stock_number, "
               "new_stock_number, old_client, new_client, old_anchor_at FROM service_request_events"))


def _partial_run(steps: Steps, day: int = 0) -> None:
    statuses = {(s["dealer_id"], s["dataset"]): s["status"] for s in steps.extract(day)}
    assert statuses[(DEALER, "vehicles")] == "failed"
    steps.transform(day)
    assert steps.load(day)["status"] == "applied"
    assert _rows(steps, "SELECT status FROM etl_runs") == [("partial",)]


def test_fixed_dealer_of_the_last_run_is_applied_to_that_run(faulty, tmp_path):
    never_failed = Steps(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a", faulty.url)
    faulty.clear_faults()
    never_failed.run(0)
    faulty.add_fault("http_500", dealer=DEALER, method="Vehicle")

    steps = Steps(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", faulty.url)
    _partial_run(steps)
    assert not _rows(steps, "SELECT 1 FROM service_requests WHERE dealer_id = :d", d=DEALER)

    faulty.clear_faults()  # the cause is fixed; on-call clears the dealer's batch with downstream
    assert {s["status"] for s in steps.extract(0, [DEALER]) if s["dataset"] == "vehicles"} == {"ok"}
    steps.transform(0)
    result = steps.load(0)
    assert result["status"] == "applied" and result["late_dealers"] == [DEALER]

    # the warehouse now equals a run in which the dealer never failed
    got, want = steps.business(), never_failed.business()
    assert {t: got[t] for t in BUSINESS if t != "service_request_events"} == {
        t: want[t] for t in BUSINESS if t != "service_request_events"}
    assert _events(steps) == _events(never_failed)
    assert got["etl_runs"] == want["etl_runs"]  # status success, counts of all three dealers
    assert _rows(steps, "SELECT COUNT(DISTINCT event_no), COUNT(*) FROM service_request_events") == _rows(
        never_failed, "SELECT COUNT(DISTINCT event_no), COUNT(*) FROM service_request_events")

    # clearing again changes nothing
    steps.transform(0)
    assert steps.load(0)["status"] == "already_applied"
    assert steps.business() == got


def test_fixed_dealer_after_a_later_run_applied_is_caught_up_by_it(faulty, tmp_path, caplog):
    steps = Steps(f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "landing", faulty.url)
    _partial_run(steps, 0)
    faulty.clear_faults()
    assert steps.run(1)["status"] == "applied"  # the next day's full snapshot of every dealer
    before = steps.business()

    steps.extract(0, [DEALER])
    steps.transform(0)
    with caplog.at_level(logging.WARNING, logger="dealer_feed.pipeline"):
        result = steps.load(0)
    assert result["status"] == "caught_up_by_later_run"
    assert result["caught_up"] == {DEALER: "demo:20261121T060000Z"}
    said = [r.getMessage() for r in caplog.records if DEALER in r.getMessage()]
    assert any("the next run caught up" in m and "demo:20261121T060000Z" in m for m in said), said
    # etl_run_dealers says why the run stays partial; nothing else moved
    assert _rows(steps, "SELECT dataset, status, caught_up_by FROM etl_run_dealers WHERE run_id = :r AND "
                        "dealer_id = :d", r="demo:20261120T060000Z", d=DEALER) == [
        ("vehicles", "failed", "demo:20261121T060000Z")]
    after = steps.business()
    assert {t: v for t, v in after.items() if t != "etl_run_dealers"} == {
        t: v for t, v in before.items() if t != "etl_run_dealers"}

    assert steps.load(0)["status"] == "already_applied"  # settled: a rerun changes nothing
    assert steps.business() == after
