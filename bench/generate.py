"""Deterministic synthetic data for the rules engine and the warehouse benchmarks.

    from bench.generate import make_scenario        # or: sys.path.insert(0, "bench"); import generate
    sc = make_scenario(n_vehicles=200_000, n_dealers=300, n_srs=1_000_000, n_active=200_000, seed=7)
    sc.feed, sc.srs, sc.extracted_dealers, sc.settings, sc.logical_time

Frames follow the engine contract (dealer_feed/rules/frames.py): strings are pandas "str",
timestamps datetime64[us, UTC]. The same arguments always give the same frames (numpy
PCG64 with a fixed seed; no wall clock). Nothing here loops over rows.

Shape of a scenario (fractions are parameters):
* `n_active` active SRs, one per VIN; `present_fraction` of them are in the feed (some at
  another dealer of the group), the rest are absent; `absent_since_fraction` of the active
  ones had already gone absent; created_at spread over `history_days` before T.
* `n_srs - n_active` closed SRs (other VINs, some of them back in the feed: those hit Ignore
  if SR with VIN exists), created over `history_days`.
* the rest of the feed is new VINs; `stock_change_fraction` of the tracked ones changed
  stock number; `duplicate_fraction` of the feed rows repeat a VIN at a second dealer.
* settings: `n_codes` system codes with generic mapping rows, a few DealerID-specific ones,
  include-only for every tenth dealer, a client row for all but every 50th dealer (ignore flag
  on every other one), Track For 30 Days, Auto Close After 7 Days; all dealers but every
  100th are extracted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from dealer_feed.config import IntegrationSettings
from dealer_feed.contract.identity import run_key

VIN_ALPHABET = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
T_DEFAULT = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Scenario:
    feed: pd.DataFrame
    srs: pd.DataFrame
    extracted_dealers: list[str]
    settings: IntegrationSettings
    group: str
    logical_time: datetime


def vins_of(ids: np.ndarray, prefix: str = "1G") -> pd.Series:
    """Distinct integers -> distinct 17-character VINs of the validation alphabet."""
    ids = np.asarray(ids, dtype=np.int64)
    n_digits = 17 - len(prefix)
    digits = np.empty((len(ids), n_digits), dtype=np.int64)
    rest = ids.copy()
    for k in range(n_digits - 1, -1, -1):  # 15 digit positions, vectorised over rows
        digits[:, k] = rest % len(VIN_ALPHABET)
        rest //= len(VIN_ALPHABET)
    chars = np.concatenate([np.tile(np.array(list(prefix)), (len(ids), 1)), VIN_ALPHABET[digits]], axis=1)
    return pd.Series(np.ascontiguousarray(chars).view(f"<U17").ravel(), dtype="str")


def dealer_ids(n_dealers: int) -> np.ndarray:
    return np.array([f"BE_D{i:04d}" for i in range(n_dealers)], dtype=object)


def make_settings(n_dealers: int, n_codes: int = 20) -> IntegrationSettings:
    dealers = dealer_ids(n_dealers)
    mapping = [
        {"system_code": f"C{c:02d}", "vehicle_type": f"Type{c:02d}", "sr_type": f"SR{c % 4}"} for c in range(n_codes // 2)
    ]
    mapping += [
        {"system_code": f"C{c:02d}", "vehicle_type": f"Special{c:02d}", "sr_type": "SRX", "dealer_id": dealers[d]}
        for d in range(0, n_dealers, 7) for c in range(2)
    ]
    mapping += [
        {"system_code": f"C{n_codes // 2:02d}", "vehicle_type": "Only", "sr_type": "SRI", "dealer_id": dealers[d],
         "include_only": True}
        for d in range(0, n_dealers, 10)
    ]
    clients = [
        {"client": f"Client{d % 40:02d}", "sr_type": "Recon", "dealer_id": dealers[d],
         "ignore_if_sr_with_vin_exists": d % 2 == 0, "ignore_days": 30}
        for d in range(n_dealers) if d % 50 != 49
    ]
    return IntegrationSettings.model_validate({
        "track_stock_and_client": {"mode": "for_n_days", "days": 30},
        "auto_close": {"mode": "after_n_days", "days": 7},
        "vehicle_type_mapping": mapping,
        "client_dealer": clients,
    })


def _ts(us: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(us, unit="us", utc=True)).astype("datetime64[us, UTC]")


def make_scenario(
    n_vehicles: int = 200_000,
    n_dealers: int = 300,
    n_srs: int = 1_000_000,
    n_active: int = 200_000,
    *,
    seed: int = 7,
    group: str = "bench",
    logical_time: datetime = T_DEFAULT,
    present_fraction: float = 0.9,
    absent_since_fraction: float = 0.03,
    stock_change_fraction: float = 0.05,
    duplicate_fraction: float = 0.005,
    history_days: int = 730,
    n_codes: int = 20,
) -> Scenario:
    rng = np.random.default_rng(seed)
    T_us = int(pd.Timestamp(logical_time).value // 1000)
    dealers = dealer_ids(n_dealers)
    n_closed = max(n_srs - n_active, 0)

    # Active SRs: VIN ids 0..n_active-1; closed SRs: VIN ids from n_active on (a VIN may have several).
    a_vin_id = np.arange(n_active)
    a_dealer = rng.integers(0, n_dealers, n_active)
    a_created = T_us - rng.integers(1, history_days * DAY_US // 2, n_active)
    a_absent = rng.random(n_active) < absent_since_fraction
    a_absent_since = np.where(a_absent, a_created + (T_us - a_created) // 2, 0)
    a_anchor = a_created
    n_closed_vins = max(n_closed * 3 // 4, 1)
    c_vin_id = n_active + rng.integers(0, n_closed_vins, n_closed)
    c_dealer = rng.integers(0, n_dealers, n_closed)
    c_created = T_us - rng.integers(1, history_days * DAY_US, n_closed)
    c_closed = np.minimum(c_created + rng.integers(DAY_US, 60 * DAY_US, n_closed), T_us - 1)

    vin_id = np.concatenate([a_vin_id, c_vin_id])
    dealer = np.concatenate([a_dealer, c_dealer])
    created = np.concatenate([a_created, c_created])
    active = np.arange(n_active + n_closed) < n_active
    vin = vins_of(vin_id)
    rk = _ts(created).dt.strftime("%Y%m%dT%H%M%SZ").astype("str")
    srs = pd.DataFrame({
        "sr_id": (f"{group}:" + vin + ":" + rk).astype("str"),
        "dealer_id": pd.Series(dealers[dealer], dtype="str"),
        "vin": vin,
        "stock_number": pd.Series(np.char.add("S", vin_id.astype(str)), dtype="str"),
        "client": pd.Series(np.char.add("Client", (dealer % 40).astype(str)), dtype="str"),
        "vehicle_type": pd.Series(np.where(dealer % 3 == 0, None, "Type01"), dtype="str"),
        "sr_type": pd.Series(np.full(len(vin_id), "Recon"), dtype="str"),
        "status": pd.Series(np.where(active, "active", "closed"), dtype="str"),
        "created_at": _ts(created),
        "closed_at": _ts(np.concatenate([np.zeros(n_active, np.int64), c_closed])).where(~pd.Series(active)),
        "close_reason": pd.Series(np.where(active, None, "auto_close_immediately"), dtype="str"),
        "anchor_at": _ts(np.concatenate([a_anchor, c_created])),
        "absent_since": _ts(np.concatenate([a_absent_since, np.zeros(n_closed, np.int64)])).where(
            pd.Series(np.concatenate([a_absent, np.zeros(n_closed, bool)]))),
        "last_seen_at": _ts(np.concatenate([np.full(n_active, T_us - DAY_US), c_closed])),
    })
    # Shuffle history rows deterministically (the warehouse returns them in sr_id order anyway).
    srs = srs.iloc[rng.permutation(len(srs))].reset_index(drop=True)

    # Feed: present active VINs, some closed-history VINs, and new VINs.
    n_present = min(int(n_active * present_fraction), n_vehicles)
    present = rng.choice(n_active, n_present, replace=False)
    n_back = min((n_vehicles - n_present) // 4, n_closed_vins)
    back = n_active + rng.choice(n_closed_vins, n_back, replace=False) if n_back else np.zeros(0, np.int64)
    n_new = n_vehicles - n_present - n_back
    new = n_active + n_closed_vins + np.arange(n_new)
    f_vin_id = np.concatenate([present, back, new])
    moved = rng.random(n_present) < 0.02
    f_dealer = np.concatenate([
        np.where(moved, rng.integers(0, n_dealers, n_present), a_dealer[present]),
        rng.integers(0, n_dealers, n_back + n_new),
    ])
    n_dup = int(n_vehicles * duplicate_fraction)
    dup_rows = rng.choice(len(f_vin_id), n_dup, replace=False) if n_dup else np.zeros(0, np.int64)
    f_vin_id = np.concatenate([f_vin_id, f_vin_id[dup_rows]])
    f_dealer = np.concatenate([f_dealer, (f_dealer[dup_rows] + 1) % n_dealers])
    # keep exactly n_vehicles rows: drop the tail of new VINs to make room for the duplicates
    keep = np.ones(len(f_vin_id), bool)  # originals + duplicates
    if n_dup:
        keep[n_present + n_back + n_new - n_dup:n_present + n_back + n_new] = False
    order = rng.permutation(int(keep.sum()))
    f_vin_id, f_dealer = f_vin_id[keep][order], f_dealer[keep][order]
    # A duplicate whose dropped original was removed is simply a normal row.
    stock_changed = rng.random(len(f_vin_id)) < stock_change_fraction
    codes = rng.integers(0, n_codes + 2, len(f_vin_id))
    feed = pd.DataFrame({
        "dealer_id": pd.Series(dealers[f_dealer], dtype="str"),
        "vin": vins_of(f_vin_id),
        "stock_number": pd.Series(
            np.char.add(np.where(stock_changed, "N", "S"), f_vin_id.astype(str)), dtype="str"),
        "system_code": pd.Series(np.char.add("C", np.char.zfill(codes.astype(str), 2)), dtype="str"),
    })
    dedup = ~feed.duplicated(["dealer_id", "vin"])
    feed = feed[dedup].reset_index(drop=True)
    extracted = [d for i, d in enumerate(dealers) if i % 100 != 99]
    feed = feed[feed["dealer_id"].isin(extracted)].reset_index(drop=True)
    return Scenario(
        feed=feed, srs=srs, extracted_dealers=list(extracted), settings=make_settings(n_dealers, n_codes),
        group=group, logical_time=logical_time,
    )


def next_logical_time(T: datetime, hours: int = 24) -> datetime:
    return T + timedelta(hours=hours)


__all__ = ["Scenario", "make_scenario", "make_settings", "vins_of", "dealer_ids", "run_key", "next_logical_time"]
