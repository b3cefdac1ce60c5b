"""apply_run against SQLite and a real PostgreSQL: one transaction per run, in order, idempotent."""

from __future__ import annotations

import pandas as pd
import pytest
from support import at_once
from wh_dbutil import add_children, count, rows, scalar, table_hashes
from wh_frames import DAY, T0, RunBuilder, empty_run, scenario, sr_id, vin

from dealer_feed.warehouse import make_engine, reads
from dealer_feed.warehouse.errors import LoadDataError, NotMigratedError, RunOrderError
from dealer_feed.warehouse.load import apply_run
from dealer_feed.warehouse.migrations import apply


def load_all(engine, runs, children_after: int | None = 1):
    results = []
    for i, run in enumerate(runs):
        results.append(apply_run(engine, run))
        if i == children_after:
            add_children(engine, sr_id("g", vin(1), T0), "g", "S1", "ACME")
    return results


def test_end_to_end_scenario(warehouse):
    runs = scenario()
    results = load_all(warehouse, runs)
    assert [r.status for r in results] == ["applied"] * 5
    assert results[1].rows["service_requests_created"] == 3
    assert results[1].rows["feed_vehicles"] == 5
    assert results[1].rows["quarantine"] == 1

    srs = pd.read_sql_query("SELECT * FROM service_requests ORDER BY sr_id", warehouse.connect())
    assert len(srs) == 6  # v1..v4, v6, and v2's second SR
    by_id = srs.set_index("sr_id")
    v1 = by_id.loc[sr_id("g", vin(1), T0)]
    assert v1.stock_number == "S1b" and v1.status == "active"
    assert v1.created_run_id == "g:20260301T060000Z" and v1.last_run_id == "g:20260304T060000Z"
    v2_old = by_id.loc[sr_id("g", vin(2), T0)]
    assert v2_old.status == "closed" and v2_old.close_reason == "auto_close_immediately"
    assert str(v2_old.closed_at).startswith("2026-03-02 06:00:00")
    v3 = by_id.loc[sr_id("g", vin(3), T0)]
    assert str(v3.anchor_at).startswith("2026-03-04 06:00:00") and v3.absent_since is None
    assert rows(warehouse, "SELECT COUNT(*) FROM service_requests WHERE status = 'active'") == [(5,)]

    # the stock number change cascaded to the SR's inspection and work order
    assert rows(warehouse, "SELECT stock_number, client FROM inspections") == [("S1b", "ACME")]
    assert rows(warehouse, "SELECT stock_number, client FROM work_orders") == [("S1b", "ACME")]
    assert results[2].rows["inspections_updated"] == 1 and results[2].rows["work_orders_updated"] == 1

    assert count(warehouse, "service_request_events") == sum(len(r.events) for r in runs)
    assert rows(warehouse, "SELECT run_id, event_no, kind, reason FROM service_request_events "
                           "WHERE kind IN ('auto_closed', 'ignored') ORDER BY run_id, event_no") == [
        ("g:20260301T060000Z", 3, "ignored", "unmapped_dealer"),
        ("g:20260302T060000Z", 1, "auto_closed", "auto_close_immediately"),
        ("g:20260302T060000Z", 2, "ignored", "unmapped_dealer"),
    ]
    feed = rows(warehouse, "SELECT dealer_id, vin, system_code, vehicle_status, model_year, certified_used_car, "
                           "date_modified, outcome FROM feed_vehicles WHERE run_id = 'g:20260301T060000Z' "
                           "AND vin = :v", v=vin(1))
    assert len(feed) == 1
    dealer_id, v, system_code, vehicle_status, model_year, certified, date_modified, outcome = feed[0]
    assert (dealer_id, system_code, vehicle_status, model_year, outcome) == ("D1", "N", "I", 2024, "created")
    assert not certified and str(date_modified) == "2026-02-01"

    runs_table = rows(warehouse, "SELECT run_id, status, dealers_ok, dealers_failed, vehicles_seen, sr_created, "
                                 "sr_updated, sr_auto_closed, sr_anchor_reset, vehicles_ignored, quarantined "
                                 "FROM etl_runs ORDER BY logical_time")
    assert runs_table == [
        ("g:20260120T060000Z", "success", 1, 0, 1, 1, 0, 0, 0, 0, 0),
        ("g:20260301T060000Z", "success", 2, 0, 5, 3, 0, 0, 0, 1, 1),
        ("g:20260302T060000Z", "success", 2, 0, 5, 1, 1, 1, 0, 1, 0),
        ("g:20260303T060000Z", "partial", 1, 1, 2, 1, 0, 0, 0, 0, 0),
        ("g:20260304T060000Z", "success", 2, 0, 5, 0, 0, 0, 1, 0, 0),
    ]
    assert rows(warehouse, "SELECT status, error FROM etl_run_dealers WHERE run_id = 'g:20260303T060000Z' "
                           "AND dealer_id = 'D2'") == [("failed", "extract failed")]
    assert scalar(warehouse, "SELECT COUNT(*) FROM etl_runs WHERE load_seconds > 0 AND run_seconds IS NOT NULL") == 5


