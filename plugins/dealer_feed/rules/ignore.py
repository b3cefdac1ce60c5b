"""Ignore if SR with VIN exists (SPEC.md "Integration settings", "Edge cases, decided").

For a vehicle with no active service request, whose dealer's Client - Dealer ID row has
*Ignore if SR with VIN exists* set: no service request is created when any service request
of the group with that VIN — whatever its status — was created within the row's Ignore
Days before the feed time T, i.e. `created_at <= T` and `T - created_at <= ignore_days x 24 h`.
The vehicle is ignored with reason `sr_with_vin_exists`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SR_WITH_VIN_EXISTS = "sr_with_vin_exists"
NO_TIME = np.iinfo(np.int64).min
"""int64 stand-in for 'no timestamp' (NaT's integer value)."""
DAY_US = 86_400_000_000
"""One day (24 h) in microseconds, the unit of every engine timestamp."""


def as_us(s: pd.Series) -> np.ndarray:
    """datetime64[us, UTC] column as int64 microseconds since the epoch (NaT = NO_TIME)."""
    return s.array.asi8 if hasattr(s.array, "asi8") else s.to_numpy().view(np.int64)


def latest_created_by_vin(sr_vin_code: np.ndarray, created_at: pd.Series, n_codes: int, t_us: int) -> np.ndarray:
    """Per VIN code: the latest `created_at` (int64 us) of the group's SRs created at or before T.

    `sr_vin_code`: per SR, the code of its VIN (-1 for VINs not in this run's feed, which
    can't be ignored anyway). Returns NO_TIME for VINs with no such SR.
    """
    created = as_us(created_at)
    ok = (sr_vin_code >= 0) & (created != NO_TIME) & (created <= t_us)
    latest = np.full(n_codes, NO_TIME, dtype=np.int64)
    np.maximum.at(latest, sr_vin_code[ok], created[ok])
    return latest


def sr_with_vin_exists(
    candidate: np.ndarray, vin_code: np.ndarray, ignore_days: np.ndarray, latest_created: np.ndarray, t_us: int
) -> np.ndarray:
    """Rule (d), first half: bool per vehicle — ignored because an SR with its VIN is too recent.

    `candidate`: vehicles the check applies to (no active SR, client row flag set).
    `ignore_days`: per vehicle, its client row's Ignore Days.
    """
    latest = latest_created[np.where(vin_code >= 0, vin_code, 0)] if len(latest_created) else np.full(len(vin_code), NO_TIME)
    has = latest != NO_TIME
    age = np.where(has, t_us - np.where(has, latest, 0), 0)
    return candidate & has & (age <= ignore_days.astype(np.int64) * DAY_US)
