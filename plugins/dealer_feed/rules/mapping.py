"""Vehicle Type Mapping and its Include Only Filter (SPEC.md "Integration settings").

* A feed vehicle matches a mapping row when the row's `system_code` equals the vehicle's
  and the row's `dealer_id` is empty (generic row) or equals the vehicle's dealer id
  (DealerID-specific row). A DealerID-specific row wins over a generic row for the same code.
* Include-only scope: a generic include-only row makes every dealer's scope include-only;
  a DealerID-specific include-only row makes only that dealer's scope include-only.
  A vehicle whose scope is include-only and that matches no row of its scope is ignored
  with reason `excluded_by_include_only`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dealer_feed.config import VehicleTypeMapping
from dealer_feed.rules.frames import STR, positions_in, settings_frame, take

EXCLUDED_BY_INCLUDE_ONLY = "excluded_by_include_only"
KEY_SEP = "\x1f"


@dataclass(frozen=True)
class MappingMatch:
    """Per feed vehicle (aligned with the input): the matched row's values, and exclusion."""

    matched: np.ndarray
    """bool: the vehicle matched a mapping row of its scope."""
    vehicle_type: pd.Series
    """str: the matched row's vehicle type (missing when unmatched)."""
    sr_type: pd.Series
    """str: the matched row's service request type (missing when unmatched)."""
    excluded: np.ndarray
    """bool: ignored by the Include Only Filter (include-only scope, no matching row)."""


def mapping_table(rows: Sequence[VehicleTypeMapping]) -> pd.DataFrame:
    return settings_frame(rows, {"system_code": STR, "dealer_id": STR, "vehicle_type": STR, "sr_type": STR,
                                 "include_only": bool})


def include_only_scope(dealer_id: pd.Series, rows: Sequence[VehicleTypeMapping]) -> np.ndarray:
    """bool per vehicle: its dealer's scope is include-only."""
    if any(r.include_only and r.dealer_id is None for r in rows):
        return np.ones(len(dealer_id), dtype=bool)
    dealers = sorted({r.dealer_id for r in rows if r.include_only and r.dealer_id is not None})
    return positions_in(dealer_id, pd.Series(dealers, dtype=STR)) >= 0


def match_vehicle_type_mapping(
    dealer_id: pd.Series, system_code: pd.Series, rows: Sequence[VehicleTypeMapping]
) -> MappingMatch:
    """Rule (a): which mapping row each vehicle matches, and whether Include Only excludes it."""
    table = mapping_table(rows)
    specific = table[table["dealer_id"].notna()].reset_index(drop=True)
    generic = table[table["dealer_id"].isna()].reset_index(drop=True)
    # DealerID-specific rows: join on (dealer_id, system_code) as one composite key.
    spec_pos = positions_in(
        dealer_id + KEY_SEP + system_code, specific["dealer_id"] + KEY_SEP + specific["system_code"]
    )
    gen_pos = positions_in(system_code, generic["system_code"])
    use_specific = spec_pos >= 0
    matched = use_specific | (gen_pos >= 0)
    vehicle_type = take(specific["vehicle_type"], spec_pos).where(use_specific, take(generic["vehicle_type"], gen_pos))
    sr_type = take(specific["sr_type"], spec_pos).where(use_specific, take(generic["sr_type"], gen_pos))
    excluded = include_only_scope(dealer_id, rows) & ~matched
    return MappingMatch(matched=matched, vehicle_type=vehicle_type, sr_type=sr_type, excluded=excluded)