def test_rerun_is_a_noop_with_identical_tables(warehouse):
    runs = scenario()
    load_all(warehouse, runs)
    before = table_hashes(warehouse)
    for run in runs:
        result = apply_run(warehouse, run)
        assert result.status == "already_applied" and result.rows == {}
        assert "already applied" in str(result)
    assert table_hashes(warehouse) == before


def test_out_of_order_run_is_refused_with_a_clear_message(warehouse):
    runs = scenario()
    load_all(warehouse, runs[:3])
    before = table_hashes(warehouse)
    with pytest.raises(RunOrderError) as err:
        apply_run(warehouse, empty_run("g", T0 + DAY / 2))
    message = str(err.value)
    assert "g:20260301T180000Z" in message and "g:20260302T060000Z" in message  # asked, last applied
    assert "logical-time order" in message and "backfill" in message
    assert table_hashes(warehouse) == before
    # an applied run older than the last one is "already applied", not an error
    assert apply_run(warehouse, runs[1]).status == "already_applied"
    # other groups are independent
    assert apply_run(warehouse, empty_run("other", T0)).status == "applied"


@pytest.mark.parametrize("crash_at", ["staged", "merged", "appended", "before_commit"])
def test_crash_inside_the_transaction_leaves_nothing_and_retry_applies(warehouse, crash_at):
    runs = scenario()
    load_all(warehouse, runs[:2])
    before = table_hashes(warehouse)

    def crash(step, conn):
        if step == crash_at:
            raise RuntimeError(f"injected crash at {step}")

    with pytest.raises(RuntimeError, match="injected crash"):
        apply_run(warehouse, runs[2], on_step=crash)
    assert table_hashes(warehouse) == before
    assert not reads.run_is_applied(warehouse, "g", runs[2].logical_time)
    # the retried run (after the "fix") applies normally
    assert apply_run(warehouse, runs[2]).status == "applied"
    assert rows(warehouse, "SELECT stock_number FROM inspections") == [("S1b",)]


def test_data_errors_roll_back_with_a_clear_message(warehouse):
    runs = scenario()
    apply_run(warehouse, runs[0])
    before = table_hashes(warehouse)

    bad = runs[1]
    unknown = bad.service_requests.copy()
    unknown.loc[0, "is_new"] = False  # an "update" of an SR the warehouse never had
    with pytest.raises(LoadDataError, match="not in the warehouse"):
        apply_run(warehouse, type(bad)(**{**bad.__dict__, "service_requests": unknown}))

    dup = bad.service_requests.copy()
    dup.loc[1, "vin"] = dup.loc[0, "vin"]  # a second active SR for the same VIN in the group
    with pytest.raises(LoadDataError, match="constraint"):
        apply_run(warehouse, type(bad)(**{**bad.__dict__, "service_requests": dup}))

    with pytest.raises(LoadDataError, match="lacks column"):
        apply_run(warehouse, type(bad)(**{**bad.__dict__, "feed_vehicles": bad.feed_vehicles.drop(columns="outcome")}))
    assert table_hashes(warehouse) == before
    assert apply_run(warehouse, bad).status == "applied"


def test_not_migrated_warehouse_says_so(warehouse_url):
    engine = make_engine(warehouse_url)
    with pytest.raises(NotMigratedError, match="dealer-feed migrate"):
        apply_run(engine, scenario()[0])
    with pytest.raises(NotMigratedError, match="dealer-feed migrate"):
        reads.read_relevant_srs(engine, "g", T0, 0)


