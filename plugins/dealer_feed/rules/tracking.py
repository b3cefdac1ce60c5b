"""Track Stock No and Client: `never` | `for_n_days` (SPEC.md "Integration settings").

A feed vehicle that has an active service request (and is not ignored) updates that
request's stock number and client when they differ from the feed's (the client being the
one mapped to the vehicle's dealer id), the setting is *For N Days*, and
`T - created_at <= N x 24 h` (inclusive; counted from creation — an anchor reset does not
extend it). Outcome `updated`; otherwise `unchanged`. The request keeps its dealer_id,
vehicle type and SR type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dealer_feed.config import TrackStockAndClient
from dealer_feed.rules.ignore import DAY_US, NO_TIME, as_us


def differs(old: pd.Series, new: pd.Series) -> np.ndarray:
    """Null-safe inequality of two aligned string columns (missing == missing)."""
    old_na, new_na = old.isna().to_numpy(), new.isna().to_numpy()
    ne = (old != new).fillna(True).to_numpy(dtype=bool) if len(old) else np.zeros(0, dtype=bool)
    return np.where(old_na | new_na, old_na != new_na, ne)


def within_track_window(created_at: pd.Series, t_us: int, setting: TrackStockAndClient) -> np.ndarray:
    """bool per SR: Track applies — mode for_n_days and T - created_at <= N days (inclusive)."""
    if setting.mode != "for_n_days":
        return np.zeros(len(created_at), dtype=bool)
    created = as_us(created_at)
    return (created != NO_TIME) & (t_us - created <= int(setting.days) * DAY_US)


def track_stock_and_client(
    setting: TrackStockAndClient,
    created_at: pd.Series,
    old_stock: pd.Series,
    new_stock: pd.Series,
    old_client: pd.Series,
    new_client: pd.Series,
    t_us: int,
) -> np.ndarray:
    """Rule (c): bool per tracked vehicle — its active SR's stock number / client are updated."""
    changed = differs(old_stock, new_stock) | differs(old_client, new_client)
    return changed & within_track_window(created_at, t_us, setting)
