"""Track Stock No and Client: never | for_n_days (inclusive, counted from creation)."""

from __future__ import annotations

import pandas as pd
import pytest
from rules_helpers import DAY, HOUR, T0, VIN_A, feed, kinds, one, outcome, run, settings, sr, srs


@pytest.mark.parametrize(
    "age, updated",
    [(2 * DAY, True), (3 * DAY - HOUR, True), (3 * DAY, True), (3 * DAY + HOUR, False), (4 * DAY, False),
     (0 * DAY, True)],
)
def test_for_n_days_window_is_inclusive(age, updated):
    ch = run(feed(("Z_1", VIN_A, "S2")), srs(sr(stock_number="S1")), T0 + age, settings(track=("for_n_days", 3)))
    assert outcome(ch) == (("updated", None) if updated else ("unchanged", None))
    r = one(ch.service_requests, vin=VIN_A)
    assert r["stock_number"] == ("S2" if updated else "S1")


def test_never_never_updates():
    ch = run(feed(("Z_1", VIN_A, "S2")), srs(sr(stock_number="S1")), T0 + HOUR, settings(track=("never", None)))
    assert outcome(ch) == ("unchanged", None)
    assert "updated" not in kinds(ch)


def test_client_change_alone_is_tracked_with_old_and_new_values():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr(client="OLD")), T0 + DAY, settings(track=("for_n_days", 3)))
    ev = one(ch.events, kind="updated")
    assert (ev["old_stock_number"], ev["new_stock_number"], ev["old_client"], ev["new_client"]) == (
        "S1", "S1", "OLD", "C1")


def test_same_stock_and_client_is_unchanged_and_only_last_seen_moves():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr()), T0 + DAY, settings(track=("for_n_days", 3)))
    assert outcome(ch) == ("unchanged", None)
    assert kinds(ch) == []
    r = one(ch.service_requests, vin=VIN_A)
    assert r["last_seen_at"] == pd.Timestamp(T0 + DAY) and not r["is_new"]


def test_rerun_with_nothing_new_emits_no_sr_rows():
    state = srs(sr(last_seen_at=T0 + DAY))
    ch = run(feed(("Z_1", VIN_A, "S1")), state, T0 + DAY, settings())
    assert len(ch.service_requests) == 0


def test_anchor_reset_does_not_extend_the_track_window():
    state = srs(sr(stock_number="S1", anchor_at=T0 + 5 * DAY))
    ch = run(feed(("Z_1", VIN_A, "S2")), state, T0 + 4 * DAY, settings(track=("for_n_days", 3)))
    assert outcome(ch) == ("unchanged", None)


def test_null_stock_on_sr_counts_as_different():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr(stock_number=None)), T0 + DAY, settings(track=("for_n_days", 3)))
    assert outcome(ch) == ("updated", None)
