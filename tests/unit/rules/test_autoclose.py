"""Presence, anchor reset, went_absent and Auto Close: never | immediately | after_n_days."""

from __future__ import annotations

import pandas as pd
import pytest
from rules_helpers import DAY, HOUR, T0, VIN_A, VIN_B, feed, kinds, one, run, settings, sr, srs

OTHER = ("Z_1", VIN_B, "SB")  # keeps the feed non-empty; VIN_A is absent


def test_immediately_closes_in_the_first_absent_run():
    ch = run(feed(OTHER), srs(sr()), T0 + HOUR, settings(auto=("immediately", None)))
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["status"], r["closed_at"], r["close_reason"]) == ("closed", pd.Timestamp(T0 + HOUR),
                                                                  "auto_close_immediately")
    assert one(ch.events, vin=VIN_A)["kind"] == "auto_closed"
    assert ch.counts["by_dealer"]["Z_1"]["closed"] == 1


@pytest.mark.parametrize(
    "age, closes",
    [(3 * DAY - HOUR, False), (3 * DAY, True), (3 * DAY + HOUR, True), (2 * DAY, False), (4 * DAY, True),
     (3 * DAY - pd.Timedelta(microseconds=1), False)],
)
def test_after_n_days_boundary_is_inclusive(age, closes):
    ch = run(feed(OTHER), srs(sr()), T0 + age, settings(auto=("after_n_days", 3)))
    r = one(ch.service_requests, vin=VIN_A)
    if closes:
        assert (r["status"], r["close_reason"]) == ("closed", "auto_close_after_n_days")
    else:
        assert r["status"] == "active" and r["absent_since"] == pd.Timestamp(T0 + age)
        assert one(ch.events, vin=VIN_A)["kind"] == "went_absent"


def test_after_n_days_counts_from_the_anchor_not_creation():
    state = srs(sr(anchor_at=T0 + 5 * DAY))
    ch = run(feed(OTHER), state, T0 + 7 * DAY, settings(auto=("after_n_days", 3)))
    assert one(ch.service_requests, vin=VIN_A)["status"] == "active"


def test_never_does_not_close_but_tracks_absence_and_reset():
    s = settings(auto=("never", None))
    ch = run(feed(OTHER), srs(sr()), T0 + 30 * DAY, s)
    r = one(ch.service_requests, vin=VIN_A)
    assert r["status"] == "active" and kinds(ch).count("went_absent") == 1


def test_went_absent_only_once():
    state = srs(sr(absent_since=T0 + DAY))
    ch = run(feed(OTHER), state, T0 + 2 * DAY, settings(auto=("never", None)))
    assert "went_absent" not in kinds(ch)
    assert VIN_A not in set(ch.service_requests["vin"])  # nothing changed for it


def test_reappearance_resets_anchor_and_records_old_anchor():
    state = srs(sr(absent_since=T0 + DAY))
    ch = run(feed(("Z_1", VIN_A, "S1")), state, T0 + 2 * DAY, settings(auto=("after_n_days", 3)))
    r = one(ch.service_requests, vin=VIN_A)
    assert r["anchor_at"] == pd.Timestamp(T0 + 2 * DAY) and pd.isna(r["absent_since"])
    ev = one(ch.events, kind="anchor_reset")
    assert ev["old_anchor_at"] == pd.Timestamp(T0)
    assert ch.counts["totals"]["anchor_reset"] == 1


def test_being_present_never_moves_the_anchor():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr()), T0 + 2 * DAY, settings(auto=("after_n_days", 3)))
    assert one(ch.service_requests, vin=VIN_A)["anchor_at"] == pd.Timestamp(T0)


def test_presence_at_another_dealer_counts_whatever_the_outcome():
    s = settings(auto=("immediately", None))
    ch = run(feed(("Z_3", VIN_A, "S1")), srs(sr()), T0 + DAY, s)  # Z_3 unmapped: ignored, but present
    assert one(ch.service_requests, vin=VIN_A)["status"] == "active"


def test_dealer_not_extracted_closes_nothing():
    s = settings(auto=("immediately", None))
    ch = run(feed(("Z_2", VIN_B, "S1")), srs(sr(dealer_id="Z_1")), T0 + DAY, s, extracted=("Z_2",))
    assert len(ch.service_requests[ch.service_requests["vin"] == VIN_A]) == 0
    assert kinds(ch) == ["created"]


def test_empty_feed_of_an_extracted_dealer_closes():
    ch = run(feed(), srs(sr()), T0 + DAY, settings(auto=("immediately", None)), extracted=("Z_1",))
    assert one(ch.service_requests, vin=VIN_A)["status"] == "closed"


def test_closed_srs_are_never_touched():
    state = srs(sr(status="closed", closed_at=T0 + HOUR, close_reason="manual"))
    ch = run(feed(OTHER), state, T0 + 10 * DAY, settings(auto=("immediately", None)))
    assert VIN_A not in set(ch.service_requests["vin"])


# --------------------------------------------------------------- quarantined rows (SPEC: present)


def test_a_quarantined_rows_well_formed_vin_keeps_its_sr_and_changes_nothing_else():
    """VIN_A's row was quarantined (e.g. sent twice by Z_1, or without stock number): present."""
    ch = run(feed(OTHER), srs(sr()), T0 + HOUR, settings(auto=("immediately", None)), quarantined_vins=[VIN_A, VIN_A])
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["status"], r["last_seen_at"], r["stock_number"]) == ("active", pd.Timestamp(T0 + HOUR), "S1")
    assert VIN_A not in set(ch.events["vin"]) and VIN_A not in set(ch.outcomes["vin"])
    assert ch.counts["totals"]["closed"] == 0 and ch.counts["totals"]["went_absent"] == 0


def test_a_quarantined_vin_creates_nothing():
    ch = run(feed(OTHER), srs(), T0, settings(), quarantined_vins=[VIN_A])
    assert VIN_A not in set(ch.service_requests["vin"]) and VIN_A not in set(ch.events["vin"])


@pytest.mark.parametrize("malformed", [VIN_A.lower(), f" {VIN_A}", VIN_A[:-1] + "I", VIN_A[:-1], None])
def test_a_malformed_quarantined_vin_is_not_present(malformed):
    ch = run(feed(OTHER), srs(sr()), T0 + HOUR, settings(auto=("immediately", None)), quarantined_vins=[malformed])
    assert one(ch.service_requests, vin=VIN_A)["status"] == "closed"


def test_presence_by_a_quarantined_row_resets_the_anchor_like_any_presence():
    state = srs(sr(absent_since=T0 + DAY))
    ch = run(feed(OTHER), state, T0 + 2 * DAY, settings(auto=("after_n_days", 3)), quarantined_vins=[VIN_A])
    r = one(ch.service_requests, vin=VIN_A)
    assert r["anchor_at"] == pd.Timestamp(T0 + 2 * DAY) and pd.isna(r["absent_since"])
    assert one(ch.events, vin=VIN_A)["kind"] == "anchor_reset"
