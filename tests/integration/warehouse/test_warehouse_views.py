"""Each analyst view returns what the scenario (wh_frames.scenario) implies."""

from __future__ import annotations

import pytest
from wh_dbutil import add_children, rows
from wh_frames import T0, scenario, sr_id, vin

from dealer_feed.warehouse.load import apply_run


@pytest.fixture
def loaded(warehouse):
    for i, run in enumerate(scenario()):
        apply_run(warehouse, run)
        if i == 1:
            add_children(warehouse, sr_id("g", vin(1), T0), "g", "S1", "ACME")
    return warehouse


def test_open_service_requests_by_age(loaded):
    got = rows(loaded, "SELECT dealer_id, age_band, open_requests, max_age_days FROM v_open_service_requests_by_age "
                       "ORDER BY dealer_id, age_band_order")
    # as of the last run (T0+3d): D1 has v1, v3 (3 days) and v2's new SR (1 day); D2 has v6 (2 days), v4 (43 days)
    assert [(d, b, n, round(float(m), 3)) for d, b, n, m in got] == [
        ("D1", "0-6 days", 3, 3.0), ("D2", "0-6 days", 1, 2.0), ("D2", "30-89 days", 1, 43.0)]
    assert str(rows(loaded, "SELECT DISTINCT as_of FROM v_open_service_requests_by_age")[0][0]).startswith(
        "2026-03-04 06:00:00")


def test_auto_closes_per_day(loaded):
    got = rows(loaded, "SELECT dealer_id, close_day, close_reason, auto_closed FROM v_auto_closes_per_day")
    assert [(d, str(day), r, n) for d, day, r, n in got] == [("D1", "2026-03-02", "auto_close_immediately", 1)]


def test_stock_client_changes(loaded):
    got = rows(loaded, "SELECT dealer_id, vin, run_id, old_stock_number, new_stock_number, old_client, new_client, "
                       "stock_number_changed, client_changed FROM v_stock_client_changes")
    assert got == [("D1", vin(1), "g:20260302T060000Z", "S1", "S1b", "ACME", "ACME", 1, 0)]


def test_feed_churn(loaded):
    got = rows(loaded, "SELECT dealer_id, run_id, vehicles, arrived, departed, returned FROM v_feed_churn "
                       "ORDER BY dealer_id, logical_time")
    assert got == [
        ("D1", "g:20260301T060000Z", 3, 3, 0, 0),
        ("D1", "g:20260302T060000Z", 2, 0, 1, 0),  # v2 left
        ("D1", "g:20260303T060000Z", 2, 1, 1, 1),  # v2 came back (seen in run1), v3 left
        ("D1", "g:20260304T060000Z", 3, 1, 0, 1),  # v3 came back
        ("D2", "g:20260120T060000Z", 1, 1, 0, 0),
        ("D2", "g:20260301T060000Z", 2, 1, 0, 0),  # v5 (ignored) arrived
        ("D2", "g:20260302T060000Z", 3, 1, 0, 0),  # v6 arrived
        # run3: D2's extract failed: no churn row; run4 compares with run2
        ("D2", "g:20260304T060000Z", 2, 0, 1, 0),  # v5 left
    ]


def test_run_history(loaded):
    got = rows(loaded, "SELECT run_id, status, dealers_ok, dealers_failed, vehicles_seen, sr_created, sr_updated, "
                       "sr_auto_closed, events FROM v_run_history ORDER BY logical_time")
    assert got == [
        ("g:20260120T060000Z", "success", 1, 0, 1, 1, 0, 0, 1),
        ("g:20260301T060000Z", "success", 2, 0, 5, 3, 0, 0, 4),
        ("g:20260302T060000Z", "success", 2, 0, 5, 1, 1, 1, 4),
        ("g:20260303T060000Z", "partial", 1, 1, 2, 1, 0, 0, 2),
        ("g:20260304T060000Z", "success", 2, 0, 5, 0, 0, 0, 1),
    ]
    durations = rows(loaded, "SELECT load_seconds, run_seconds FROM v_run_history")
    assert all(ls > 0 and rs is not None for ls, rs in durations)
