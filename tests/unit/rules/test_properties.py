"""Property-based tests: random settings, feed sequences and histories.

On every example the vectorised engine and the one-vehicle-at-a-time reference give
identical Changes, and the invariants hold: never two active SRs for one VIN in a group;
nothing closed for a dealer not extracted; nothing present (in the feed, or a quarantined
row's well-formed VIN) closed; events explain every state change; every feed
vehicle has exactly one outcome.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from rules_helpers import GROUP, HOUR, T0, apply, srs

from dealer_feed.config import IntegrationSettings
from dealer_feed.rules.engine import compute_changes
from dealer_feed.rules.frames import FEED_COLUMNS

from reference import canonical, reference_changes

DEALERS = ["Z_1", "Z_2", "Z_3"]
VINS = [f"1HGCM82633A00000{i}" for i in range(6)]
CODES = ["N", "U", "X"]

track_st = st.one_of(st.just({"mode": "never"}), st.builds(lambda d: {"mode": "for_n_days", "days": d},
                                                            st.integers(0, 4)))
auto_st = st.one_of(st.just({"mode": "never"}), st.just({"mode": "immediately"}),
                    st.builds(lambda d: {"mode": "after_n_days", "days": d}, st.integers(0, 4)))
mapping_row = st.fixed_dictionaries({
    "system_code": st.sampled_from(CODES), "vehicle_type": st.sampled_from(["VT1", "VT2"]),
    "sr_type": st.sampled_from(["A", "B"]), "dealer_id": st.sampled_from([None, *DEALERS]),
    "include_only": st.booleans(),
})
client_row = st.fixed_dictionaries({
    "client": st.sampled_from(["C1", "C2"]), "sr_type": st.sampled_from(["R1", "R2"]),
    "ignore_if_sr_with_vin_exists": st.booleans(), "ignore_days": st.integers(0, 5),
})


@st.composite
def integration_settings(draw) -> IntegrationSettings:
    mapping = {}
    for row in draw(st.lists(mapping_row, max_size=5)):
        mapping.setdefault((row["system_code"], row["dealer_id"]), row)
    dealers = draw(st.lists(st.sampled_from(DEALERS), unique=True, max_size=3))
    clients = [{**draw(client_row), "dealer_id": d} for d in dealers]
    return IntegrationSettings.model_validate({
        "track_stock_and_client": draw(track_st), "auto_close": draw(auto_st),
        "vehicle_type_mapping": list(mapping.values()), "client_dealer": clients,
    })


QUARANTINED = [*VINS, "1HGCM82633A00000I", "1hgcm82633a000001", " 1HGCM82633A000001", "SHORT", None]
"""VINs of quarantined rows: well-formed ones (present) and malformed ones (no effect)."""


@st.composite
def run_plan(draw):
    """A list of runs: (hours since previous run, extracted dealers, feed rows, quarantined VINs)."""
    runs = []
    for _ in range(draw(st.integers(1, 6))):
        gap = draw(st.sampled_from([1, 12, 23, 24, 25, 48, 72, 96]))
        extracted = draw(st.lists(st.sampled_from(DEALERS), unique=True, min_size=0, max_size=3))
        rows = {}
        for d in extracted:
            for v in draw(st.lists(st.sampled_from(VINS), unique=True, max_size=4)):
                rows[(d, v)] = (d, v, draw(st.sampled_from(["S1", "S2"])), draw(st.sampled_from([*CODES, None])))
        quarantined = draw(st.lists(st.sampled_from(QUARANTINED), max_size=3)) if extracted else []
        runs.append((gap, sorted(extracted), list(rows.values()), quarantined))
    return runs


@st.composite
def history(draw):
    """Closed SRs of the past (for Ignore if SR with VIN exists) and maybe some active ones."""
    rows = []
    active_vins = draw(st.lists(st.sampled_from(VINS), unique=True, max_size=3))
    for i, v in enumerate(VINS):
        for k in range(draw(st.integers(0, 2))):
            created = T0 - draw(st.integers(0, 200)) * HOUR
            rows.append(_sr(v, draw(st.sampled_from(DEALERS)), created, "closed", k))
        if v in active_vins:
            created = T0 - draw(st.integers(0, 200)) * HOUR
            absent = draw(st.booleans())
            rows.append(_sr(v, draw(st.sampled_from(DEALERS)), created, "active", 9, absent_since=(
                created + HOUR if absent else None)))
    return srs(*rows)


def _sr(vin, dealer, created, status, k, absent_since=None):
    return {
        "sr_id": f"{GROUP}:{vin}:hist{k}:{created:%Y%m%dT%H%M%S}", "dealer_id": dealer, "vin": vin,
        "stock_number": "S1", "client": "C1", "vehicle_type": None, "sr_type": "R1", "status": status,
        "created_at": created, "closed_at": created + HOUR if status == "closed" else None,
        "close_reason": "manual" if status == "closed" else None, "anchor_at": created,
        "absent_since": absent_since, "last_seen_at": created,
    }


MUTABLE_EVENT = {"stock_number": "updated", "client": "updated", "status": "auto_closed",
                 "anchor_at": "anchor_reset"}


def _check_invariants(before, ch, after, extracted, feed, quarantined):
    assert len(ch.outcomes) == len(feed)
    present = set(feed["vin"]) | {v for v in quarantined if v in VINS}
    assert not set(ch.events.loc[ch.events["kind"] == "auto_closed", "vin"]) & present  # quarantine never closes
    assert ch.outcomes.set_index(["dealer_id", "vin"]).index.is_unique
    active = after[after["status"] == "active"]
    assert active["vin"].is_unique
    closed_now = ch.events[ch.events["kind"] == "auto_closed"]
    assert closed_now["dealer_id"].isin(extracted).all()
    # events explain every state change
    prev = before.set_index("sr_id")
    ev = ch.events
    for _, row in ch.service_requests.iterrows():  # test code: row loops are fine here
        kinds = set(ev.loc[ev["sr_id"] == row["sr_id"], "kind"])
        if row["is_new"]:
            assert "created" in kinds
            continue
        old = prev.loc[row["sr_id"]]
        for col, kind in MUTABLE_EVENT.items():
            if not (pd.isna(old[col]) and pd.isna(row[col])) and old[col] != row[col]:
                assert kind in kinds, (col, kind, kinds)
        if pd.isna(old["absent_since"]) and not pd.isna(row["absent_since"]):
            assert "went_absent" in kinds
    assert (ch.events["kind"] == "ignored").sum() == (ch.outcomes["outcome"] == "ignored").sum()
    assert (ch.events["kind"] == "created").sum() == ch.service_requests["is_new"].sum()


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=integration_settings(), plan=run_plan(), hist=history())
def test_engine_equals_reference_and_invariants_hold(s, plan, hist):
    state = hist
    T = T0
    for gap, extracted, rows, quarantined in plan:
        T = T + gap * HOUR
        feed = pd.DataFrame(rows, columns=list(FEED_COLUMNS)) if rows else pd.DataFrame(columns=list(FEED_COLUMNS))
        kw = dict(extracted_dealers=extracted, settings=s, group=GROUP, logical_time=T, quarantined_vins=quarantined)
        got = compute_changes(feed, state, **kw)
        want = reference_changes(feed, state, **kw)
        assert canonical(got) == canonical(want)
        pd.testing.assert_frame_equal(got.events, want.events)
        after = apply(state, got)
        _check_invariants(state, got, after, extracted, feed, quarantined)
        state = after
