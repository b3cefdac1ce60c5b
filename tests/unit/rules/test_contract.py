"""Engine contract: dtypes, time zones, counts, input errors, the mass-close guard."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
from rules_helpers import DAY, T0, VIN_A, VIN_B, VIN_C, feed, one, run, settings, sr, srs

from dealer_feed.rules import frames
from dealer_feed.rules.engine import COUNT_KEYS, compute_changes
from dealer_feed.rules.guards import MassCloseError, check_mass_close


def _dtypes(frame):
    return {c: str(t) for c, t in frame.dtypes.items()}


def _want(dt):
    return {c: str(pd.Series([], dtype=t).dtype) for c, t in dt.items()}


def test_output_frames_have_the_documented_columns_and_dtypes():
    ch = run(feed(("Z_1", VIN_A, "S1"), ("Z_3", VIN_B, "S2")), srs(sr(vin=VIN_C, absent_since=T0)), T0 + DAY,
             settings(auto=("immediately", None)))
    assert _dtypes(ch.service_requests) == _want(frames.SR_OUT_DTYPES)
    assert _dtypes(ch.events) == _want(frames.EVENT_DTYPES)
    assert _dtypes(ch.outcomes) == _want(frames.OUTCOME_DTYPES)
    empty = run(feed(), srs(), T0, settings(), extracted=())
    assert _dtypes(empty.service_requests) == _want(frames.SR_OUT_DTYPES)
    assert _dtypes(empty.events) == _want(frames.EVENT_DTYPES)
    assert _dtypes(empty.outcomes) == _want(frames.OUTCOME_DTYPES)


def test_empty_frame_constructors_match_the_dtypes():
    assert _dtypes(frames.empty_srs()) == _want(frames.SR_DTYPES)
    assert _dtypes(frames.empty_sr_changes()) == _want(frames.SR_OUT_DTYPES)
    assert _dtypes(frames.empty_events()) == _want(frames.EVENT_DTYPES)


def test_naive_and_aware_inputs_give_the_same_answer():
    aware = srs(sr(created_at=T0))
    naive = aware.copy()
    for c in frames.SR_TIMESTAMPS:
        naive[c] = naive[c].dt.tz_convert("Europe/Kyiv") if c == "created_at" else naive[c].dt.tz_localize(None)
    s = settings(track=("for_n_days", 1), auto=("after_n_days", 1))
    f = feed(("Z_1", VIN_A, "S2"))
    a = run(f, aware, T0 + DAY, s)
    b = run(f, naive, datetime(2026, 3, 2, 6), s)  # naive logical time = UTC
    pd.testing.assert_frame_equal(a.service_requests, b.service_requests)
    pd.testing.assert_frame_equal(a.events, b.events)


def test_object_and_string_timestamps_are_accepted():
    state = srs(sr()).astype({"created_at": object})
    state["anchor_at"] = state["anchor_at"].astype(str)
    ch = run(feed(), state, T0 + 3 * DAY, settings(auto=("after_n_days", 3)), extracted=("Z_1",))
    assert one(ch.service_requests, vin=VIN_A)["status"] == "closed"


def test_counts_are_json_serialisable_with_every_key():
    ch = run(feed(("Z_1", VIN_A, "S1"), ("Z_3", VIN_B, "S2")), srs(), T0, settings())
    json.dumps(ch.counts)
    assert set(ch.counts["by_dealer"]) == {"Z_1", "Z_2", "Z_3"}
    assert all(set(d) == set(COUNT_KEYS) for d in ch.counts["by_dealer"].values())
    assert ch.counts["totals"]["created"] == 1 and ch.counts["totals"]["ignored_unmapped_dealer"] == 1


def test_outcomes_are_in_feed_order():
    f = feed(("Z_2", VIN_B, "S2"), ("Z_1", VIN_A, "S1"))
    ch = run(f, srs(), T0, settings())
    assert ch.outcomes["vin"].tolist() == [VIN_B, VIN_A]


def _call(f, state, extracted=("Z_1", "Z_2")):
    return compute_changes(f, state, extracted_dealers=extracted, settings=settings(), group="g", logical_time=T0)


def test_feed_row_of_a_dealer_not_extracted_is_a_contract_error():
    with pytest.raises(ValueError, match="not in extracted_dealers: Z_9"):
        _call(feed(("Z_9", VIN_A, "S1")), srs())


def test_same_vin_twice_at_one_dealer_is_a_contract_error():
    with pytest.raises(ValueError, match="twice"):
        _call(feed(("Z_1", VIN_A, "S1"), ("Z_1", VIN_A, "S2")), srs())


def test_two_active_srs_for_a_vin_is_a_contract_error():
    with pytest.raises(ValueError, match="more than one active"):
        _call(feed(), srs(sr(created_at=T0 - DAY), sr(created_at=T0 - 2 * DAY)))


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="missing column.*system_code"):
        _call(feed(("Z_1", VIN_A, "S1")).drop(columns="system_code"), srs())


# --------------------------------------------------------------------------- guard


def _closing(n_active, n_absent, dealer="Z_1"):
    vins = [f"1HGCM82633A{i:06d}" for i in range(n_active)]
    state = srs(*[sr(vin=v, dealer_id=dealer) for v in vins])
    f = feed(*[(dealer, v, "S1") for v in vins[n_absent:]])
    ch = compute_changes(f, state, extracted_dealers=["Z_1", "Z_2"], settings=settings(auto=("immediately", None)),
                         group="g", logical_time=T0 + DAY)
    return ch, state


def test_mass_close_guard_fails_above_the_fraction_with_counts_and_fix():
    ch, state = _closing(4, 3)
    with pytest.raises(MassCloseError) as err:
        check_mass_close(ch, state, 0.5, force=False)
    msg = str(err.value)
    assert "dealer Z_1 would close 3 of 4 active" in msg and "limit 50%" in msg and "force_guards=true" in msg
    assert err.value.breaches[0].would_close == 3


def test_mass_close_guard_passes_at_exactly_the_fraction_and_when_forced():
    ch, state = _closing(4, 2)
    assert check_mass_close(ch, state, 0.5, force=False)[0].would_close == 2
    ch, state = _closing(4, 4)
    assert check_mass_close(ch, state, 0.5, force=True)[0].would_close == 4


def test_mass_close_guard_ignores_runs_without_closes():
    ch, state = _closing(3, 0)
    assert check_mass_close(ch, state, 0.0) == []
