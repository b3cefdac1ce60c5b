"""Creating service requests (SPEC.md "Creating"; docs/RULES.md rule 1d).

A feed vehicle that passed mapping, client and ignore rules and has no active service
request for its VIN in the group gets a new active one:
`sr_id = f"{group}:{vin}:{run_key(T)}"`, `created_at = anchor_at = last_seen_at = T`,
vehicle type from the matched mapping row (else missing), SR type from the matched mapping
row (else the client row's), client from the client row, stock number and dealer id from
the feed row.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.compute as pc

from dealer_feed.contract.identity import sr_id_suffix
from dealer_feed.rules.frames import ACTIVE, SR_OUT_COLUMNS, STR, TS, arrow_of, positions_in


def _id_suffix(T: pd.Timestamp) -> str:
    return sr_id_suffix(T.to_pydatetime())


def new_sr_ids(group: str, vin: pd.Series, T: pd.Timestamp) -> pd.Series:
    """Deterministic ids: `{group}:{vin}:{run_key(T)}` (docs/ARCHITECTURE.md)."""
    return (f"{group}:" + vin.astype(STR) + _id_suffix(T)).astype(STR)


def any_id_taken(new_ids: pd.Series, existing_ids: pd.Series, T: pd.Timestamp) -> bool:
    """Whether any of this run's new ids is already an existing SR's id (the run was applied).

    Only an id ending in this run's `:{run_key(T)}` can equal a new id, so only those few
    are hashed: one suffix scan in Arrow instead of a hash table over every SR id (0.24 s
    -> 0.01 s for 17,500 new ids against 1,000,000 SRs).
    """
    if not len(new_ids) or not len(existing_ids):
        return False
    same_run = pc.ends_with(arrow_of(existing_ids), _id_suffix(T)).fill_null(False).to_numpy(zero_copy_only=False)
    return bool((positions_in(new_ids, existing_ids[same_run]) >= 0).any())


def create_service_requests(
    *,
    sr_id: pd.Series,
    dealer_id: pd.Series,
    vin: pd.Series,
    stock_number: pd.Series,
    client: pd.Series,
    vehicle_type: pd.Series,
    sr_type: pd.Series,
    T: pd.Timestamp,
) -> pd.DataFrame:
    """New SR rows (all inputs aligned, one per vehicle to create), full state, `is_new` True."""
    n = len(sr_id)
    t = pd.Series(T, index=range(n), dtype=TS)
    nat = pd.Series(pd.NaT, index=range(n), dtype=TS)
    na = pd.Series(None, index=range(n), dtype=STR)
    cols = {
        "sr_id": sr_id, "dealer_id": dealer_id, "vin": vin, "stock_number": stock_number, "client": client,
        "vehicle_type": vehicle_type, "sr_type": sr_type, "status": pd.Series(ACTIVE, index=range(n), dtype=STR),
        "created_at": t, "closed_at": nat, "close_reason": na, "anchor_at": t, "absent_since": nat,
        "last_seen_at": t, "is_new": pd.Series(True, index=range(n), dtype=bool),
    }
    out = pd.DataFrame({c: v.reset_index(drop=True) for c, v in cols.items()})
    return out[list(SR_OUT_COLUMNS)]
