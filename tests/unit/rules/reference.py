"""Reference implementation of the rules (docs/RULES.md), the test oracle.

Written as plainly as possible: one vehicle at a time, one SR at a time, dicts and ifs,
no pandas tricks. `reference_changes` takes
the same arguments as `dealer_feed.rules.engine.compute_changes` and returns the same
`Changes` (frames built with the same dtypes), so the tests compare them directly.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pandas as pd

from dealer_feed.contract.identity import run_key
from dealer_feed.rules.engine import COUNT_KEYS, Changes
from dealer_feed.rules.frames import (
    EVENT_COLUMNS, EVENT_DTYPES, EVENT_KINDS, OUTCOME_COLUMNS, OUTCOME_DTYPES, SR_COLUMNS, SR_OUT_COLUMNS,
    SR_OUT_DTYPES, SR_TIMESTAMPS, TS,
)


def _utc(value):
    """A timestamp-ish value as an aware UTC datetime, or None."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _str(value):
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return str(value)


def _records(frame: pd.DataFrame, columns) -> list[dict]:
    rows = []
    for raw in frame.to_dict("records"):
        rows.append({c: (_utc(raw[c]) if c in SR_TIMESTAMPS else _str(raw[c])) for c in columns})
    return rows


def _frame(rows: list[dict], columns, dtypes) -> pd.DataFrame:
    data = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        if dtypes[c] == TS:
            data[c] = pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=True), dtype=TS) if rows else pd.Series([], dtype=TS)
        else:
            data[c] = pd.Series(values, dtype=dtypes[c]) if rows else pd.Series([], dtype=dtypes[c])
    return pd.DataFrame(data)


