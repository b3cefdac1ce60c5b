"""Multi-day runs: the engine over a sequence of daily feeds, its output fed back as state.

Every combination of Track (never, for_n_days) x Auto Close (never, immediately,
after_n_days). VIN_A is at dealer Z_1 on day 0, changes stock on day 1, is absent on days
2-4 (one absent feed, then more), reappears on day 5, is absent again from day 6.
"""

from __future__ import annotations

import pandas as pd
import pytest
from rules_helpers import DAY, T0, VIN_A, VIN_B, apply, feed, run, settings, srs

TRACKS = {"never": ("never", None), "for_2_days": ("for_n_days", 2)}
AUTOS = {"never": ("never", None), "immediately": ("immediately", None), "after_3_days": ("after_n_days", 3)}
SR_A = f"g:{VIN_A}:20260301T060000Z"

# day -> VIN_A's stock number in the feed (None: absent). VIN_B is always present.
PLAN = {0: "S1", 1: "S2", 2: None, 3: None, 4: None, 5: "S3", 6: None, 7: None, 8: None, 9: None, 10: None}


def expected(track: str, auto: str) -> dict[int, dict]:
    """VIN_A's SR after each day, written out by hand from docs/RULES.md."""
    t = lambda d: pd.Timestamp(T0 + d * DAY)  # noqa: E731
    s1 = "S1"
    s = "S2" if track == "for_2_days" else s1  # day 1 is within 2 days of creation
    base = {"status": "active", "stock_number": s, "anchor_at": t(0), "absent_since": None, "closed_at": None}
    out = {0: {**base, "stock_number": s1, "last_seen_at": t(0)}, 1: {**base, "last_seen_at": t(1)}}
    if auto == "immediately":
        closed = {**base, "status": "closed", "closed_at": t(2), "last_seen_at": t(1)}
        for d in range(2, 11):
            out[d] = closed
        return out
    # absent from day 2: went_absent on day 2, until reappearance on day 5 (stock S3 is day 5 > 2: not tracked)
    for d in (2, 3, 4):
        out[d] = {**base, "absent_since": t(2), "last_seen_at": t(1)}
    if auto == "after_3_days":  # anchor t0: day 3 is >= 3 days -> closed on day 3
        out[2] = {**base, "absent_since": t(2), "last_seen_at": t(1)}
        closed = {**base, "status": "closed", "closed_at": t(3), "absent_since": t(2), "last_seen_at": t(1)}
        for d in range(3, 11):
            out[d] = closed
        return out
    out[5] = {**base, "anchor_at": t(5), "last_seen_at": t(5)}
    for d in range(6, 11):
        out[d] = {**base, "anchor_at": t(5), "absent_since": t(6), "last_seen_at": t(5)}
    return out


def expected_reset_scenario(auto: str) -> dict[int, str]:
    """Absent on day 1 only (one absent feed), back on day 2, then absent from day 3."""
    if auto == "immediately":
        return {1: "closed"}
    if auto == "after_3_days":
        # anchor reset to day 2; absent from day 3; closes once T - anchor >= 3 days -> day 5.
        return {1: "active", 2: "active", 3: "active", 4: "active", 5: "closed"}
    return {d: "active" for d in range(1, 8)}


@pytest.mark.parametrize("auto", list(AUTOS))
@pytest.mark.parametrize("track", list(TRACKS))
def test_sequence_of_feeds(track, auto):
    s = settings(track=TRACKS[track], auto=AUTOS[auto])
    state = srs()
    want = expected(track, auto)
    for day, stock in PLAN.items():
        rows = [("Z_1", VIN_B, "SB")] + ([("Z_1", VIN_A, stock)] if stock else [])
        ch = run(feed(*rows), state, T0 + day * DAY, s)
        state = apply(state, ch)
        srs_a = state[state["vin"] == VIN_A]
        active = srs_a[srs_a["status"] == "active"]
        assert len(active) <= 1
        got = srs_a[srs_a["sr_id"] == SR_A].iloc[0]
        for col, value in want[day].items():
            v = got[col]
            assert (pd.isna(v) and value is None) or v == value, (day, col, v, value)
        if auto == "immediately" and day == 5:  # reappears after being closed: a new SR
            assert len(active) == 1 and active.iloc[0]["sr_id"] != SR_A
        # events explain the state changes of the day
        kinds_a = ch.events.loc[ch.events["vin"] == VIN_A, "kind"].tolist()
        if day == 2:
            assert kinds_a == (["auto_closed"] if auto == "immediately" else ["went_absent"])
        if day == 5 and auto in ("never",):
            assert kinds_a == ["anchor_reset"]
        if day == 1:
            assert kinds_a == (["updated"] if track == "for_2_days" else [])


@pytest.mark.parametrize("auto", list(AUTOS))
def test_reappearance_after_one_absent_feed(auto):
    s = settings(auto=AUTOS[auto])
    state = srs()
    want = expected_reset_scenario(auto)
    present = {0: True, 1: False, 2: True}
    for day in range(0, 8):
        rows = [("Z_1", VIN_B, "SB")] + ([("Z_1", VIN_A, "S1")] if present.get(day, False) else [])
        ch = run(feed(*rows), state, T0 + day * DAY, s)
        state = apply(state, ch)
        first = state[state["sr_id"] == SR_A].iloc[0]
        if day in want:
            assert first["status"] == want[day], (day, first.to_dict())
        if day == 2 and auto != "immediately":
            assert first["anchor_at"] == pd.Timestamp(T0 + 2 * DAY)
        if auto == "immediately" and day >= 1:
            assert first["status"] == "closed"
