"""A first vehicle feed of 0 rows is never passed quietly; unmapped fields are kept per dealer."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from dealer_feed.config import find_group
from dealer_feed.pipeline import EMPTY_FIRST_FEED, RunContext, _drift_notes


def _ctx() -> RunContext:
    return RunContext(group=find_group("demo"), logical_time=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))


def test_empty_first_vehicle_feed_is_flagged_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        notes = _drift_notes(_ctx(), "vehicles", "ZE_ZE7", 0, {"ZE_ZE7": None}, {"Cylinders": 3})

    assert notes == {"unknown_fields": {"Cylinders": 3}, "warning": EMPTY_FIRST_FEED}
    assert "[dealer-feed] WARNING" in caplog.text and "ZE_ZE7" in caplog.text and "empty first feed" in caplog.text


def test_empty_feed_after_earlier_runs_and_other_datasets_are_not_flagged():
    ctx = _ctx()
    assert "warning" not in _drift_notes(ctx, "vehicles", "ZE_ZE7", 0, {"ZE_ZE7": 40}, {})  # the guard's job
    assert "warning" not in _drift_notes(ctx, "vehicles", "ZE_ZE7", 12, {}, {})
    assert "warning" not in _drift_notes(ctx, "parts", "ZE_ZE7", 0, {}, {})
