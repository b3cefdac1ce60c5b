"""Client - Dealer ID (SPEC.md "Integration settings").

A vehicle's client is the client mapped to its dealer id; a vehicle whose dealer id maps to
no client gets no service request and is ignored with reason `unmapped_dealer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealer_feed.config import ClientDealer
from dealer_feed.rules.frames import STR, positions_in, settings_frame, take

UNMAPPED_DEALER = "unmapped_dealer"


@dataclass(frozen=True)
class ClientMatch:
    """Per feed vehicle (aligned with the input): its Client - Dealer ID row's values."""

    mapped: np.ndarray
    """bool: the vehicle's dealer id has a client row."""
    client: pd.Series
    """str: the wholesale client (missing when unmapped)."""
    sr_type: pd.Series
    """str: the client row's service request type (missing when unmapped)."""
    ignore_if_sr_with_vin_exists: np.ndarray
    """bool: the row's *Ignore if SR with VIN exists* flag (False when unmapped)."""
    ignore_days: np.ndarray
    """int64: the row's Ignore Days (0 when unmapped)."""


def client_table(rows: Sequence[ClientDealer]) -> pd.DataFrame:
    return settings_frame(rows, {"dealer_id": STR, "client": STR, "sr_type": STR, "ignore_if_sr_with_vin_exists": bool,
                                 "ignore_days": np.int64})


def match_client_dealer(dealer_id: pd.Series, rows: Sequence[ClientDealer]) -> ClientMatch:
    """Rule (b): the client row of each vehicle's dealer id (one row per dealer id, config-enforced)."""
    table = client_table(rows)
    pos = positions_in(dealer_id, table["dealer_id"])
    mapped = pos >= 0
    safe = np.where(mapped, pos, 0)
    flags = table["ignore_if_sr_with_vin_exists"].to_numpy()
    days = table["ignore_days"].to_numpy()
    return ClientMatch(
        mapped=mapped,
        client=take(table["client"], pos),
        sr_type=take(table["sr_type"], pos),
        ignore_if_sr_with_vin_exists=(flags[safe] & mapped) if len(table) else np.zeros(len(pos), dtype=bool),
        ignore_days=np.where(mapped, days[safe], 0) if len(table) else np.zeros(len(pos), dtype=np.int64),
    )
