"""Creating, Ignore if SR with VIN exists, duplicates across dealers, ignored events."""

from __future__ import annotations

import pandas as pd
import pytest
from rules_helpers import DAY, HOUR, T0, VIN_A, VIN_B, feed, kinds, one, outcome, run, settings, sr, srs

from dealer_feed.rules.frames import SR_OUT_DTYPES

IGNORE_3 = [{"client": "C1", "sr_type": "Recon", "dealer_id": "Z_1", "ignore_if_sr_with_vin_exists": True,
             "ignore_days": 3},
            {"client": "C2", "sr_type": "Recon2", "dealer_id": "Z_2"}]


def test_created_sr_has_full_state_and_deterministic_id():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(), T0, settings())
    r = one(ch.service_requests, vin=VIN_A)
    T = pd.Timestamp(T0)
    assert r["sr_id"] == f"g:{VIN_A}:20260301T060000Z"
    assert r["status"] == "active" and r["is_new"] is True or r["is_new"] == True  # noqa: E712
    assert r["created_at"] == r["anchor_at"] == r["last_seen_at"] == T
    assert pd.isna(r["closed_at"]) and pd.isna(r["absent_since"]) and pd.isna(r["close_reason"])
    assert kinds(ch) == ["created"]
    ev = one(ch.events, kind="created")
    assert (ev["new_stock_number"], ev["new_client"]) == ("S1", "C1")
    assert dict(ch.service_requests.dtypes.astype(str)) == {k: str(pd.Series([], dtype=v).dtype)
                                                             for k, v in SR_OUT_DTYPES.items()}


def test_no_second_sr_for_a_vin_with_an_active_sr():
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr(created_at=T0 - DAY)), T0, settings())
    assert outcome(ch) == ("unchanged", None)
    assert not ch.service_requests["is_new"].any()


@pytest.mark.parametrize(
    "age, ignored",
    [(3 * DAY - HOUR, True), (3 * DAY, True), (3 * DAY + HOUR, False), (2 * DAY, True), (4 * DAY, False),
     (3 * DAY + pd.Timedelta(microseconds=1), False)],
)
def test_ignore_days_boundary_is_inclusive(age, ignored):
    history = srs(sr(created_at=T0 - age, status="closed", closed_at=T0 - age + HOUR, close_reason="manual"))
    ch = run(feed(("Z_1", VIN_A, "S1")), history, T0, settings(clients=IGNORE_3))
    assert outcome(ch) == (("ignored", "sr_with_vin_exists") if ignored else ("created", None))


def test_ignore_counts_srs_of_any_status_and_any_dealer_of_the_group():
    history = srs(sr(dealer_id="Z_2", created_at=T0 - DAY, status="closed", closed_at=T0 - HOUR))
    ch = run(feed(("Z_1", VIN_A, "S1")), history, T0, settings(clients=IGNORE_3))
    assert outcome(ch) == ("ignored", "sr_with_vin_exists")
    assert one(ch.events, kind="ignored")["reason"] == "sr_with_vin_exists"


def test_ignore_flag_off_creates_despite_recent_sr():
    history = srs(sr(created_at=T0 - DAY, status="closed", closed_at=T0 - HOUR))
    ch = run(feed(("Z_2", VIN_A, "S1")), history, T0, settings(clients=IGNORE_3))
    assert outcome(ch) == ("created", None)


def test_ignore_days_zero_only_ignores_an_sr_created_at_t():
    history = srs(sr(created_at=T0 - HOUR, status="closed", closed_at=T0 - HOUR))
    zero = [{**IGNORE_3[0], "ignore_days": 0}]
    assert outcome(run(feed(("Z_1", VIN_A, "S1")), history, T0, settings(clients=zero))) == ("created", None)


def test_future_srs_do_not_count_for_ignore():
    history = srs(sr(created_at=T0 + HOUR, status="closed", closed_at=T0 + HOUR))
    assert outcome(run(feed(("Z_1", VIN_A, "S1")), history, T0, settings(clients=IGNORE_3))) == ("created", None)