def reference_changes(feed, srs, *, extracted_dealers, settings, group, logical_time, quarantined_vins=()) -> Changes:
    T = _utc(logical_time)
    days = lambda n: timedelta(days=n)  # noqa: E731 - N days = N x 24 h
    extracted = set(extracted_dealers)
    feed_rows = []
    for raw in feed.to_dict("records"):
        feed_rows.append({c: _str(raw[c]) for c in ("dealer_id", "vin", "stock_number", "system_code")})
    all_srs = _records(srs, SR_COLUMNS)

    srs_by_vin = {}
    for sr in all_srs:
        srs_by_vin.setdefault(sr["vin"], []).append(sr)
    active_by_vin = {}
    for sr in all_srs:
        if sr["status"] == "active":
            assert sr["vin"] not in active_by_vin, "two active SRs for one VIN"
            active_by_vin[sr["vin"]] = sr

    # Rule 2: which row of a VIN seen at several dealers is used.
    rows_by_vin = {}
    for row in feed_rows:
        rows_by_vin.setdefault(row["vin"], []).append(row)
    used_dealer = {}
    for vin, rows in rows_by_vin.items():
        dealers = [r["dealer_id"] for r in rows]
        sr = active_by_vin.get(vin)
        if sr is not None and sr["dealer_id"] in dealers:
            used_dealer[vin] = sr["dealer_id"]
        else:
            used_dealer[vin] = min(dealers)

    mapping_rows = list(settings.vehicle_type_mapping)
    client_rows = {r.dealer_id: r for r in settings.client_dealer}
    generic_include_only = any(r.include_only and r.dealer_id is None for r in mapping_rows)

    def find_mapping(dealer_id, code):
        for r in mapping_rows:
            if r.system_code == code and r.dealer_id == dealer_id:
                return r
        for r in mapping_rows:
            if r.system_code == code and r.dealer_id is None:
                return r
        return None

    def include_only_scope(dealer_id):
        if generic_include_only:
            return True
        return any(r.include_only and r.dealer_id == dealer_id for r in mapping_rows)

    outcomes, events, new_srs = [], [], []
    updates = {}  # sr_id -> (stock, client)
    for row in feed_rows:
        dealer_id, vin = row["dealer_id"], row["vin"]
        active = active_by_vin.get(vin)
        reason = None
        mapped = find_mapping(dealer_id, row["system_code"])
        client = client_rows.get(dealer_id)
        if used_dealer[vin] != dealer_id:
            reason = "duplicate_vin_in_group"
        elif include_only_scope(dealer_id) and mapped is None:
            reason = "excluded_by_include_only"
        elif client is None:
            reason = "unmapped_dealer"
        elif active is None and client.ignore_if_sr_with_vin_exists:
            for sr in srs_by_vin.get(vin, []):
                if sr["created_at"] is not None and sr["created_at"] <= T \
                        and T - sr["created_at"] <= days(client.ignore_days):
                    reason = "sr_with_vin_exists"
                    break
        if reason is not None:
            sr_id = active["sr_id"] if active else None
            outcomes.append({"dealer_id": dealer_id, "vin": vin, "outcome": "ignored", "reason": reason, "sr_id": sr_id})
            events.append({"sr_id": sr_id, "dealer_id": dealer_id, "vin": vin, "kind": "ignored", "reason": reason})
            continue
        if active is not None:
            track = settings.track_stock_and_client
            differs = active["stock_number"] != row["stock_number"] or active["client"] != client.client
            in_window = track.mode == "for_n_days" and T - active["created_at"] <= days(track.days)
            if differs and in_window:
                updates[active["sr_id"]] = (row["stock_number"], client.client)
                outcomes.append({"dealer_id": dealer_id, "vin": vin, "outcome": "updated", "reason": None,
                                 "sr_id": active["sr_id"]})
                events.append({"sr_id": active["sr_id"], "dealer_id": active["dealer_id"], "vin": vin,
                               "kind": "updated", "old_stock_number": active["stock_number"],
                               "new_stock_number": row["stock_number"], "old_client": active["client"],
                               "new_client": client.client})
            else:
                outcomes.append({"dealer_id": dealer_id, "vin": vin, "outcome": "unchanged", "reason": None,
                                 "sr_id": active["sr_id"]})
            continue
        sr_id = f"{group}:{vin}:{run_key(T)}"
        new_srs.append({
            "sr_id": sr_id, "dealer_id": dealer_id, "vin": vin, "stock_number": row["stock_number"],
            "client": client.client, "vehicle_type": mapped.vehicle_type if mapped else None,
            "sr_type": mapped.sr_type if mapped else client.sr_type, "status": "active", "created_at": T,
            "closed_at": None, "close_reason": None, "anchor_at": T, "absent_since": None, "last_seen_at": T,
            "is_new": True,
        })
        outcomes.append({"dealer_id": dealer_id, "vin": vin, "outcome": "created", "reason": None, "sr_id": sr_id})
        events.append({"sr_id": sr_id, "dealer_id": dealer_id, "vin": vin, "kind": "created",
                       "new_stock_number": row["stock_number"], "new_client": client.client})

    # Existing active SRs: presence, anchor, absence, auto close, tracking.
    present_vins = set(rows_by_vin)
    for vin in quarantined_vins:  # a quarantined row's well-formed VIN is present, nothing more
        if isinstance(vin, str) and re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", vin):
            present_vins.add(vin)
    changed_srs = []
    auto = settings.auto_close
    for sr in all_srs:
        if sr["status"] != "active":
            continue
        new = dict(sr)
        if sr["vin"] in present_vins:
            new["last_seen_at"] = T
            if sr["absent_since"] is not None:
                events.append({"sr_id": sr["sr_id"], "dealer_id": sr["dealer_id"], "vin": sr["vin"],
                               "kind": "anchor_reset", "old_anchor_at": sr["anchor_at"]})
                new["anchor_at"] = T
                new["absent_since"] = None
        elif sr["dealer_id"] in extracted:
            close_reason = None
            if auto.mode == "immediately":
                close_reason = "auto_close_immediately"
            elif auto.mode == "after_n_days" and T - sr["anchor_at"] >= days(auto.days):
                close_reason = "auto_close_after_n_days"
            if close_reason:
                new["status"], new["closed_at"], new["close_reason"] = "closed", T, close_reason
                events.append({"sr_id": sr["sr_id"], "dealer_id": sr["dealer_id"], "vin": sr["vin"],
                               "kind": "auto_closed", "reason": close_reason})
            elif sr["absent_since"] is None:
                new["absent_since"] = T
                events.append({"sr_id": sr["sr_id"], "dealer_id": sr["dealer_id"], "vin": sr["vin"],
                               "kind": "went_absent"})
        if sr["sr_id"] in updates:
            new["stock_number"], new["client"] = updates[sr["sr_id"]]
        if new != sr:
            new["is_new"] = False
            changed_srs.append(new)

    rank = {k: i for i, k in enumerate(EVENT_KINDS)}
    events.sort(key=lambda e: (e["dealer_id"], e["vin"], rank[e["kind"]]))
    counts = {}
    counted = {"auto_closed", "anchor_reset", "went_absent"}
    for d in sorted(extracted | {o["dealer_id"] for o in outcomes}
                    | {e["dealer_id"] for e in events if e["kind"] in counted}):
        counts[d] = dict.fromkeys(COUNT_KEYS, 0)
    for o in outcomes:
        counts[o["dealer_id"]][o["outcome"]] += 1
        if o["reason"]:
            counts[o["dealer_id"]]["ignored_" + o["reason"]] += 1
    for e in events:
        key = {"auto_closed": "closed", "anchor_reset": "anchor_reset", "went_absent": "went_absent"}.get(e["kind"])
        if key:
            counts[e["dealer_id"]][key] += 1
    totals = {k: sum(c[k] for c in counts.values()) for k in COUNT_KEYS}
    return Changes(
        service_requests=_frame(changed_srs + new_srs, SR_OUT_COLUMNS, SR_OUT_DTYPES),
        events=_frame(events, EVENT_COLUMNS, EVENT_DTYPES),
        outcomes=_frame(outcomes, OUTCOME_COLUMNS, OUTCOME_DTYPES),
        counts={"by_dealer": counts, "totals": totals},
    )


def canonical(changes: Changes) -> dict:
    """Order-insensitive, comparable form of a Changes (for engine vs reference)."""
    def rows(frame, key):
        out = []
        for r in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            out.append({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()})
        return sorted(out, key=lambda r: tuple(str(r[k]) for k in key))
    return {
        "service_requests": rows(changes.service_requests, ["sr_id"]),
        "events": rows(changes.events, ["dealer_id", "vin", "kind", "sr_id"]),
        "outcomes": rows(changes.outcomes, ["dealer_id", "vin"]),
        "counts": changes.counts,
    }


UTC = timezone.utc
__all__ = ["reference_changes", "canonical", "UTC", "datetime"]
