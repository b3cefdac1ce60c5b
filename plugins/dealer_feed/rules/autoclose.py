"""Presence, the auto-close anchor and Auto Close: `never` | `immediately` | `after_n_days`.

For every active service request, with T the feed time (SPEC.md "Auto Close" and
"Edge cases, decided"; docs/RULES.md rule 4):

* present (its VIN is in this run's validated feed at any dealer of the group, whatever the
  vehicle's outcome, or it is the well-formed VIN of a quarantined row of an extracted
  dealer — `quarantined_presence`): `last_seen_at = T`; if it had gone absent (`absent_since` set), the
  anchor is reset: `anchor_at = T`, `absent_since = null`, event `anchor_reset`.
* absent and its own dealer was extracted and validated this run:
  - `immediately`: closed now (reason `auto_close_immediately`);
  - `after_n_days`: closed when `T - anchor_at >= N x 24 h` (reason `auto_close_after_n_days`);
  - not closed (any mode, `never` included): if `absent_since` is null it becomes T and a
    `went_absent` event is written.
* absent and its dealer was not extracted: nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from dealer_feed.config import AutoClose
from dealer_feed.contract.identity import VIN_REGEX
from dealer_feed.rules.frames import CLOSED, STR, arrow_of, positions_in
from dealer_feed.rules.ignore import DAY_US, NO_TIME, as_us

AUTO_CLOSE_IMMEDIATELY = "auto_close_immediately"
AUTO_CLOSE_AFTER_N_DAYS = "auto_close_after_n_days"


@dataclass(frozen=True)
class Absence:
    """Per active SR (aligned with the active frame)."""

    present: np.ndarray
    anchor_reset: np.ndarray
    went_absent: np.ndarray
    closed: np.ndarray
    close_reason: str | None
    """The reason of every close this run (one Auto Close mode per group)."""


def well_formed_vins(vins: pd.Series) -> pd.Series:
    """The values of `vins` that are well-formed VINs (validation's `vin_format`), as "str".

    Why the same regex as validation: a quarantined row counts as present exactly when its
    VIN would have passed `vin_format`; a malformed one names no vehicle.
    """
    arr = arrow_of(vins.astype(STR) if vins.dtype != STR else vins)
    ok = pc.fill_null(pc.match_substring_regex(arr, VIN_REGEX), False)
    return pd.Series(arr.filter(ok), dtype=STR)


def quarantined_presence(active_vin: pd.Series, quarantined_vins: pd.Series) -> np.ndarray:
    """bool per active SR: its VIN is the well-formed VIN of a quarantined row of an extracted dealer.

    SPEC "Edge cases, decided": such a vehicle is present (a bad row never causes a close),
    though its row creates and updates nothing.
    """
    return positions_in(active_vin, well_formed_vins(quarantined_vins)) >= 0


def auto_close_due(setting: AutoClose, judged_absent: np.ndarray, anchor_at: pd.Series, t_us: int) -> np.ndarray:
    """bool per active SR: Auto Close closes it in this run."""
    if setting.mode == "immediately":
        return judged_absent.copy()
    if setting.mode == "after_n_days":
        anchor = as_us(anchor_at)
        return judged_absent & (anchor != NO_TIME) & (t_us - anchor >= int(setting.days) * DAY_US)
    return np.zeros(len(judged_absent), dtype=bool)


def close_reason_of(setting: AutoClose) -> str | None:
    return {"immediately": AUTO_CLOSE_IMMEDIATELY, "after_n_days": AUTO_CLOSE_AFTER_N_DAYS}.get(setting.mode)


def judge_absence(
    active: pd.DataFrame, present: np.ndarray, dealer_extracted: np.ndarray, setting: AutoClose, t_us: int
) -> Absence:
    """Rule 4: who is present, whose anchor resets, who goes absent, who is auto-closed."""
    was_absent = active["absent_since"].notna().to_numpy()
    judged_absent = ~present & dealer_extracted
    closed = auto_close_due(setting, judged_absent, active["anchor_at"], t_us)
    return Absence(
        present=present,
        anchor_reset=present & was_absent,
        went_absent=judged_absent & ~closed & ~was_absent,
        closed=closed,
        close_reason=close_reason_of(setting),
    )


def apply_absence(active: pd.DataFrame, absence: Absence, T: pd.Timestamp) -> pd.DataFrame:
    """The active SRs' new state after presence, anchor reset, going absent and auto close."""
    out = active.copy()
    nat = pd.Series(pd.NaT, index=out.index, dtype=out["anchor_at"].dtype)
    t = pd.Series(T, index=out.index, dtype=out["anchor_at"].dtype)
    out["last_seen_at"] = out["last_seen_at"].where(~absence.present, t)
    out["anchor_at"] = out["anchor_at"].where(~absence.anchor_reset, t)
    out["absent_since"] = out["absent_since"].where(~absence.present, nat).where(~absence.went_absent, t)
    if absence.closed.any():
        out["status"] = out["status"].where(~absence.closed, CLOSED)
        out["closed_at"] = out["closed_at"].where(~absence.closed, t)
        out["close_reason"] = out["close_reason"].where(
            ~absence.closed, pd.Series(absence.close_reason, index=out.index, dtype=STR)
        )
    return out
