"""The rules engine's frame contract: column lists, dtypes, empty frames, input coercion.

One place for the shapes that `compute_changes` reads and returns, because the warehouse
loader and the pipeline consume them (docs/ARCHITECTURE.md, docs/RULES.md).

Dtypes, used everywhere in `dealer_feed.rules`:

* strings — pandas ``"str"`` (pandas 3's default string dtype, Arrow-backed, missing = NaN);
* timestamps — ``datetime64[us, UTC]`` (missing = NaT);
* ``is_new`` — numpy ``bool``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from dealer_feed.contract.schemas import (
    ENGINE_FEED_SCHEMA,
    EVENT_SCHEMA,
    OUTCOME_SCHEMA,
    SERVICE_REQUEST_CHANGE_SCHEMA,
    SERVICE_REQUEST_SCHEMA,
)

STR = "str"
"""String dtype of every text column (pandas 3 default: Arrow-backed, NaN for missing)."""
TS = "datetime64[us, UTC]"
"""Timestamp dtype of every time column."""

ACTIVE = "active"
CLOSED = "closed"

# ----------------------------------------------------------------- column lists
# Derived from the contract's Arrow schemas (contract.schemas): one definition of each frame.
FEED_COLUMNS = tuple(ENGINE_FEED_SCHEMA.names)
SR_COLUMNS = tuple(SERVICE_REQUEST_SCHEMA.names)
SR_TIMESTAMPS = tuple(f.name for f in SERVICE_REQUEST_SCHEMA if pa.types.is_timestamp(f.type))
SR_OUT_COLUMNS = tuple(SERVICE_REQUEST_CHANGE_SCHEMA.names)
EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)
OUTCOME_COLUMNS = tuple(OUTCOME_SCHEMA.names)


def _dtypes(schema: pa.Schema) -> dict[str, str]:
    """pandas dtypes of a contract schema: strings -> STR, timestamps -> TS, booleans -> bool."""
    return {f.name: TS if pa.types.is_timestamp(f.type) else "bool" if pa.types.is_boolean(f.type) else STR
            for f in schema}


FEED_DTYPES: Mapping[str, str] = _dtypes(ENGINE_FEED_SCHEMA)
SR_DTYPES: Mapping[str, str] = _dtypes(SERVICE_REQUEST_SCHEMA)
SR_OUT_DTYPES: Mapping[str, str] = _dtypes(SERVICE_REQUEST_CHANGE_SCHEMA)
EVENT_DTYPES: Mapping[str, str] = _dtypes(EVENT_SCHEMA)
OUTCOME_DTYPES: Mapping[str, str] = _dtypes(OUTCOME_SCHEMA)

# ----------------------------------------------------------------- vocabularies
OUTCOMES = ("created", "updated", "unchanged", "ignored")
EVENT_KINDS = ("created", "updated", "anchor_reset", "went_absent", "auto_closed", "ignored")
"""Event kinds, in the order events of one SR / vehicle are listed."""
IGNORE_REASONS = ("excluded_by_include_only", "unmapped_dealer", "sr_with_vin_exists", "duplicate_vin_in_group")


def _empty(dtypes: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in dtypes.items()})


def settings_frame(rows: Sequence[BaseModel], dtypes: Mapping[str, str | type]) -> pd.DataFrame:
    """Integration-setting rows as a typed frame (one column per field named in `dtypes`),
    identical duplicate rows dropped (the config forbids conflicting ones)."""
    unique = list(dict.fromkeys(rows))
    return pd.DataFrame({c: pd.Series([getattr(r, c) for r in unique], dtype=d) for c, d in dtypes.items()})


def empty_srs() -> pd.DataFrame:
    """The engine's `srs` input with no rows."""
    return _empty(SR_DTYPES)


def empty_sr_changes() -> pd.DataFrame:
    """`Changes.service_requests` with no rows."""
    return _empty(SR_OUT_DTYPES)


def empty_events() -> pd.DataFrame:
    return _empty(EVENT_DTYPES)


# ----------------------------------------------------------------- coercion
def utc_timestamp(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    """The engine's feed time as a pandas Timestamp in UTC, microsecond unit. compute_changes is
    a public entry of its own (rule tests call it), so a naive time is taken as UTC here."""
    ts = pd.Timestamp(moment)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).as_unit("us")


def utc_column(s: pd.Series, text_format: str = "mixed") -> pd.Series:
    """Any timestamp-ish column as datetime64[us, UTC]; naive values are taken as UTC. Text
    is parsed with `text_format` ("ISO8601" when every value is spelled alike: much faster)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s if str(s.dtype.tz) == "UTC" else s.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        out = s.dt.tz_localize("UTC")
    else:
        out = pd.to_datetime(s, utc=True, format=text_format) if len(s) else pd.Series([], dtype=TS, index=s.index)
    return out if out.dtype == TS else out.astype(TS)


def str_column(s: pd.Series) -> pd.Series:
    return s if s.dtype == STR else s.astype(STR)


def coerce(frame: pd.DataFrame, dtypes: Mapping[str, str], what: str) -> pd.DataFrame:
    """`frame` with exactly the contract's columns and dtypes (extra columns are dropped).

    Raises ValueError naming the missing columns. Columns already of the right dtype are
    not copied.
    """
    missing = [c for c in dtypes if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)} (expected {', '.join(dtypes)})")
    cols = {}
    for c, d in dtypes.items():
        s = frame[c].reset_index(drop=True)
        if d == TS:
            cols[c] = utc_column(s)
        elif d == STR:
            cols[c] = str_column(s)
        else:
            cols[c] = s.astype(d)
    return pd.DataFrame(cols, copy=False)


# ----------------------------------------------------------------- fast lookups
def arrow_of(s: pd.Series):
    """The column as one pyarrow array (no copy for Arrow-backed strings)."""
    import pyarrow as pa

    arr = s.array
    pa_arr = getattr(arr, "_pa_array", None)
    if pa_arr is not None:
        return pa_arr.combine_chunks() if isinstance(pa_arr, pa.ChunkedArray) else pa_arr
    return pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())


def positions_in(values: pd.Series, value_set: pd.Series) -> np.ndarray:
    """For each value, its position in `value_set` (first occurrence), or -1: a hash join on one key.

    Uses pyarrow's `index_in` (a hash table over `value_set`, probed by `values`), several
    times faster than pandas' isin/get_indexer on strings. Missing values never match.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    if len(value_set) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    v, vs = arrow_of(values), arrow_of(value_set)
    if v.type != vs.type:
        v, vs = v.cast(pa.large_string()), vs.cast(pa.large_string())
    out = pc.index_in(v, value_set=vs, skip_nulls=True)
    return out.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def take(s: pd.Series, positions: np.ndarray) -> pd.Series:
    """`s` at `positions` (-1 gives a missing value), same dtype, fresh RangeIndex."""
    return pd.Series(s.array.take(positions, allow_fill=True), name=s.name)
