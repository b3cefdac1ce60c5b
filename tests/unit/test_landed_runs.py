"""Which runs a replay finds in the landing area: every run directory's feed time, once, in order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dealer_feed.landing import dealer_run_dir, group_run_dir, landed_run_times
from dealer_feed.contract.identity import parse_run_key, run_key

T1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(hours=1)


def test_run_key_round_trips():
    assert parse_run_key(run_key(T1)) == T1
    assert parse_run_key(run_key(T1.replace(tzinfo=None))) == T1


def test_landed_run_times_from_dealer_and_group_directories(tmp_path):
    dealer_run_dir(tmp_path, "demo", "vehicles", "ZE_ZE7", T2).mkdir(parents=True)
    dealer_run_dir(tmp_path, "demo", "parts", "ZE_ZE8", T2).mkdir(parents=True)
    dealer_run_dir(tmp_path, "demo", "vehicles", "ZE_ZE7", T1).mkdir(parents=True)
    group_run_dir(tmp_path, "demo", T3).mkdir(parents=True)  # a run whose dealer files are gone
    dealer_run_dir(tmp_path, "other", "vehicles", "X", T1 - timedelta(days=9)).mkdir(parents=True)
    (tmp_path / "demo" / "vehicles" / "ZE_ZE7" / "run=not-a-time").mkdir()  # ignored, not a crash
    assert landed_run_times(tmp_path, "demo") == [T1, T2, T3]
    assert landed_run_times(tmp_path, "nosuch") == []
