"""The transform's reads: one query each, engine-input columns and dtypes."""

from __future__ import annotations

import pandas as pd
from wh_frames import DAY, T0, RunBuilder, scenario, sr_id, vin

from dealer_feed.warehouse import reads
from dealer_feed.warehouse.load import apply_run
from dealer_feed.warehouse.reads import SR_COLUMNS


def test_read_relevant_srs_active_plus_recent(warehouse):
    for run in scenario():
        apply_run(warehouse, run)
    t = T0 + 4 * DAY
    srs = reads.read_relevant_srs(warehouse, "g", t, max_ignore_days=0)
    assert list(srs.columns) == list(SR_COLUMNS)
    assert set(srs["status"]) == {"active"} and len(srs) == 5
    for c in ("created_at", "closed_at", "anchor_at", "absent_since", "last_seen_at"):
        assert str(srs[c].dtype) == "datetime64[us, UTC]", c
    for c in ("sr_id", "dealer_id", "vin", "status", "close_reason"):
        assert pd.api.types.is_string_dtype(srs[c].dtype), c
    row = srs.set_index("sr_id").loc[sr_id("g", vin(1), T0)]
    assert row.created_at == pd.Timestamp(T0) and row.stock_number == "S1b"
    assert pd.isna(row.closed_at) and pd.isna(row.close_reason)

    # the closed SR of v2 (created T0) counts once Ignore Days reaches back to T0
    assert len(reads.read_relevant_srs(warehouse, "g", t, max_ignore_days=3)) == 5
    recent = reads.read_relevant_srs(warehouse, "g", t, max_ignore_days=4)
    assert len(recent) == 6
    closed = recent[recent["status"] == "closed"].iloc[0]
    assert closed.vin == vin(2) and closed.closed_at == pd.Timestamp(T0 + DAY)
    assert reads.read_relevant_srs(warehouse, "other", t, 30).empty


def test_read_relevant_srs_empty_has_columns_and_dtypes(warehouse):
    srs = reads.read_relevant_srs(warehouse, "g", T0, 10)
    assert srs.empty and list(srs.columns) == list(SR_COLUMNS)
    assert str(srs["created_at"].dtype) == "datetime64[us, UTC]"


def test_previous_good_rows_uses_each_dealers_last_ok_run(warehouse):
    runs = scenario()
    for run in runs:
        apply_run(warehouse, run)
    # before run4: D1's last ok run is run3 (2 vehicles); D2 failed in run3, so its last ok is run2 (3)
    assert reads.previous_good_rows(warehouse, "g", ["D1", "D2", "D9"], before=runs[4].logical_time) == {
        "D1": 2, "D2": 3, "D9": None}
    assert reads.previous_good_rows(warehouse, "g", ["D1", "D2"], before=runs[1].logical_time) == {
        "D1": None, "D2": 1}
    assert reads.previous_good_rows(warehouse, "g", [], before=T0) == {}


def test_last_applied_run_and_run_is_applied(warehouse):
    assert reads.last_applied_run(warehouse, "g") is None
    b = RunBuilder("g")
    b.begin(T0)
    b.create("D1", vin(1), "S1")
    apply_run(warehouse, b.finish())
    last = reads.last_applied_run(warehouse, "g")
    assert last.run_id == "g:20260301T060000Z" and last.logical_time == T0 and last.status == "success"
    assert reads.run_is_applied(warehouse, "g", T0)
    assert not reads.run_is_applied(warehouse, "g", T0 + DAY)
    summary = reads.format_run_summary(warehouse, "g")
    assert "g:20260301T060000Z" in summary and "D1" in summary
