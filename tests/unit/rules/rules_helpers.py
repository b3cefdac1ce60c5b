"""Small explicit frames and a runner that checks the engine against the reference."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from dealer_feed.config import IntegrationSettings
from dealer_feed.rules.engine import Changes, compute_changes
from dealer_feed.rules.frames import FEED_COLUMNS, SR_COLUMNS, SR_DTYPES, TS, coerce, empty_srs

from reference import canonical, reference_changes

T0 = datetime(2026, 3, 1, 6, tzinfo=timezone.utc)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
GROUP = "g"
VIN_A, VIN_B, VIN_C = "1HGCM82633A000001", "1HGCM82633A000002", "1HGCM82633A000003"


def settings(track=("never", None), auto=("never", None), mapping=(), clients=None) -> IntegrationSettings:
    if clients is None:
        clients = [{"client": "C1", "sr_type": "Recon", "dealer_id": "Z_1"},
                   {"client": "C2", "sr_type": "Recon2", "dealer_id": "Z_2"}]
    return IntegrationSettings.model_validate({
        "track_stock_and_client": {"mode": track[0], "days": track[1]},
        "auto_close": {"mode": auto[0], "days": auto[1]},
        "vehicle_type_mapping": list(mapping),
        "client_dealer": list(clients),
    })


def feed(*rows) -> pd.DataFrame:
    """rows: (dealer_id, vin, stock_number[, system_code])."""
    rows = [tuple(r) + (None,) * (4 - len(r)) for r in rows]
    return pd.DataFrame(rows, columns=list(FEED_COLUMNS)) if rows else pd.DataFrame(columns=list(FEED_COLUMNS))


def sr(vin=VIN_A, dealer_id="Z_1", created_at=T0, stock_number="S1", client="C1", status="active", **over) -> dict:
    row = {
        "sr_id": f"{GROUP}:{vin}:{created_at:%Y%m%dT%H%M%SZ}", "dealer_id": dealer_id, "vin": vin,
        "stock_number": stock_number, "client": client, "vehicle_type": None, "sr_type": "Recon", "status": status,
        "created_at": created_at, "closed_at": None, "close_reason": None, "anchor_at": created_at,
        "absent_since": None, "last_seen_at": created_at,
    }
    row.update(over)
    return row


def srs(*rows: dict) -> pd.DataFrame:
    if not rows:
        return empty_srs()
    return coerce(pd.DataFrame(list(rows)), SR_DTYPES, "srs")


def run(feed_frame, srs_frame, T, s, extracted=("Z_1", "Z_2", "Z_3"), quarantined_vins=()) -> Changes:
    """Engine result, after checking it equals the reference implementation's."""
    kw = dict(extracted_dealers=list(extracted), settings=s, group=GROUP, logical_time=T,
              quarantined_vins=list(quarantined_vins))
    got = compute_changes(feed_frame, srs_frame, **kw)
    want = reference_changes(feed_frame, srs_frame, **kw)
    assert canonical(got) == canonical(want)
    pd.testing.assert_frame_equal(got.events, want.events)
    return got


def apply(state: pd.DataFrame, changes: Changes) -> pd.DataFrame:
    """The warehouse's SR state after loading `changes` (what the next run reads)."""
    new = changes.service_requests.drop(columns="is_new")
    both = pd.concat([state, new], ignore_index=True) if len(state) else new
    out = both.drop_duplicates("sr_id", keep="last").sort_values("sr_id", ignore_index=True)
    return coerce(out, SR_DTYPES, "state")


def one(frame: pd.DataFrame, **eq) -> dict:
    m = pd.Series(True, index=frame.index)
    for k, v in eq.items():
        m &= frame[k] == v
    rows = frame[m].to_dict("records")
    assert len(rows) == 1, (eq, frame)
    return rows[0]


def kinds(changes: Changes) -> list[str]:
    return changes.events["kind"].tolist()


def outcome(changes: Changes, vin=VIN_A, dealer_id=None) -> tuple:
    o = changes.outcomes
    o = o[o["vin"] == vin]
    if dealer_id:
        o = o[o["dealer_id"] == dealer_id]
    assert len(o) == 1
    r = o.iloc[0]
    return (r["outcome"], None if pd.isna(r["reason"]) else r["reason"])


def ts(x) -> pd.Timestamp:
    return pd.Timestamp(x).tz_convert("UTC") if pd.Timestamp(x).tzinfo else pd.Timestamp(x, tz="UTC")


__all__ = ["T0", "DAY", "HOUR", "TS", "SR_COLUMNS"]