def test_empty_run_records_the_run(warehouse):
    result = apply_run(warehouse, empty_run("g", T0))
    assert result.status == "applied"
    assert rows(warehouse, "SELECT run_id, vehicles_seen FROM etl_runs") == [("g:20260301T060000Z", 0)]


def test_timestamps_are_stored_as_their_utc_time_to_the_microsecond(warehouse):
    """A zoned timestamp column, whatever its zone, is written as its UTC time (SQLite: TS text)."""
    run = RunBuilder("g").begin(T0)
    run.create("D1", vin(1), "S1")
    run = run.finish()
    srs = run.service_requests
    srs["last_seen_at"] = srs["last_seen_at"].dt.tz_convert("Europe/Kyiv") + pd.Timedelta(microseconds=5)
    assert apply_run(warehouse, run).status == "applied"
    [(created, last_seen)] = rows(warehouse, "SELECT created_at, last_seen_at FROM service_requests")
    assert (str(created), str(last_seen)) == ("2026-03-01 06:00:00" if warehouse.dialect.name == "postgresql"
                                              else "2026-03-01 06:00:00.000000", "2026-03-01 06:00:00.000005")


def test_raw_parts_and_repair_orders_load(warehouse):
    run = scenario()[0]
    run.parts = pd.DataFrame({"dealer_id": ["D2", "D2", "D1"], "part_number": ["P1", "P2", "P1"],
                              "make_code": ["KI", "KI", "SU"], "on_hand": ["3", "0", "1"]})
    run.repair_orders = pd.DataFrame({"dealer_id": ["D2"], "repair_order_number": ["RO-1"],
                                      "date_opened": ["2026-01-19"]})
    result = apply_run(warehouse, run)
    assert result.rows["parts_inventory"] == 3 and result.rows["repair_orders"] == 1
    # the key column is filled from the validated frame's own column name (it was always NULL)
    assert rows(warehouse, "SELECT dealer_id, ro_number FROM repair_orders") == [("D2", "RO-1")]
    assert rows(warehouse, "SELECT dealer_id, row_number, part_number FROM parts_inventory ORDER BY dealer_id, row_number") == [
        ("D1", 0, "P1"), ("D2", 0, "P1"), ("D2", 1, "P2")]
    assert '"make_code":"SU"' in scalar(warehouse, "SELECT row_json FROM parts_inventory WHERE dealer_id = 'D1'")


def _group_runs(group: str, n_runs: int, n_vehicles: int) -> list:
    b = RunBuilder(group)
    runs = []
    for r in range(n_runs):
        b.begin(T0 + r * DAY)
        for i in range(n_vehicles):
            v = vin(i)
            if r == 0:
                b.create("D1", v, f"S{i}")
            else:
                b.seen(v, stock=f"S{i}-{r}" if i % 3 == 0 else None)
        runs.append(b.finish())
    return runs


def test_two_groups_load_concurrently(warehouse_url):
    engine = make_engine(warehouse_url)
    apply(engine)
    plans = {g: _group_runs(g, 4, 300) for g in ("north", "south")}

    def load_in_order(group: str) -> list[str]:
        own = make_engine(warehouse_url)  # each DAG has its own engine / connections
        return [apply_run(own, run).status for run in plans[group]]

    assert at_once(*(lambda g=g: load_in_order(g) for g in plans)) == [["applied"] * 4] * 2
    assert rows(engine, "SELECT dealer_group, COUNT(*) FROM etl_runs GROUP BY dealer_group ORDER BY 1") == [
        ("north", 4), ("south", 4)]
    assert rows(engine, "SELECT dealer_group, COUNT(*) FROM service_requests GROUP BY dealer_group ORDER BY 1") == [
        ("north", 300), ("south", 300)]


def test_same_run_applied_twice_at_once_applies_once(warehouse_url):
    engine = make_engine(warehouse_url)
    apply(engine)
    run = _group_runs("g", 1, 500)[0]
    results = at_once(*[lambda: apply_run(make_engine(warehouse_url), run).status] * 3)
    assert sorted(results) == ["already_applied", "already_applied", "applied"]
    assert count(engine, "service_requests") == 500