def test_duplicate_vin_lowest_dealer_wins_without_active_sr():
    ch = run(feed(("Z_2", VIN_A, "S2"), ("Z_1", VIN_A, "S1")), srs(), T0, settings())
    assert outcome(ch, VIN_A, "Z_1") == ("created", None)
    assert outcome(ch, VIN_A, "Z_2") == ("ignored", "duplicate_vin_in_group")
    assert one(ch.service_requests, vin=VIN_A)["dealer_id"] == "Z_1"


def test_duplicate_vin_active_srs_dealer_wins_and_keeps_dealer():
    s = settings(track=("for_n_days", 10))
    ch = run(feed(("Z_1", VIN_A, "S1"), ("Z_2", VIN_A, "S9")), srs(sr(dealer_id="Z_2", stock_number="S2",
                                                                    client="C2")), T0 + DAY, s)
    assert outcome(ch, VIN_A, "Z_2") == ("updated", None)
    assert outcome(ch, VIN_A, "Z_1") == ("ignored", "duplicate_vin_in_group")
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["dealer_id"], r["stock_number"], r["client"]) == ("Z_2", "S9", "C2")
    assert one(ch.outcomes, dealer_id="Z_1")["sr_id"] == r["sr_id"]  # ignored rows name the VIN's active SR


def test_active_sr_at_a_dealer_not_in_the_feed_is_tracked_by_the_lowest_dealer_row():
    s = settings(track=("for_n_days", 10))
    ch = run(feed(("Z_2", VIN_A, "S2"), ("Z_1", VIN_A, "S1")), srs(sr(dealer_id="Z_3", client="C3")), T0 + DAY, s)
    assert outcome(ch, VIN_A, "Z_1") == ("updated", None)
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["dealer_id"], r["client"]) == ("Z_3", "C1")  # keeps its dealer; client of the feed row's dealer


def test_ignored_vehicle_with_active_sr_gets_event_every_run_and_no_update():
    rows = [{"system_code": "N", "vehicle_type": "New", "sr_type": "PDI", "include_only": True}]
    s = settings(track=("for_n_days", 10), mapping=rows)
    state = srs(sr(stock_number="S1"))
    for day in (1, 2):
        ch = run(feed(("Z_1", VIN_A, "S-changed", "U")), state, T0 + day * DAY, s)
        assert outcome(ch) == ("ignored", "excluded_by_include_only")
        ev = one(ch.events, kind="ignored")
        assert ev["sr_id"] == state["sr_id"].iloc[0]
        r = one(ch.service_requests, vin=VIN_A)  # present: last_seen_at moves, nothing else
        assert r["stock_number"] == "S1" and r["last_seen_at"] == pd.Timestamp(T0 + day * DAY)


def test_ignored_vehicle_keeps_its_active_sr_open():
    s = settings(auto=("immediately", None), clients=[IGNORE_3[1]])  # Z_1 unmapped now
    ch = run(feed(("Z_1", VIN_A, "S1")), srs(sr()), T0 + DAY, s)
    assert outcome(ch) == ("ignored", "unmapped_dealer")
    assert "auto_closed" not in kinds(ch)


def test_new_vehicle_without_srs_history_and_empty_settings_is_unmapped():
    ch = run(feed(("Z_1", VIN_B, "S1")), srs(), T0, settings(clients=[]))
    assert outcome(ch, VIN_B) == ("ignored", "unmapped_dealer")


def test_a_new_id_already_in_the_warehouse_is_refused():
    """The run was already applied: VIN_A's SR of this very run exists (closed since)."""
    history = srs(sr(vin=VIN_B, created_at=T0 - DAY),
                  sr(created_at=T0, status="closed", closed_at=T0 + HOUR, close_reason="manual"))
    with pytest.raises(ValueError, match="a new sr_id already exists in srs; was this run already applied"):
        run(feed(("Z_1", VIN_A, "S1")), history, T0, settings())
